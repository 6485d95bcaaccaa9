"""Run a task against a backend: batched generation, per-sample JSONL log, resume, summary and report."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from longkit.backends.base import Backend
from longkit.errors import ConfigError, InputError
from longkit.eval.tasks.base import Task
from longkit.io import ResultLog, read_json, write_json
from longkit.progress import Progress


def run_task(
    task: Task,
    backend: Backend,
    out_dir: str | Path,
    batch_size: int = 1,
    judge: Any | None = None,
    progress: bool = True,
    model_name: str = "",
    max_samples: int | None = None,
) -> dict[str, Any]:
    """Evaluate every planned sample not already in out_dir/results.jsonl; returns the summary.

    Results are appended after each batch, so a killed run loses at most the batch in flight and a
    rerun with the same task settings picks up where it stopped.
    """
    from longkit.io import output_dir

    out = output_dir(out_dir)
    record = {"task": task.fingerprint(), **run_identity(backend, model_name)}
    if judge is not None:
        record["judge"] = run_identity(judge.backend, getattr(judge.backend, "model_name", ""))
    check_run_record(out, record)
    log = ResultLog(out / "results.jsonl")
    plan = task.plan()
    if max_samples is not None:
        plan = plan[:max_samples]
    todo = [s for s in plan if f"{task.name}/{s['id']}" not in log]
    tok = backend.tokenizer

    with Progress(task.name, total=len(plan), done=len(plan) - len(todo), unit="samples", enabled=progress) as bar:
        for start in range(0, len(todo), batch_size):
            specs = todo[start : start + batch_size]
            samples = [task.build(s, tok, backend.max_context) for s in specs]
            t0 = time.perf_counter()
            completions = backend.generate([s.request() for s in samples])
            elapsed = (time.perf_counter() - t0) / len(samples)
            judged: list[float | None] = [None] * len(samples)
            if judge is not None:
                judged = judge.score_batch([_question(s) for s in samples], [c.text for c in completions],
                                           [s.references for s in samples])
            for s, c, j in zip(samples, completions, judged):
                scores = task.score(c.text, s)
                if judge is not None:
                    scores["judge"] = j if j is not None else 0.0
                log.append({"key": f"{task.name}/{s.id}", "task": task.name, "id": s.id, "meta": s.meta,
                            "prediction": c.text, "references": s.references, "scores": scores,
                            "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                            "truncated": c.truncated, "seconds": round(elapsed, 3)})
                bar.advance()
    records = [r for r in log.records() if r["task"] == task.name]
    summary = summarize(records, task.group_by)
    summary.update({"task": task.name, "model": model_name, "samples": len(records), "planned": len(plan)})
    if summary["empty_answers"]:
        import sys

        print(f"{task.name}: {summary['empty_answers']} of {len(records)} answers are empty", file=sys.stderr)
    if task.describe():
        summary["setup"] = task.describe()
    write_json(out / "summary.json", summary)
    return summary


def _question(sample: Any) -> str:
    """The question a judge sees: the task's own, else the end of the prompt (where questions sit)."""
    if sample.meta.get("question"):
        return str(sample.meta["question"])
    text = sample.messages[-1]["content"] if sample.messages else (sample.prompt or "")
    return text[-500:]


def run_identity(backend: Backend, model_name: str = "") -> dict[str, Any]:
    """What decides a run's answers besides the task: backend, model, generation settings, longkit version."""
    from longkit import __version__

    return {
        "backend": getattr(backend, "name", type(backend).__name__),
        "model": model_name or getattr(backend, "model_name", "") or getattr(backend, "model", "") or "",
        "generation": {"max_context": int(backend.max_context), "temperature": 0.0,
                       "dtype": str(getattr(getattr(backend, "model", None), "dtype", "")) or None},
        "longkit_version": __version__,
    }


def check_run_record(out: Path, current: dict[str, Any]) -> None:
    """Write out/run.json, or refuse to reuse out when it holds a run with other settings.

    The message names the first differing field; fields an older run.json lacks are added, not refused.
    """
    path = Path(out) / "run.json"
    current = json.loads(json.dumps(current))
    if not path.exists():
        write_json(path, current)
        return
    previous = read_json(path, "run record")
    if not isinstance(previous, dict):
        raise InputError(f"{path}: expected a JSON object (the run record); delete {out} to start fresh")
    diff = _difference(previous, current)
    if diff is not None:
        field, old, new = diff
        raise ConfigError(f"{out} holds results of a run with other settings: {field} was {json.dumps(old)}, "
                          f"now {json.dumps(new)} ({path}); use another --out directory, or delete {out} "
                          "to start fresh")
    merged = {**current, **previous}
    if merged != previous:
        write_json(path, merged)


def _difference(old: Any, new: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first field (dotted path) whose value differs; keys missing from old are not differences."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in new:
            if k in old:
                d = _difference(old[k], new[k], f"{prefix}{k}.")
                if d is not None:
                    return d
        return None
    return None if old == new else (prefix.rstrip(".") or "run", old, new)


def summarize(records: list[dict[str, Any]], group_by: tuple[str, ...]) -> dict[str, Any]:
    """Mean of every score overall, per value of each group field, and per full group cell."""
    metrics = sorted({k for r in records for k in r["scores"]})

    def mean_scores(rs: list[dict[str, Any]]) -> dict[str, float]:
        return {m: round(sum(r["scores"].get(m, 0.0) for r in rs) / len(rs), 4) for m in metrics}

    by_field: dict[str, dict[str, dict[str, float]]] = {}
    for field in group_by:
        groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            groups[r["meta"].get(field)].append(r)
        by_field[field] = {str(k): mean_scores(v) for k, v in sorted(groups.items(), key=lambda kv: _sort_key(kv[0]))}
    cells: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        cells[tuple(r["meta"].get(f) for f in group_by)].append(r)
    return {
        "metrics": metrics,
        "overall": mean_scores(records) if records else {},
        "by": by_field,
        "cells": [{**dict(zip(group_by, k)), **mean_scores(v), "n": len(v)}
                  for k, v in sorted(cells.items(), key=lambda kv: tuple(_sort_key(x) for x in kv[0]))],
        "truncated": sum(1 for r in records if r.get("truncated")),
        "empty_answers": sum(1 for r in records if not str(r.get("prediction", "")).strip()),
    }


def _sort_key(x: Any) -> tuple[int, Any]:
    return (0, x) if isinstance(x, (int, float)) else (1, str(x))
