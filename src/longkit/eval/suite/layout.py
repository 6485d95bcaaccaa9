"""Where a suite writes each file under its output directory (shared by running, caching and reporting)."""

from __future__ import annotations

import re
from pathlib import Path


def safe_name(name: str) -> str:
    """A model label or task name made safe as a file or directory name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def shard_tag(shard: tuple[int, int]) -> str:
    """The infix of a shard's own files ('.shard1of4'); empty when the suite runs unsharded."""
    k, n = shard
    return f".shard{k}of{n}" if n > 1 else ""


def task_dir(out: Path, label: str, task: str) -> Path:
    """The run directory of one (model, task) job: results.jsonl, run.json, summary.json."""
    return out / safe_name(label) / safe_name(task)


def cache_file(out: Path, label: str, shard: tuple[int, int] = (0, 1)) -> Path:
    """The request-cache file a model's completions are appended to by this shard."""
    return out / "cache" / f"{safe_name(label)}{shard_tag(shard)}.jsonl"


def skipped_file(out: Path, shard: tuple[int, int]) -> Path:
    """The list of skipped tasks and lengths written by this shard."""
    return out / f"skipped{shard_tag(shard)}.json"


def cache_stats_file(out: Path, shard: tuple[int, int]) -> Path:
    """The per-model cache hit and miss counts written by this shard."""
    return out / f"cache{shard_tag(shard)}.json"
