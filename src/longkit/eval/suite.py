"""`longkit eval suite`: any mix of tasks x lengths x models from one YAML, with a request cache, shards
over processes, and one Markdown + JSON report (per task and length, RULER's effective length, UtK's
long-context adaptation rate, score-versus-length plots and NIAH heatmaps)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from longkit.backends.base import Backend, Completion, GenerationRequest
from longkit.errors import ConfigError, LongkitError
from longkit.io import ResultLog, atomic_write_text, write_json


class ModelEntry(BaseModel):
    """One model to evaluate and the backend that serves it."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str | None = None  # label in the report (defaults to the model)
    model: str = "smollm2-135m-instruct"
    backend: str = "hf"
    base_url: str | None = None
    tokenizer: str | None = None
    max_context: int | None = Field(None, ge=16)
    batch_size: int = Field(1, ge=1)
    prefix_reuse: bool | None = None  # hf backend: reuse the KV cache of shared prompt prefixes

    @property
    def label(self) -> str:
        """The name shown in reports and used for the output directory."""
        return self.name or self.model


class TaskEntry(BaseModel):
    """A task with optional per-task settings (lengths, samples, data path, task options)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    lengths: list[Annotated[int, Field(ge=16)]] | None = Field(None, min_length=1)
    samples: int | None = Field(None, ge=1)
    path: str | None = None
    max_length: int | None = Field(None, ge=16)
    budget: int | None = Field(None, ge=0)  # official prompt truncation (tokens); 0 = fit the window only
    levels: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class SuiteConfig(BaseModel):
    """A suite: models x tasks x lengths, data locations, thresholds and the output directory."""

    model_config = ConfigDict(extra="forbid")

    name: str = "suite"
    models: list[ModelEntry] = Field(default_factory=lambda: [ModelEntry()], min_length=1)
    tasks: list[TaskEntry] = Field(min_length=1)
    lengths: list[Annotated[int, Field(ge=16)]] = Field(default_factory=lambda: [4096], min_length=1)
    samples: int | None = Field(None, ge=1)  # per length for generated tasks; the first N rows for file tasks
    seed: int = 42
    chat: bool | None = None
    data: dict[str, str] = Field(default_factory=dict)  # infinitebench, longbench, scrolls, lveval, chatrag, squad, ...
    threshold: float = Field(0.856, ge=0, le=1)  # RULER: Llama-2-7B's 4K score
    reference_length: int | None = None  # adaptation rate = score(longest) / score(reference); default shortest
    allow_extrapolation: bool = False
    workers: int = Field(1, ge=1)
    out: str = "runs/suite"

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": t} if isinstance(t, str) else t for t in v]
        return v

    @field_validator("lengths", mode="before")
    @classmethod
    def _lengths(cls, v: Any) -> Any:
        if isinstance(v, str):
            from longkit.cli_common import parse_int_list

            return parse_int_list(v, "lengths")
        return v


def load_suite(path: str | Path, overrides: dict[str, Any] | None = None) -> SuiteConfig:
    """Read a suite YAML (CLI overrides applied); errors name the file and field."""
    from longkit.config import load_config

    return load_config(SuiteConfig, path, overrides)


# ------------------------------------------------------------------------------------------------
# request cache
# ------------------------------------------------------------------------------------------------


def request_key(model: str, max_context: int, req: GenerationRequest) -> str:
    """A stable hash of everything that determines a completion."""
    payload = json.dumps({"model": model, "max_context": max_context, "prompt": req.prompt, "messages": req.messages,
                          "max_new_tokens": req.max_new_tokens, "stop": list(req.stop),
                          "temperature": req.temperature, "seed": req.seed}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CachedBackend:
    """Wraps a backend: completions are stored by request hash, so a rerun (any task, any suite) is free."""

    def __init__(self, inner: Backend, path: str | Path, model: str):
        self.inner = inner
        self.name = f"cached-{inner.name}"
        self.tokenizer = inner.tokenizer
        self.model = model
        self.log = ResultLog(path)
        self.hits = 0
        self.misses = 0

    @property
    def max_context(self) -> int:
        """The wrapped backend's window."""
        return self.inner.max_context

    @max_context.setter
    def max_context(self, value: int) -> None:
        self.inner.max_context = value

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Cached completions where present; the rest generated in one call and stored."""
        keys = [request_key(self.model, self.max_context, r) for r in requests]
        out: list[Completion | None] = []
        missing = []
        for i, k in enumerate(keys):
            rec = self.log.get(k)
            if rec is None:
                out.append(None)
                missing.append(i)
            else:
                out.append(Completion(**rec["completion"]))
        self.hits += len(requests) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self.inner.generate([requests[i] for i in missing])
            for i, c in zip(missing, fresh):
                self.log.append({"key": keys[i], "completion": c.to_dict()})
                out[i] = c
        return [c for c in out if c is not None]


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def task_settings(cfg: SuiteConfig, entry: TaskEntry) -> dict[str, Any]:
    """The settings a task factory receives."""
    s: dict[str, Any] = {"lengths": entry.lengths or cfg.lengths, "seed": cfg.seed, "chat": cfg.chat, "data": cfg.data,
                         "options": entry.options}
    samples = entry.samples if entry.samples is not None else cfg.samples
    if samples is not None:
        s["samples"] = samples
    for k in ("path", "max_length", "budget", "levels"):
        v = getattr(entry, k)
        if v is not None:
            s[k] = v
    return s


def jobs(cfg: SuiteConfig) -> list[tuple[int, int]]:
    """(model index, task index) pairs in a stable order (what shards split)."""
    return [(m, t) for m in range(len(cfg.models)) for t in range(len(cfg.tasks))]


def run_suite(cfg: SuiteConfig, backends: dict[str, Backend] | None = None, shard: tuple[int, int] = (0, 1),
              progress: bool = True, report: bool = True) -> dict[str, Any]:
    """Run this shard's (model, task) jobs; unless sharded, write the report; returns the suite summary."""
    from longkit.eval.runner import run_task
    from longkit.eval.tasks.registry import check_options, make_task, registry, resolve_name

    # unknown names and options, and missing local models, fail the whole suite up front (a typo should not
    # cost a long run of the models before it)
    for t in cfg.tasks:
        resolve_name(t.name)
        check_options(t.name, t.options)
    check_models(cfg, skip=set(backends or {}))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    k, n = shard
    mine = [j for i, j in enumerate(jobs(cfg)) if i % n == k]
    live: dict[int, Backend] = {}
    skipped: list[dict[str, Any]] = []
    for m_idx, t_idx in mine:
        entry, model = cfg.tasks[t_idx], cfg.models[m_idx]
        name = resolve_name(entry.name)
        task_dir = out / _safe(model.label) / _safe(name)
        try:
            if m_idx not in live:
                live[m_idx] = _backend(cfg, model, backends, out)
            backend = live[m_idx]
            settings = task_settings(cfg, entry)
            if registry()[name].synthetic:
                keep, dropped = _fit_lengths(settings["lengths"], backend.max_context, cfg.allow_extrapolation)
                for length in dropped:
                    skipped.append({"model": model.label, "task": name, "length": length,
                                    "reason": f"length {length} exceeds the model's {backend.max_context}-token window "
                                              "(set allow_extrapolation: true to test beyond it)"})
                if not keep:
                    continue
                if max(keep) > backend.max_context:
                    backend.max_context = max(keep)
                make_task(name, {**settings, "lengths": keep})  # settings errors (a missing source) skip the task
                # one run per length, so a length the task cannot be built at skips only that length
                for length in keep:
                    try:
                        task = make_task(name, {**settings, "lengths": [length]})
                        run_task(task, backend, task_dir, batch_size=model.batch_size, progress=progress,
                                 model_name=model.model)
                    except LongkitError as exc:
                        skipped.append({"model": model.label, "task": name, "length": length, "reason": str(exc)})
                continue
            task = make_task(name, settings)
            run_task(task, backend, task_dir, batch_size=model.batch_size, progress=progress, model_name=model.model)
        except LongkitError as exc:
            skipped.append({"model": model.label, "task": name, "reason": str(exc)})
    shard_file = out / (f"skipped.shard{k}of{n}.json" if n > 1 else "skipped.json")
    write_json(shard_file, skipped)
    caches = {cfg.models[i].label: {"hits": b.hits, "misses": b.misses} for i, b in live.items()
              if isinstance(b, CachedBackend)}
    if n > 1:
        write_json(out / f"cache.shard{k}of{n}.json", caches)
        return {"skipped": skipped, "cache": caches}
    write_json(out / "cache.json", caches)
    return write_suite_report(cfg) if report else {"skipped": skipped, "cache": caches}


def check_models(cfg: SuiteConfig, where: str = "suite", skip: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Every model a local backend loads exists (resolved without network), before any model runs."""
    from longkit.errors import ConfigError, InputError
    from longkit.models.load import resolve

    for i, m in enumerate(cfg.models):
        if m.backend not in ("hf", "vllm") or m.label in skip:
            continue
        try:
            resolve(m.model)
        except InputError as exc:
            raise ConfigError(f"{where}: field 'models[{i}].model': {exc}") from None


def run_suite_parallel(cfg: SuiteConfig, config_path: str | Path, overrides: list[str]) -> dict[str, Any]:
    """Run cfg.workers shards as separate processes (each loads its own backend), then write the report."""
    check_models(cfg, str(config_path))
    n = cfg.workers
    procs = [subprocess.Popen([sys.executable, "-m", "longkit", "eval", "suite", str(config_path), "--shard",
                               f"{k}/{n}", "--no-report", "--quiet", *overrides]) for k in range(n)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise ConfigError(f"suite shards failed with exit codes {codes}")
    return write_suite_report(cfg)


def _backend(cfg: SuiteConfig, model: ModelEntry, backends: dict[str, Backend] | None, out: Path) -> Backend:
    if backends and model.label in backends:
        inner = backends[model.label]
    else:
        from longkit.backends import make_backend

        kwargs: dict[str, Any] = {}
        if model.prefix_reuse is not None and model.backend == "hf":
            kwargs["prefix_reuse"] = model.prefix_reuse
        inner = make_backend(model.backend, model.model, base_url=model.base_url, tokenizer=model.tokenizer,
                             max_context=model.max_context, batch_size=model.batch_size, **kwargs)
    return CachedBackend(inner, out / "cache" / f"{_safe(model.label)}.jsonl", model.model)  # type: ignore[return-value]


def _fit_lengths(lengths: list[int], window: int, extrapolate: bool) -> tuple[list[int], list[int]]:
    if extrapolate:
        return list(lengths), []
    return [n for n in lengths if n <= window], [n for n in lengths if n > window]


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------


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


def _by_length(summary: dict[str, Any]) -> dict[int, float]:
    out = {}
    for k, v in summary.get("by", {}).get("length", {}).items():
        try:
            out[int(float(k))] = float(v["score"])
        except (TypeError, ValueError, KeyError):
            continue
    return out


def collect(cfg: SuiteConfig) -> dict[str, Any]:
    """Summaries of every finished (model, task) run under cfg.out, plus skips from every shard."""
    from longkit.eval.runner import summarize
    from longkit.eval.tasks.registry import registry, resolve_name

    out = Path(cfg.out)
    models: dict[str, Any] = {}
    for model in cfg.models:
        per_task: dict[str, Any] = {}
        for entry in cfg.tasks:
            name = resolve_name(entry.name)
            results = out / _safe(model.label) / _safe(name) / "results.jsonl"
            if not results.exists():
                continue
            records = [r for r in ResultLog(results).records() if r.get("task") == name]
            if not records:
                continue
            info = registry()[name]
            group = ("length", "depth") if any("depth" in r["meta"] for r in records) and info.synthetic else ("length",)
            s = summarize(records, group)
            s.update({"task": name, "benchmark": info.benchmark, "metric": info.metric, "synthetic": info.synthetic,
                      "model": model.model, "samples": len(records),
                      "official": official_score(name, info.benchmark, records)})
            summary_file = results.parent / "summary.json"  # the task's own header line (haystack, protocol)
            if summary_file.exists() and json.loads(summary_file.read_text()).get("setup"):
                s["setup"] = json.loads(summary_file.read_text())["setup"]
            per_task[name] = s
        models[model.label] = per_task
    skipped = []
    for f in sorted(out.glob("skipped*.json")):
        skipped += json.loads(f.read_text())
    return {"models": models, "skipped": skipped}


# Each benchmark reports on its own scale: (benchmark name part, factor, how its scorer prints it).
OFFICIAL_SCALES = (
    ("InfiniteBench", 1.0, "[0, 1]"),  # OpenBMB/InfiniteBench src/compute_scores.py prints the mean as is
    ("LongBench", 100.0, "x100"),  # THUDM/LongBench eval.py: round(100 * mean, 2)
    ("SCROLLS", 100.0, "x100"),  # SCROLLS leaderboard and evaluator: percentages
    ("LV-Eval", 100.0, "x100"),  # LV-Eval evaluation.py: round(100 * mean, 2)
    ("RULER", 100.0, "x100"),  # NVIDIA/RULER scripts/eval/evaluate.py: round(100 * mean, 2)
    ("ChatRAG", 100.0, "x100"),  # ChatQA get_scores.py: F1 and accuracy as percentages in the paper
)


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


def write_suite_report(cfg: SuiteConfig) -> dict[str, Any]:
    """Write suite.json, report.md, score-vs-length plots and heatmaps under cfg.out; returns suite.json's content."""
    from longkit.eval.report import heatmap

    out = Path(cfg.out)
    data = collect(cfg)
    report: dict[str, Any] = {"name": cfg.name, "threshold": cfg.threshold, "reference_length": cfg.reference_length,
                              "models": {}, "skipped": data["skipped"]}
    lines = [f"# {cfg.name}", "",
             f"Effective length: the longest length whose score exceeds {cfg.threshold:.3f} (RULER). "
             "Adaptation rate: score at the longest length / score at the reference length "
             f"({cfg.reference_length or 'the shortest'}) (UtK). Per-length and overall scores are per-sample means "
             "in [0, 1]; the 'official' column is each benchmark's own reported number, aggregated its own way and on "
             "its own scale: LongBench, SCROLLS, LV-Eval, RULER and ChatRAG Bench x100, InfiniteBench and ChatQA 2's "
             "needle tasks in [0, 1]; SCROLLS QMSum is the geometric mean of the corpus-mean ROUGE-1/2/L.", ""]
    for label, tasks in data["models"].items():
        lengths = sorted({n for s in tasks.values() if s["synthetic"] for n in _by_length(s)})
        rows = []
        model_rep: dict[str, Any] = {"tasks": {}}
        for name, s in tasks.items():
            by_len = _by_length(s) if s["synthetic"] else {}
            entry = {"benchmark": s["benchmark"], "metric": s["metric"], "overall": s["overall"].get("score"),
                     "by_length": by_len, "samples": s["samples"], "truncated": s.get("truncated", 0),
                     "effective_length": effective_length(by_len, cfg.threshold) if by_len else None,
                     "adaptation_rate": adaptation_rate(by_len, cfg.reference_length) if by_len else None,
                     "official": s.get("official")}
            if not s["synthetic"]:
                entry["by_group"] = {k: v.get("score") for k, v in s["by"].get("length", {}).items()}
            model_rep["tasks"][name] = entry
            rows.append((name, entry))
        ruler = {n: e for n, e in model_rep["tasks"].items() if e["benchmark"] == "RULER"}
        if ruler:
            common = sorted(set.intersection(*[set(e["by_length"]) for e in ruler.values()]))
            avg = {n: round(sum(e["by_length"][n] for e in ruler.values()) / len(ruler), 4) for n in common}
            model_rep["ruler_average"] = {"tasks": len(ruler), "by_length": avg,
                                          "effective_length": effective_length(avg, cfg.threshold),
                                          "adaptation_rate": adaptation_rate(avg, cfg.reference_length)}
        report["models"][label] = model_rep
        lines += [f"## {label}", ""]
        head = "| task | benchmark | metric | " + " | ".join(_k(n) for n in lengths) + \
            " | overall | official | effective length | adaptation rate | n |"
        lines += [head, "|" + "---|" * (len(lengths) + 8)]
        for name, e in rows:
            cells = [f"{e['by_length'][n]:.3f}" if n in e["by_length"] else "–" for n in lengths]
            off = e.get("official") or {}
            official = f"{off['score']:g} ({off['scale']})" if off else "–"
            lines.append(f"| {name} | {e['benchmark']} | {e['metric']} | " + " | ".join(cells) +
                         f" | {_f(e['overall'])} | {official} | {_k(e['effective_length'])} | "
                         f"{_rate(e['adaptation_rate'], e['by_length'], cfg.reference_length)} | {e['samples']} |")
        if "ruler_average" in model_rep:
            ra = model_rep["ruler_average"]
            cells = [f"**{ra['by_length'][n]:.3f}**" if n in ra["by_length"] else "–" for n in lengths]
            lines.append(f"| **RULER average ({ra['tasks']} tasks)** | RULER | mean | " + " | ".join(cells) +
                         f" | – | – | **{_k(ra['effective_length'])}** | "
                         f"**{_rate(ra['adaptation_rate'], ra['by_length'], cfg.reference_length)}** | |")
        lines.append("")
        trunc = sum(e["truncated"] for e in model_rep["tasks"].values())
        if trunc:
            lines += [f"Prompts cut in the middle to fit the window: {trunc}.", ""]
        setups = [(n, s["setup"]) for n, s in tasks.items() if s.get("setup")]
        if setups:  # the haystack and protocol of each task, and where they differ from the official ones
            lines += ["How samples were built:", ""] + [f"- {n}: {text}" for n, text in setups] + [""]
        plot = _plot_lengths(model_rep, out / f"{_safe(label)}_score_vs_length.png", label)
        if plot:
            lines += [f"![score vs length]({plot.name})", ""]
        for name, s in tasks.items():
            if "depth" in s["by"] and s["cells"]:
                img = out / f"{_safe(label)}_{_safe(name)}_heatmap.png"
                heatmap(s, img, f"{name} · {label}")
                lines += [f"![{name} heatmap]({img.name})", ""]
        files = [(n, e) for n, e in rows if e.get("by_group")]
        if files:
            lines += ["Benchmark-file tasks by input length (tokens, bucketed):", ""]
            for n, e in files:
                lines.append(f"- {n}: " + ", ".join(f"{_k(int(k)) if k.isdigit() else k}: {_f(v)}"
                                                   for k, v in e["by_group"].items()))
            lines.append("")
    if data["skipped"]:
        lines += ["## Skipped", "", "| model | task | length | reason |", "|---|---|---|---|"]
        for s in data["skipped"]:
            lines.append(f"| {s['model']} | {s['task']} | {_k(s.get('length'))} | {s['reason']} |")
        lines.append("")
    write_json(out / "suite.json", report)
    atomic_write_text(out / "report.md", "\n".join(lines).rstrip() + "\n")
    return report


def _rate(rate: float | None, by_length: dict[int, float], reference: int | None) -> str:
    """The adaptation rate, naming the reference length when the configured one was not run."""
    if rate is None or not by_length:
        return _f(rate)
    used = reference if reference in by_length else min(by_length)
    return _f(rate) if used == reference or reference is None else f"{rate:.3f} (vs {_k(used)})"


def _f(x: Any) -> str:
    return "–" if x is None else f"{x:.3f}"


def _k(n: Any) -> str:
    if n is None:
        return "–"
    return f"{n // 1024}K" if isinstance(n, int) and n % 1024 == 0 else str(n)


def _plot_lengths(model_rep: dict[str, Any], path: Path, label: str) -> Path | None:
    series = {n: e["by_length"] for n, e in model_rep["tasks"].items() if len(e["by_length"]) >= 1}
    if "ruler_average" in model_rep:
        series["RULER average"] = model_rep["ruler_average"]["by_length"]
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, by in series.items():
        xs = sorted(by)
        ax.plot(xs, [by[x] for x in xs], marker="o", linewidth=2.5 if name == "RULER average" else 1.2,
                color="black" if name == "RULER average" else None, label=name)
    ax.set_xscale("log", base=2)
    xs = sorted({x for by in series.values() for x in by})
    ax.set_xticks(xs, [_k(x) for x in xs])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("score")
    ax.set_title(f"score vs length · {label}", fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
