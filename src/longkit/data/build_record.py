"""What a finished `data build` output holds, checked before a rerun writes anything.

A build's stats.json records its config; beside it, `sources` records each local source file by size and
modification time. A rerun into the same output:

- with the same config and unchanged sources, and the output intact, is already complete (nothing written);
- with another config is refused in one line naming the field, unless the user asks to rebuild in place
  (`--overwrite`; the corpus is still reused when its tokenizer and sources match);
- with the same config but edited sources is built again, the corpus tokenized again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longkit.data.config import DataConfig
from longkit.errors import ConfigError, InputError
from longkit.rerun import first_difference, jsonable, refusal_line

# Config fields that change how fast a build runs or where it goes, not what it writes.
NOT_RECORDED = ("num_proc", "out")


def recorded_config(cfg: DataConfig) -> dict[str, Any]:
    """The config as a build's record compares it."""
    return {k: v for k, v in jsonable(cfg.to_dict()).items() if k not in NOT_RECORDED}


def source_files(cfg: DataConfig) -> list[list[Any]]:
    """Each local source file (a directory's files, in order) by path, size and modification time: an edited
    source is new data. A Hub dataset is named in the config only."""
    files: list[list[Any]] = []
    for spec in cfg.sources:
        path = Path(spec.path)
        for p in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if p.is_file():
                st = p.stat()
                files.append([str(p), st.st_size, st.st_mtime_ns])
    return files


def previous_stats(root: Path) -> dict[str, Any] | None:
    """A build's stats.json in root (None when root holds no build report)."""
    path = root / "stats.json"
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stats if isinstance(stats, dict) and isinstance(stats.get("config"), dict) else None


def check_rerun(cfg: DataConfig, root: Path, where: str, overwrite: bool) -> dict[str, Any] | None:
    """Refuse another config's build in root (unless overwrite); returns the stored stats when root already
    holds this build, complete and intact, from unchanged sources (None: build it)."""
    stats = previous_stats(root)
    if stats is None:
        return None
    old = {k: v for k, v in stats["config"].items() if k not in NOT_RECORDED}
    change = first_difference(old, recorded_config(cfg))
    if change is not None:
        if overwrite:
            return None
        also = ", pass --overwrite to build it again in place"
        raise ConfigError(f"{where}: {refusal_line(change[0], root, 'built', change[1], change[2], also)}")
    if stats.get("sources") != source_files(cfg) or not _intact(root):
        return None
    return stats


def sources_changed(cfg: DataConfig, root: Path) -> bool:
    """Whether root's last build read source files that have been edited since (same paths, other size or time)."""
    stats = previous_stats(root)
    return stats is not None and "sources" in stats and stats["sources"] != source_files(cfg)


def _intact(root: Path) -> bool:
    """The manifest's shards are all there at their recorded sizes, and the corpus opens (sizes checked)."""
    from longkit.data.sources import TokenizedCorpus
    from longkit.data.stats import MANIFEST

    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        shards = manifest["shards"]
        if not all(
            (root / rel).is_file() and (root / rel).stat().st_size == rec["bytes"] for rel, rec in shards.items()
        ):
            return False
        TokenizedCorpus(root / "corpus")
    except (OSError, ValueError, KeyError, TypeError, InputError):
        return False
    return True
