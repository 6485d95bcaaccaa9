"""Which (model, task) jobs run where: `--shard K/N` as a deterministic subset, `--workers N` as N shard processes.

A job is one (model, task) pair with all its lengths: the lengths of a task share one results file and one run
record, so they never run in two shards at once."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

from longkit.errors import ConfigError, LongkitError
from longkit.eval.suite.config import SuiteConfig

UNSHARDED = (0, 1)


def jobs(cfg: SuiteConfig) -> list[tuple[int, int]]:
    """(model index, task index) pairs in a stable order (what shards split)."""
    return [(m, t) for m in range(len(cfg.models)) for t in range(len(cfg.tasks))]


def parse_shard(text: str, option: str = "--shard") -> tuple[int, int]:
    """'K/N' as (k, n) with 0 <= k < n; anything else is a ConfigError naming the option."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        k, n = -1, 0
    if not 0 <= k < n:
        raise ConfigError(f"{option}: expected K/N with 0 <= K < N, got '{text}'")
    return k, n


def shard_jobs(cfg: SuiteConfig, shard: tuple[int, int] = UNSHARDED) -> list[tuple[int, int]]:
    """Shard k of n: every n-th job from the k-th, so the n shards are disjoint and together cover the suite."""
    k, n = shard
    return [j for i, j in enumerate(jobs(cfg)) if i % n == k]


def run_shards(cfg: SuiteConfig, n: int, shard_fn: Callable[[SuiteConfig, tuple[int, int]], object]) -> None:
    """Run shards 0..n-1 in n worker processes, each calling shard_fn(cfg, (k, n)); failed shards in one ConfigError.

    shard_fn must be a module-level function (workers import it by name); each worker loads its own backends."""
    # spawn, not fork: a forked copy of a process that has loaded torch, CUDA or threads can deadlock
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(shard_fn, cfg, (k, n)) for k in range(n)]
        failures = [f"shard {k}/{n}: {reason}" for k, f in enumerate(futures) if (reason := _failure(f))]
    if failures:
        raise ConfigError("suite shards failed: " + "; ".join(failures))


def _failure(future: Future[object]) -> str | None:
    """Why a shard failed in one line (a user error or a dead worker), or None when it finished."""
    try:
        future.result()
    except LongkitError as exc:
        return str(exc)
    except BrokenProcessPool as exc:
        return f"the worker process died ({exc})"
    return None
