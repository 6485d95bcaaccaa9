"""Percentile-bootstrap intervals over evaluation units (samples, documents), seeded so a rerun prints the same
numbers.

The unit resampled is the one that is independent: a sample of a task, a document of a perplexity run (its
windows share a text, so resampling windows would understate the spread). Each function draws `resamples`
index sets of the units with replacement and reports the 2.5th and 97.5th percentiles of the statistic
(Efron's percentile interval, as lm-evaluation-harness's bootstrap standard errors and HELMET's intervals use
resampling of samples).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

DEFAULT_RESAMPLES = 1000
# More resamples than this do not move a 95% interval in its third decimal; a larger count is a typo.
MAX_RESAMPLES = 100_000
# Resamples are drawn this many at a time, so memory stays bounded whatever the count and the number of units.
_CHUNK = 1000
LEVEL = 0.95
# Below this many units a percentile interval is unreliable (it cannot be wider than the few values seen):
# reports mark such cells as "wide" instead of printing a reassuringly narrow interval.
FEW = 5


def resampled(
    statistic: Callable[[np.ndarray], np.ndarray], n: int, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """The statistic of `resamples` index sets of n units drawn with replacement (each row of the index array one
    resample), drawn in chunks so memory stays bounded."""
    if not 1 <= resamples <= MAX_RESAMPLES:
        raise ValueError(f"resamples must be between 1 and {MAX_RESAMPLES}, got {resamples}")
    sizes = [min(_CHUNK, resamples - start) for start in range(0, resamples, _CHUNK)]
    return np.concatenate([statistic(rng.integers(0, n, size=(size, n))) for size in sizes])


def _resampled(statistic: Callable[[np.ndarray], np.ndarray], n: int, resamples: int, seed: int) -> np.ndarray:
    return resampled(statistic, n, resamples, np.random.default_rng(seed))


def _bounds(stats: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return float(lo), float(hi)


def mean_interval(values: Sequence[float], resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean of values (one per unit); a single value is its own interval."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        raise ValueError("no values to bootstrap")
    if len(x) == 1:
        return float(x[0]), float(x[0])
    return _bounds(_resampled(lambda idx: x[idx].mean(axis=1), len(x), resamples, seed))


def ratio_interval(
    numerators: Sequence[float], denominators: Sequence[float], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95% interval of sum(numerators) / sum(denominators) with units resampled together (e.g. a corpus's token
    loss: summed negative log-likelihood over summed tokens, resampled by document)."""
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    if len(num) == 0 or len(num) != len(den):
        raise ValueError("numerators and denominators must be non-empty and of equal length")
    if len(num) == 1:
        return float(num[0] / den[0]), float(num[0] / den[0])
    return _bounds(_resampled(lambda idx: num[idx].sum(axis=1) / den[idx].sum(axis=1), len(num), resamples, seed))


def paired_difference(
    a: Sequence[float], b: Sequence[float], resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> dict[str, float]:
    """Mean of b - a over paired units, its 95% interval, and a two-sided p-value from the paired sign-flip
    permutation test (each unit's difference keeps or flips its sign; exact when 2^n is at most resamples)."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if len(d) == 0:
        raise ValueError("no paired units")
    lo, hi = mean_interval(d.tolist(), resamples, seed)
    return {
        "difference": float(d.mean()),
        "ci_low": lo,
        "ci_high": hi,
        "p_value": sign_flip_p(d, resamples, seed),
        "units": len(d),
    }


def sign_flip_p(d: np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value of mean(d) = 0 under random sign flips of the paired differences."""
    observed = abs(d.mean())
    if observed == 0:
        return 1.0
    n = len(d)
    if 2**n <= resamples:  # every sign pattern once: the exact test
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        means = np.abs((signs * d).mean(axis=1))
    else:  # random sign patterns, drawn in bounded chunks
        if resamples > MAX_RESAMPLES:
            raise ValueError(f"resamples must be between 1 and {MAX_RESAMPLES}, got {resamples}")
        rng = np.random.default_rng(seed)
        sizes = [min(_CHUNK, resamples - start) for start in range(0, resamples, _CHUNK)]
        means = np.concatenate([np.abs((rng.choice([-1, 1], size=(size, n)) * d).mean(axis=1)) for size in sizes])
    # the observed pattern counts as one of the draws (Phipson & Smyth), so p is never 0 from sampling
    exact = 2**n <= resamples
    hits = int((means >= observed - 1e-12).sum())
    return float(hits / len(means)) if exact else float((hits + 1) / (len(means) + 1))
