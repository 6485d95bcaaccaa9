"""Scores from finished runs: per task and length, overall, each benchmark's official number, RULER's effective
length, UtK's long-context adaptation rate and each benchmark's own average over its tasks (suite.json)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from longkit.eval.suite.config import SuiteConfig
from longkit.eval.suite.intervals import group_intervals, samples_by_length, task_intervals
from longkit.eval.suite.layout import task_dir
from longkit.io import ResultLog


def effective_length(scores: dict[int, float], threshold: float) -> int | None:
    """RULER's effective length: the longest tested length whose score exceeds the threshold."""
    passing = [n for n, s in scores.items() if s > threshold]
    return max(passing) if passing else None


def adaptation_rate(scores: dict[int, float], reference: int | None = None) -> float | None:
    """UtK's long-context adaptation rate: score at the longest length / score at the reference length."""
    if len(scores) < 2:
        return None
    ref = reference if reference in scores else min(scores)
    longest = max(scores)
    if scores[ref] <= 0:
        return None
    return round(scores[longest] / scores[ref], 4)


def by_length(summary: dict[str, Any]) -> dict[int, float]:
    """A run summary's mean score per context length (lengths that do not parse as numbers are left out).

    Keys are read in any spelling an older summary used ('4096', '4096.0', 'len_4096'); see runner.length_key."""
    from longkit.eval.runner import length_key

    out = {}
    for k, v in summary.get("by", {}).get("length", {}).items():
        try:
            out[int(length_key(k))] = float(v["score"])
        except (TypeError, ValueError, KeyError):
            continue
    return out


def official_score(name: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A task's score aggregated the way its benchmark aggregates it, on the benchmark's own scale, both as the task
    declares them (`spec.Metric`): most benchmarks average per-sample scores; SCROLLS's QMSum takes the geometric
    mean of the corpus-averaged ROUGE-1/2/L, which is not the mean of per-sample geometric means."""
    from longkit.eval.metrics import AGGREGATIONS
    from longkit.eval.tasks.registry import registry

    metric = registry()[name].metric
    aggregate, how = AGGREGATIONS[metric.aggregation]
    value = aggregate([r["scores"] for r in records])
    digits = 2 if metric.scale == 100.0 else 4
    if value != value:  # NaN: nothing to aggregate (no scored tokens)
        return {"score": None, "scale": metric.scale_label, "aggregation": how}
    return {"score": round(value * metric.scale, digits), "scale": metric.scale_label, "aggregation": how}


def collect(cfg: SuiteConfig) -> dict[str, Any]:
    """Summaries of every finished (model, task) run under cfg.out, plus skips from every shard."""
    from longkit.eval.tasks.registry import resolve_name

    out = Path(cfg.out)
    models: dict[str, Any] = {}
    for model in cfg.models:
        per_task: dict[str, Any] = {}
        for entry in cfg.tasks:
            name = resolve_name(entry.name)
            s = _task_summary(task_dir(out, model.label, name) / "results.jsonl", name, model.model or "", cfg)
            if s is not None:
                per_task[name] = s
        models[model.label] = per_task
    skipped = []
    for f in sorted(out.glob("skipped*.json")):
        skipped += json.loads(f.read_text())
    return {"models": models, "skipped": skipped}


def _task_summary(results: Path, name: str, model: str, cfg: SuiteConfig) -> dict[str, Any] | None:
    """One finished run's summary with its benchmark, metric, official score and 95% intervals (with the per-length
    sample scores kept under '_samples' for the benchmark averages' intervals); None when nothing ran."""
    from longkit.eval.runner import summarize, upgrade_scores
    from longkit.eval.tasks.registry import registry

    if not results.exists():
        return None
    records = [upgrade_scores(r) for r in ResultLog(results).records() if r.get("task") == name]
    if not records:
        return None
    info = registry()[name]
    group = ("length", "depth") if any("depth" in r["meta"] for r in records) and info.synthetic else ("length",)
    group += tuple(info.extra.get("report_by", ()))  # a benchmark's own breakdowns (LongBench v2's difficulty)
    s = summarize(records, group)
    s.update(
        {
            "task": name,
            "benchmark": info.benchmark,
            "metric": info.metric.name,
            "synthetic": info.synthetic,
            "higher_is_better": info.metric.higher_is_better,
            "model": model,
            "samples": len(records),
            "official": official_score(name, records),
        }
    )
    s["intervals"] = task_intervals(
        records,
        info.synthetic,
        info.metric.higher_is_better,
        lambda x: effective_length(x, cfg.threshold),
        lambda x: adaptation_rate(x, cfg.reference_length),
        cfg.bootstrap,
        cfg.seed,
    )
    if info.summarize is not None:
        s["benchmark_summary"] = info.summarize(records)
    s["_samples"] = samples_by_length(records) if info.synthetic else {}
    summary_file = results.parent / "summary.json"  # the task's own header line (haystack, protocol)
    if summary_file.exists() and json.loads(summary_file.read_text()).get("setup"):
        s["setup"] = json.loads(summary_file.read_text())["setup"]
    return s


def task_entry(s: dict[str, Any], cfg: SuiteConfig) -> dict[str, Any]:
    """One task's line in suite.json: scores by length, overall, official, effective length, adaptation rate."""
    by_len = by_length(s) if s["synthetic"] else {}
    # effective length and adaptation rate read "higher is better": a loss has neither
    rated = by_len if s.get("higher_is_better", True) else {}
    entry = {
        "benchmark": s["benchmark"],
        "metric": s["metric"],
        "overall": s["overall"].get("score"),
        "by_length": by_len,
        "samples": s["samples"],
        "truncated": s.get("truncated", 0),
        "effective_length": effective_length(rated, cfg.threshold) if rated else None,
        "adaptation_rate": adaptation_rate(rated, cfg.reference_length) if rated else None,
        "official": s.get("official"),
    }
    if not s["synthetic"]:
        entry["by_group"] = {k: v.get("score") for k, v in s["by"].get("length", {}).items()}
    for field, groups in s["by"].items():
        if field not in ("length", "depth"):
            entry[f"by_{field}"] = {k: v.get("score") for k, v in groups.items()}
    entry.update(s.get("intervals", {}))
    if "benchmark_summary" in s:
        entry["benchmark_summary"] = s["benchmark_summary"]
    return entry


def _slug(group: str) -> str:
    """A group's name as a JSON key part: 'ChatQA 2 32K' -> 'chatqa_2_32k'."""
    return re.sub(r"[^0-9a-z]+", "_", group.lower()).strip("_")


def group_averages(
    tasks: dict[str, dict[str, Any]], cfg: SuiteConfig, samples: dict[str, dict[int, list[float]]] | None = None
) -> dict[str, dict[str, Any]]:
    """For each average a benchmark defines over its tasks (a task's declared `average_group`, e.g. RULER's), the
    mean over a model's tasks of that group: overall, and at the lengths they all ran with its effective length and
    rate; keyed '<group>_average' with the group in lower case, other characters as '_' (RULER's is
    'ruler_average', LV-Eval's 'lv_eval_average'). With the tasks' per-length sample scores, intervals too."""
    from longkit.eval.tasks.registry import registry

    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for name, entry in tasks.items():
        group = registry()[name].average_group if name in registry() else None
        if group and (entry["by_length"] or entry["overall"] is not None):
            groups.setdefault(group, {})[name] = entry
    out = {}
    for group, members in groups.items():
        by_len = [e["by_length"] for e in members.values()]
        common = sorted(set.intersection(*map(set, by_len))) if all(by_len) else []
        avg = {n: round(sum(b[n] for b in by_len) / len(members), 4) for n in common}
        overall = [e["overall"] for e in members.values() if e["overall"] is not None]
        out[f"{_slug(group)}_average"] = {
            "group": group,
            "tasks": len(members),
            "by_length": avg,
            "overall": round(sum(overall) / len(overall), 4) if overall else None,
            "effective_length": effective_length(avg, cfg.threshold) if avg else None,
            "adaptation_rate": adaptation_rate(avg, cfg.reference_length) if avg else None,
        }
        if samples and common and all(name in samples for name in members):
            out[f"{_slug(group)}_average"].update(
                group_intervals(
                    {name: samples[name] for name in members},
                    common,
                    lambda x: effective_length(x, cfg.threshold),
                    lambda x: adaptation_rate(x, cfg.reference_length),
                    cfg.bootstrap,
                    cfg.seed,
                )
            )
    return out


def build_report(cfg: SuiteConfig, data: dict[str, Any]) -> dict[str, Any]:
    """suite.json's content from collect()'s summaries."""
    report: dict[str, Any] = {
        "name": cfg.name,
        "threshold": cfg.threshold,
        "reference_length": cfg.reference_length,
        "models": {},
        "skipped": data["skipped"],
    }
    for label, tasks in data["models"].items():
        model_rep: dict[str, Any] = {"tasks": {name: task_entry(s, cfg) for name, s in tasks.items()}}
        model_rep.update(group_averages(model_rep["tasks"], cfg, {n: s.get("_samples", {}) for n, s in tasks.items()}))
        report["models"][label] = model_rep
    return report
