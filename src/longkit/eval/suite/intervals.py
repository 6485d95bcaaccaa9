"""95% bootstrap intervals for every number of a suite: per task overall and per length, effective length and
adaptation rate (resampling samples within each length, so every length keeps its own sample count), and the same
for each benchmark average (resampling within each task and length).

A cell with fewer than `bootstrap.FEW` samples gets its interval and the flag `wide`, so the report says so instead
of printing a narrow-looking interval over two values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from longkit.eval.bootstrap import FEW, mean_interval, resampled

Series = dict[int, float]


def samples_by_length(records: list[dict[str, Any]]) -> dict[int, list[float]]:
    """Each numeric length's per-sample primary scores."""
    out: dict[int, list[float]] = defaultdict(list)
    for r in records:
        try:
            length = int(str(r["meta"].get("length")))
        except (TypeError, ValueError):
            continue
        out[length].append(float(r["scores"].get("score", 0.0)))
    return dict(sorted(out.items()))


def _rounded(bounds: tuple[float, float]) -> list[float]:
    return [round(x, 4) for x in bounds]


def samples_by_group(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each length group's per-sample primary scores, keyed as the runner's summary keys them (`by_group`)."""
    from longkit.eval.runner import length_key

    out: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if r["meta"].get("length") is not None:
            out[length_key(r["meta"]["length"])].append(float(r["scores"].get("score", 0.0)))
    return dict(out)


def _resampled_means(
    samples: dict[int, list[float]], resamples: int, rng: np.random.Generator
) -> dict[int, np.ndarray]:
    """Per length, `resamples` means of a resample (with replacement) of that length's samples."""
    return {n: _means(np.asarray(v, dtype=float), resamples, rng) for n, v in samples.items()}


def _means(x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """`resamples` means of resamples of x."""
    return resampled(lambda idx: x[idx].mean(axis=1), len(x), resamples, rng)


def _bounds(values: list[float], discrete: bool = False) -> list[float] | None:
    """2.5th and 97.5th percentiles; for a discrete statistic (a length) two values that occurred."""
    if not values:
        return None
    lo, hi = (
        (np.percentile(values, 2.5, method="lower"), np.percentile(values, 97.5, method="higher"))
        if discrete
        else tuple(np.percentile(values, [2.5, 97.5]))
    )
    return [round(float(lo), 4), round(float(hi), 4)]


def derived_intervals(
    series_draws: list[Series], effective: Callable[[Series], int | None], rate: Callable[[Series], float | None]
) -> dict[str, Any]:
    """Intervals of the effective length (no passing length counts as 0) and the adaptation rate over draws."""
    lengths = [effective(s) or 0 for s in series_draws]
    rates = [r for r in (rate(s) for s in series_draws) if r is not None]
    eff = _bounds([float(x) for x in lengths], discrete=True)
    return {
        "effective_length_ci": None if eff is None else [int(eff[0]) or None, int(eff[1]) or None],
        "adaptation_rate_ci": _bounds(rates),
    }


def task_intervals(
    records: list[dict[str, Any]],
    by_length: bool,
    rated: bool,
    effective: Callable[[Series], Any],
    rate: Callable[[Series], Any],
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """A task's overall interval, and where it has lengths, per-length, effective-length and rate intervals."""
    scores = [float(r["scores"].get("score", 0.0)) for r in records]
    out: dict[str, Any] = {
        "overall_ci": [round(x, 4) for x in mean_interval(scores, resamples, seed)],
        "wide": len(scores) < FEW,
    }
    if not by_length:  # a benchmark file's tasks: their length groups (BABILong's 1k..128k, LongBench's buckets)
        groups = samples_by_group(records)
        if groups:
            out["by_group_ci"] = {k: _rounded(mean_interval(v, resamples, seed)) for k, v in groups.items()}
        return out
    samples = samples_by_length(records)
    if not samples:
        return out
    out["by_length_ci"] = {n: [round(x, 4) for x in mean_interval(v, resamples, seed)] for n, v in samples.items()}
    out["wide_lengths"] = [n for n, v in samples.items() if len(v) < FEW]
    if rated:
        draws = _resampled_means(samples, resamples, np.random.default_rng(seed))
        series = [{n: float(d[b]) for n, d in draws.items()} for b in range(resamples)]
        out.update(derived_intervals(series, effective, rate))
    return out


def group_intervals(
    members: dict[str, dict[int, list[float]]],
    lengths: list[int],
    effective: Callable[[Series], Any],
    rate: Callable[[Series], Any],
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """A benchmark average over tasks at shared lengths: each task's samples resampled within each length."""
    if not lengths:
        return {}
    rng = np.random.default_rng(seed)
    per_task = [_resampled_means({n: s[n] for n in lengths}, resamples, rng) for s in members.values()]
    averaged = {n: np.mean([d[n] for d in per_task], axis=0) for n in lengths}
    series = [{n: float(averaged[n][b]) for n in lengths} for b in range(resamples)]
    out = {"by_length_ci": {n: _bounds(averaged[n].tolist()) for n in lengths}}
    out.update(derived_intervals(series, effective, rate))
    return out
