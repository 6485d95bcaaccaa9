"""Paired comparison of two evaluations of the same samples (`longkit eval compare A B`): for each task and length,
the mean difference B - A of the per-sample scores, its 95% bootstrap interval and a paired sign-flip test.

A and B are output directories: a task run's `--out` (holding results.jsonl), or a directory of task runs (a suite's
model directory `<suite out>/<model>`, or a whole suite out whose model names match). Runs are paired by their path
under A and B; within a task, samples by their key. Two runs of other tasks, other task settings (run.json) or other
samples are refused in one line naming the task and the first sample or field that differs: a difference between
runs that did not answer the same questions is not a paired difference.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from longkit.errors import InputError
from longkit.io import ResultLog

RESULTS = "results.jsonl"


def find_runs(root: Path) -> dict[str, Path]:
    """Task runs under root by their path relative to it ('.' when root is one run)."""
    if not root.is_dir():
        raise InputError(f"{root}: not a directory (expected an eval --out or a suite's model directory)")
    if (root / RESULTS).is_file():
        return {".": root}
    runs = {p.parent.relative_to(root).as_posix(): p.parent for p in sorted(root.rglob(RESULTS))}
    if not runs:
        raise InputError(f"{root}: no {RESULTS} under it (expected an eval --out or a suite's model directory)")
    return runs


def _records(run: Path) -> dict[str, dict[str, Any]]:
    return {str(r["key"]): r for r in ResultLog(run / RESULTS).records()}


def _task_settings(run: Path) -> Any:
    path = run / "run.json"
    return json.loads(path.read_text(encoding="utf-8")).get("task") if path.is_file() else None


def pair_runs(a: Path, b: Path) -> list[tuple[str, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]]:
    """(task path, A's records, B's records) for every task run of A and B; refused where they differ."""
    from longkit.rerun import first_difference

    runs_a, runs_b = find_runs(a), find_runs(b)
    only = sorted(set(runs_a) ^ set(runs_b))
    if only:
        side = a if only[0] in runs_a else b
        raise InputError(f"runs of different tasks: '{only[0]}' is only in {side}; compare runs of the same tasks")
    pairs = []
    for name in sorted(runs_a):
        settings_a, settings_b = _task_settings(runs_a[name]), _task_settings(runs_b[name])
        if not isinstance(settings_a, dict) or not isinstance(settings_b, dict):
            missing = a if not isinstance(settings_a, dict) else b
            raise InputError(
                f"{missing / name if name != '.' else missing}: no task settings in its run.json (not the output of "
                "an eval task run, or made by another command); compare runs of `eval suite`, `eval ppl`, "
                "`eval niah` or `eval passkey`"
            )
        if settings_a.get("name") != settings_b.get("name"):
            raise InputError(
                f"runs of different tasks: '{settings_a.get('name')}' in {a}, '{settings_b.get('name')}' in {b}"
            )
        diff = first_difference(settings_a, settings_b)
        if diff is not None:
            field, old, new = diff
            raise InputError(
                f"task '{name}': the runs were made with other task settings: {field} is "
                f"{json.dumps(old)} in {a}, {json.dumps(new)} in {b}"
            )
        rec_a, rec_b = _records(runs_a[name]), _records(runs_b[name])
        differ = sorted(set(rec_a) ^ set(rec_b))
        if differ:
            side = a if differ[0] in rec_a else b
            raise InputError(
                f"task '{name}': sample '{differ[0]}' is only in {side} ({len(differ)} samples differ); "
                "a paired comparison needs the same samples (finish both runs, or rerun one)"
            )
        if not rec_a:
            raise InputError(f"task '{name}': no results to compare")
        # a single run is named by its task (its path under A and B is '.')
        label = name if name != "." else str(next(iter(rec_a.values())).get("task") or name)
        pairs.append((label, rec_a, rec_b))
    return pairs


def compare_runs(a: Path, b: Path, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Per task, overall and per length: n, mean of A, mean of B, B - A with its interval and p-value."""
    from longkit.eval.bootstrap import FEW, MAX_RESAMPLES, paired_difference

    if not 1 <= resamples <= MAX_RESAMPLES:
        raise InputError(f"--bootstrap: expected at least 1 resample and at most {MAX_RESAMPLES}, got {resamples}")
    tasks = {}
    for name, rec_a, rec_b in pair_runs(a, b):
        groups: dict[str, list[str]] = defaultdict(list)
        for key, r in rec_a.items():
            groups["overall"].append(key)
            if r.get("meta", {}).get("length") is not None:
                groups[str(r["meta"]["length"])].append(key)
        rows = {}
        for group, keys in groups.items():
            sa = [float(rec_a[k]["scores"].get("score", 0.0)) for k in keys]
            sb = [float(rec_b[k]["scores"].get("score", 0.0)) for k in keys]
            d = paired_difference(sa, sb, resamples, seed)
            rows[group] = {
                "n": len(keys),
                "a": round(sum(sa) / len(sa), 4),
                "b": round(sum(sb) / len(sb), 4),
                "difference": round(d["difference"], 4),
                "ci": [round(d["ci_low"], 4), round(d["ci_high"], 4)],
                "p_value": round(d["p_value"], 4),
                "wide": len(keys) < FEW,
            }
        if len(rows) == 2:  # one length only: its row is the overall row
            rows = {"overall": rows["overall"]}
        tasks[name] = rows
    return {"a": str(a), "b": str(b), "bootstrap": resamples, "seed": seed, "tasks": tasks}


def compare_table(result: dict[str, Any]) -> list[str]:
    """Markdown rows: task, length, n, A, B, B - A (95% CI), p."""
    lines = [
        f"A = {result['a']}, B = {result['b']}; 95% paired bootstrap intervals ({result['bootstrap']} resamples), "
        "p from the paired sign-flip test; † fewer than 5 samples",
        "",
        "| task | length | n | A | B | B − A (95% CI) | p |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in result["tasks"].items():
        for group, r in sorted(rows.items(), key=lambda kv: (kv[0] != "overall", int(kv[0]) if kv[0].isdigit() else 0)):
            lines.append(
                f"| {name} | {group} | {r['n']}{'†' if r['wide'] else ''} | {r['a']:.3f} | {r['b']:.3f} | "
                f"{r['difference']:+.3f} ({r['ci'][0]:+.3f} to {r['ci'][1]:+.3f}) | {r['p_value']:.3g} |"
            )
    return lines
