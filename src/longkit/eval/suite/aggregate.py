"""Scores from finished runs: per task and length, overall, each benchmark's official number, RULER's effective
length, UtK's long-context adaptation rate and the RULER average (the content of suite.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longkit.eval.suite.config import SuiteConfig
from longkit.eval.suite.layout import task_dir
from longkit.io import ResultLog

# Each benchmark reports on its own scale: (benchmark name part, factor, how its scorer prints it).
OFFICIAL_SCALES = (
    ("InfiniteBench", 1.0, "[0, 1]"),  # OpenBMB/InfiniteBench src/compute_scores.py prints the mean as is
    ("LongBench", 100.0, "x100"),  # THUDM/LongBench eval.py: round(100 * mean, 2)
    ("SCROLLS", 100.0, "x100"),  # SCROLLS leaderboard and evaluator: percentages
    ("LV-Eval", 100.0, "x100"),  # LV-Eval evaluation.py: round(100 * mean, 2)
    ("RULER", 100.0, "x100"),  # NVIDIA/RULER scripts/eval/evaluate.py: round(100 * mean, 2)
    ("ChatRAG", 100.0, "x100"),  # ChatQA get_scores.py: F1 and accuracy as percentages in the paper
)


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


def official_scale(benchmark: str) -> tuple[float, str]:
    """The factor and label of a benchmark's own reporting scale ([0, 1] for the ChatQA 2 needle tasks)."""
    for part, factor, label in OFFICIAL_SCALES:
        if part in benchmark:
            return factor, label
    return 1.0, "[0, 1]"


def official_score(name: str, benchmark: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A task's score aggregated the way its benchmark aggregates it, on the benchmark's own scale.

    Most benchmarks average per-sample scores; SCROLLS's QMSum takes the geometric mean of the corpus-averaged
    ROUGE-1/2/L (metrics.scrolls_corpus_score), which is not the mean of per-sample geometric means."""
    from longkit.eval.metrics import scrolls_corpus_score

    scores = [r["scores"] for r in records]
    if name == "qmsum" and "SCROLLS" in benchmark:
        value = scrolls_corpus_score([x.get("rouge1", 0.0) for x in scores], [x.get("rouge2", 0.0) for x in scores],
                                     [x.get("rougeL", 0.0) for x in scores])
        how = "geometric mean of corpus-mean ROUGE-1/2/L"
    else:
        value = sum(x.get("score", 0.0) for x in scores) / len(scores) if scores else 0.0
        how = "mean of per-sample scores"
    factor, label = official_scale(benchmark)
    return {"score": round(value * factor, 2 if factor == 100.0 else 4), "scale": label, "aggregation": how}


def collect(cfg: SuiteConfig) -> dict[str, Any]:
    """Summaries of every finished (model, task) run under cfg.out, plus skips from every shard."""
    from longkit.eval.tasks.registry import resolve_name

    out = Path(cfg.out)
    models: dict[str, Any] = {}
    for model in cfg.models:
        per_task: dict[str, Any] = {}
        for entry in cfg.tasks:
            name = resolve_name(entry.name)
            s = _task_summary(task_dir(out, model.label, name) / "results.jsonl", name, model.model or "")
            if s is not None:
                per_task[name] = s
        models[model.label] = per_task
    skipped = []
    for f in sorted(out.glob("skipped*.json")):
        skipped += json.loads(f.read_text())
    return {"models": models, "skipped": skipped}


def _task_summary(results: Path, name: str, model: str) -> dict[str, Any] | None:
    """One finished run's summary with its benchmark, metric and official score; None when nothing ran."""
    from longkit.eval.runner import summarize, upgrade_scores
    from longkit.eval.tasks.registry import registry

    if not results.exists():
        return None
    records = [upgrade_scores(r) for r in ResultLog(results).records() if r.get("task") == name]
    if not records:
        return None
    info = registry()[name]
    group = ("length", "depth") if any("depth" in r["meta"] for r in records) and info.synthetic else ("length",)
    s = summarize(records, group)
    s.update({"task": name, "benchmark": info.benchmark, "metric": info.metric, "synthetic": info.synthetic,
              "model": model, "samples": len(records), "official": official_score(name, info.benchmark, records)})
    summary_file = results.parent / "summary.json"  # the task's own header line (haystack, protocol)
    if summary_file.exists() and json.loads(summary_file.read_text()).get("setup"):
        s["setup"] = json.loads(summary_file.read_text())["setup"]
    return s


def task_entry(s: dict[str, Any], cfg: SuiteConfig) -> dict[str, Any]:
    """One task's line in suite.json: scores by length, overall, official, effective length, adaptation rate."""
    by_len = by_length(s) if s["synthetic"] else {}
    entry = {"benchmark": s["benchmark"], "metric": s["metric"], "overall": s["overall"].get("score"),
             "by_length": by_len, "samples": s["samples"], "truncated": s.get("truncated", 0),
             "effective_length": effective_length(by_len, cfg.threshold) if by_len else None,
             "adaptation_rate": adaptation_rate(by_len, cfg.reference_length) if by_len else None,
             "official": s.get("official")}
    if not s["synthetic"]:
        entry["by_group"] = {k: v.get("score") for k, v in s["by"].get("length", {}).items()}
    return entry


def ruler_average(tasks: dict[str, dict[str, Any]], cfg: SuiteConfig) -> dict[str, Any] | None:
    """The mean over a model's RULER tasks at the lengths they all ran, with its effective length and rate."""
    ruler = {n: e for n, e in tasks.items() if e["benchmark"] == "RULER"}
    if not ruler:
        return None
    common = sorted(set.intersection(*[set(e["by_length"]) for e in ruler.values()]))
    avg = {n: round(sum(e["by_length"][n] for e in ruler.values()) / len(ruler), 4) for n in common}
    return {"tasks": len(ruler), "by_length": avg, "effective_length": effective_length(avg, cfg.threshold),
            "adaptation_rate": adaptation_rate(avg, cfg.reference_length)}


def build_report(cfg: SuiteConfig, data: dict[str, Any]) -> dict[str, Any]:
    """suite.json's content from collect()'s summaries."""
    report: dict[str, Any] = {"name": cfg.name, "threshold": cfg.threshold, "reference_length": cfg.reference_length,
                              "models": {}, "skipped": data["skipped"]}
    for label, tasks in data["models"].items():
        model_rep: dict[str, Any] = {"tasks": {name: task_entry(s, cfg) for name, s in tasks.items()}}
        avg = ruler_average(model_rep["tasks"], cfg)
        if avg is not None:
            model_rep["ruler_average"] = avg
        report["models"][label] = model_rep
    return report
