"""Driving a suite's jobs through the task runner: one cached backend per model, per-task window views, skips."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from longkit.backends.base import Backend
from longkit.errors import ConfigError, InputError, LongkitError, located
from longkit.eval.suite.cache import CachedBackend, RequestCache
from longkit.eval.suite.config import ModelEntry, SuiteConfig, TaskEntry, check_models
from longkit.eval.suite.layout import cache_stats_file, safe_name, shard_tag, skipped_file, task_dir
from longkit.eval.suite.record import check_suite_record, write_suite_record
from longkit.eval.suite.schedule import UNSHARDED, run_shards, shard_jobs
from longkit.io import output_dir, read_json, write_json

Skipped = list[dict[str, Any]]


def task_settings(cfg: SuiteConfig, entry: TaskEntry) -> dict[str, Any]:
    """The settings a task factory receives."""
    # copies, so a factory that edits its settings cannot change what the next task reads
    s: dict[str, Any] = {
        "lengths": list(entry.lengths or cfg.lengths),
        "seed": cfg.seed,
        "chat": cfg.chat,
        "data": dict(cfg.data),
        "options": dict(entry.options),
    }
    samples = entry.samples if entry.samples is not None else cfg.samples
    if samples is not None:
        s["samples"] = samples
    if cfg.judge is not None:  # the judge's spec; a judged task builds its backend when it first scores
        s["judge"] = cfg.judge
    for k in ("path", "max_length", "budget", "levels"):
        v = getattr(entry, k)
        if v is not None:
            s[k] = v
    return s


def run_suite(
    cfg: SuiteConfig,
    backends: dict[str, Backend] | None = None,
    shard: tuple[int, int] = UNSHARDED,
    progress: bool = True,
    report: bool = True,
) -> dict[str, Any]:
    """Run this shard's (model, task) jobs; unless sharded, write the report; returns the suite summary.

    Nothing is written before the first result (out/run.json then records what made the results); when every
    job was skipped, an unsharded run raises InputError naming each reason and leaves out as it was."""
    check_suite(cfg, backends=backends)
    first_write = functools.partial(write_suite_record, cfg)
    live: dict[int, CachedBackend] = {}
    skipped: Skipped = []
    ran = 0
    for m_idx, t_idx in shard_jobs(cfg, shard):
        model = cfg.models[m_idx]
        try:
            if m_idx not in live:
                live[m_idx] = cached_backend(model, backends, Path(cfg.out), shard)
        except LongkitError as exc:  # a model that cannot be built skips its jobs, not the suite
            skipped.append({"model": model.label, "task": _task_name(cfg.tasks[t_idx]), "reason": str(exc)})
            continue
        ran += run_job(cfg, cfg.tasks[t_idx], model, live[m_idx], skipped, progress, on_first_write=first_write)
    if skipped and not ran and shard[1] == 1:
        raise InputError(nothing_ran(skipped))
    return _finish(cfg, shard, live, skipped, report)


def nothing_ran(skipped: Skipped) -> str:
    """The one line that says every job was skipped, with each reason."""
    reasons = "; ".join(
        f"{s['model']} · {s['task']}"
        + (f" @ {s['length']}" if s.get("length") else "")
        + f": {' '.join(str(s['reason']).split())}"
        for s in skipped
    )
    return f"every task was skipped, so nothing was evaluated or written ({reasons})"


def run_suite_parallel(cfg: SuiteConfig, where: str = "suite", workers: int | None = None) -> dict[str, Any]:
    """Run `workers` (default cfg.workers) shards in worker processes, then write the report; returns suite.json."""
    from longkit.eval.suite.aggregate import collect
    from longkit.eval.suite.report import write_suite_report

    check_suite(cfg, where)
    run_shards(cfg, workers or cfg.workers, _run_shard)
    data = collect(cfg)
    if not any(data["models"].values()):
        raise InputError(nothing_ran(data["skipped"]))
    return write_suite_report(cfg)


def _run_shard(cfg: SuiteConfig, shard: tuple[int, int]) -> dict[str, Any]:
    """One worker's shard, without progress bars (they would interleave) and without the report."""
    return run_suite(cfg, shard=shard, progress=False, report=False)


def check_suite(cfg: SuiteConfig, where: str = "suite", backends: dict[str, Backend] | None = None) -> None:
    """Everything checkable before a model loads, so nothing is written when it fails: task names and options,
    local models, and that cfg.out holds no results of other models or settings (its run.json)."""
    from longkit.backends.registry import require
    from longkit.eval.tasks.registry import check_options, registry, resolve_name

    # a typo should not cost a long run of the models before it
    for j, t in enumerate(cfg.tasks):
        with located(f"{where}: field 'tasks[{j}]'"):
            check_options(t.name, t.options)
            for need in registry()[resolve_name(t.name)].needs:  # e.g. perplexity: every backend must score
                if need == "judge":  # scored by an LLM judge: the suite must name one
                    _require_judge(cfg, resolve_name(t.name))
                    continue
                for i, m in enumerate(cfg.models):
                    with located(f"models[{i}]"):
                        require(m.backend, need, f"task {resolve_name(t.name)}")
    check_models(cfg, where, skip=set(backends or {}))
    check_suite_record(cfg)


def _require_judge(cfg: SuiteConfig, name: str) -> None:
    """A task scored by an LLM judge, in a suite that names none: refused before any model loads."""
    if cfg.judge is None:
        raise ConfigError(
            f"task {name} is scored by an LLM judge and no judge is configured; add `judge:` with a backend spec "
            "to the suite config, e.g. `judge: {backend: openai, model: gpt-4o-2024-05-13, base_url: ...}`"
        )


def _task_name(entry: TaskEntry) -> str:
    """The registered name of a task entry (aliases resolved)."""
    from longkit.eval.tasks.registry import resolve_name

    return resolve_name(entry.name)


def cached_backend(
    model: ModelEntry, backends: dict[str, Backend] | None, out: Path, shard: tuple[int, int] = UNSHARDED
) -> CachedBackend:
    """The model's backend (a given one, else built from its spec) behind this shard's request cache."""
    inner = backends[model.label] if backends and model.label in backends else model.build()
    cache = RequestCache.for_model(out / "cache", safe_name(model.label), shard_tag(shard))
    return CachedBackend(inner, cache, model.model or model.label)


def run_job(
    cfg: SuiteConfig,
    entry: TaskEntry,
    model: ModelEntry,
    backend: CachedBackend,
    skipped: Skipped,
    progress: bool = True,
    *,
    on_first_write: Callable[[], None] | None = None,
) -> bool:
    """Run one (model, task) job; whatever cannot run is added to `skipped` with the reason. True when it ran."""
    from longkit.eval.runner import run_task
    from longkit.eval.tasks.registry import make_task, registry

    name = _task_name(entry)
    where = task_dir(Path(cfg.out), model.label, name)
    try:
        if registry()[name].run is not None:
            return _run_scoring(cfg, entry, name, model, backend, skipped, progress, on_first_write)
        if registry()[name].synthetic:
            return _run_lengths(cfg, entry, name, model, backend, skipped, progress, on_first_write)
        run_task(
            make_task(name, task_settings(cfg, entry)),
            backend,
            where,
            batch_size=model.batch_size,
            progress=progress,
            model_name=model.model or "",
            on_first_write=on_first_write,
        )
        return True
    except LongkitError as exc:
        skipped.append({"model": model.label, "task": name, "reason": str(exc)})
        return False


def _run_lengths(
    cfg: SuiteConfig,
    entry: TaskEntry,
    name: str,
    model: ModelEntry,
    backend: CachedBackend,
    skipped: Skipped,
    progress: bool,
    on_first_write: Callable[[], None] | None,
) -> bool:
    """A generated task, one run per length, so a length the task cannot be built at skips only that length."""
    from longkit.eval.runner import run_task
    from longkit.eval.tasks.registry import make_task

    settings = task_settings(cfg, entry)
    keep = _lengths_that_fit(cfg, settings["lengths"], name, model, backend, skipped)
    if not keep:
        return False
    # extrapolation widens this task's own view; the shared backend, its cache keys and later tasks keep the window
    view = backend.with_window(max(keep)) if max(keep) > backend.max_context else backend
    make_task(name, {**settings, "lengths": keep})  # settings errors (a missing source) skip the task
    ran = False
    for length in keep:
        try:
            task = make_task(name, {**settings, "lengths": [length]})
            run_task(
                task,
                view,
                task_dir(Path(cfg.out), model.label, name),
                batch_size=model.batch_size,
                progress=progress,
                model_name=model.model or "",
                on_first_write=on_first_write,
            )
            ran = True
        except LongkitError as exc:
            skipped.append({"model": model.label, "task": name, "length": length, "reason": str(exc)})
    return ran


def _run_scoring(
    cfg: SuiteConfig,
    entry: TaskEntry,
    name: str,
    model: ModelEntry,
    backend: CachedBackend,
    skipped: Skipped,
    progress: bool,
    on_first_write: Callable[[], None] | None,
) -> bool:
    """A task that runs itself (it scores text, or answers in several passes) at the lengths that fit."""
    from longkit.eval.tasks.registry import registry

    settings = task_settings(cfg, entry)
    spec = registry()[name]
    run = spec.run
    assert run is not None
    if not spec.synthetic:  # a file task's lengths are its files'
        run(
            spec,
            settings,
            backend,
            task_dir(Path(cfg.out), model.label, name),
            model_name=model.model or "",
            batch_size=model.batch_size,
            progress=progress,
            on_first_write=on_first_write,
        )
        return True
    keep = _lengths_that_fit(cfg, settings["lengths"], name, model, backend, skipped)
    if not keep:
        return False
    run(
        spec,
        {**settings, "lengths": keep},
        backend,
        task_dir(Path(cfg.out), model.label, name),
        model_name=model.model or "",
        batch_size=model.batch_size,
        progress=progress,
        on_first_write=on_first_write,
        allow_extrapolation=cfg.allow_extrapolation,
    )
    return True


def _lengths_that_fit(
    cfg: SuiteConfig, lengths: list[int], name: str, model: ModelEntry, backend: CachedBackend, skipped: Skipped
) -> list[int]:
    """The task's lengths the model's window takes (all of them when extrapolating); the others go to `skipped`."""
    keep, dropped = fit_lengths(lengths, backend.max_context, cfg.allow_extrapolation)
    for length in dropped:
        skipped.append(
            {
                "model": model.label,
                "task": name,
                "length": length,
                "reason": f"length {length} exceeds the model's {backend.max_context}-token window "
                "(set allow_extrapolation: true to test beyond it)",
            }
        )
    return keep


def fit_lengths(lengths: list[int], window: int, extrapolate: bool) -> tuple[list[int], list[int]]:
    """The lengths that fit the window (all of them when extrapolating), and those that do not."""
    if extrapolate:
        return list(lengths), []
    return [n for n in lengths if n <= window], [n for n in lengths if n > window]


def _finish(
    cfg: SuiteConfig, shard: tuple[int, int], live: dict[int, CachedBackend], skipped: Skipped, report: bool
) -> dict[str, Any]:
    """Write this shard's skips and cache counts; an unsharded run also writes the report (unless told not to).

    A rerun that answered nothing and skipped what the last one skipped is complete: it rewrites nothing."""
    out = Path(cfg.out)
    partial = shard[1] > 1 or not report
    if _complete(out, shard, live, skipped, partial):
        done = {"skipped": skipped} if partial else dict(read_json(out / "suite.json", "suite report"))
        return {**done, "complete": True}
    output_dir(out)
    write_json(skipped_file(out, shard), skipped)
    caches = {cfg.models[i].label: {"hits": b.hits, "misses": b.misses} for i, b in live.items()}
    write_json(cache_stats_file(out, shard), caches)
    if partial:
        return {"skipped": skipped, "cache": caches}
    from longkit.eval.suite.report import write_suite_report

    return write_suite_report(cfg)


def _complete(
    out: Path, shard: tuple[int, int], live: dict[int, CachedBackend], skipped: Skipped, partial: bool
) -> bool:
    """Whether this run generated and logged nothing new, skipped what the last run skipped, and left its files."""
    if any(b.hits + b.misses for b in live.values()):  # every new result passed through the cache
        return False
    path = skipped_file(out, shard)
    if not path.is_file() or json.loads(path.read_text(encoding="utf-8")) != json.loads(json.dumps(skipped)):
        return False
    return partial or ((out / "suite.json").is_file() and (out / "report.md").is_file())
