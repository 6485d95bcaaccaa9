"""SFT training data by name: the ChatQA papers' Hugging Face datasets, so that a stage blend can list
`{dataset: nvidia/ChatQA-Training-Data, subset: drop, weight: 0.069}` instead of a local JSONL path.

Datasets, revisions and subsets: longkit.sft.hub_datasets; row schemas: longkit.sft.convert.

Files are fetched with huggingface_hub into the standard Hub cache (HF_HUB_CACHE / HF_HOME) and converted
once into LONGKIT_CACHE/data/<org>--<name>/<revision>/<subset>.jsonl (the revision of the downloaded snapshot,
so another revision is converted again), next to <subset>.counts.json (rows read, converted, dropped and why).
Offline (HF_HUB_OFFLINE=1) only the caches are read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longkit.errors import ConfigError, InputError
from longkit.sft.convert import convert_file
from longkit.sft.hub_datasets import (  # noqa: F401  (re-exported: the blend's names)
    ARITHMETIC,
    DATASETS,
    LONG_ANSWER,
    NEWSQA_GONE,
    SHORT_OR_LONG,
    SHORT_SPAN,
    HubDataset,
    HubSubset,
    check_subset,
)

if TYPE_CHECKING:
    from longkit.train.config import BlendItem, SFTConfig, StageSpec

# Bump when a converter's output changes: a cached conversion made by another version is made again.
CONVERTER_VERSION = 1
FETCH_HINT = "fetch it with `longkit train fetch CONFIG` while online"


def _lookup(dataset: str, subset: str) -> tuple[HubDataset, HubSubset]:
    try:
        return DATASETS[dataset], check_subset(dataset, subset)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _download(ds: HubDataset, sub: HubSubset, label: str, allow_download: bool) -> Path:
    """The subset's file in the Hub cache, downloaded when allowed; a one-line InputError when it cannot be had."""
    from longkit.eval.fetch import HubUnavailable, hub_download

    assert sub.file is not None  # check_subset refused the unavailable ones
    try:
        return hub_download(ds.repo, sub.file, ds.revision, allow_download)
    except HubUnavailable as exc:
        raise InputError(f"{label}: {sub.file} (revision {ds.revision[:7]}) {exc.why}; {FETCH_HINT}") from None


def _targets(ds: HubDataset, subset: str, downloaded: Path) -> tuple[Path, Path]:
    """Where the converted JSONL and its counts live, keyed by the downloaded snapshot's revision."""
    from longkit.eval.fetch import _longkit_cache, _revision

    root = _longkit_cache() / "data" / ds.repo.replace("/", "--") / _revision(downloaded)
    return root / f"{subset}.jsonl", root / f"{subset}.counts.json"


def _read_counts(path: Path) -> dict[str, Any] | None:
    """A previous conversion's counts, None when absent, unreadable or made by another converter version."""
    try:
        counts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(counts, dict) or counts.get("converter") != CONVERTER_VERSION:
        return None
    return counts


def describe_counts(counts: dict[str, Any]) -> str:
    """One line: what a conversion read, kept and left out (and why)."""
    dropped = counts["dropped"]
    why = "".join(f"; {n} dropped: {reason}" for reason, n in sorted(dropped.items()))
    return (
        f"{counts['dataset']}/{counts['subset']}@{counts['revision'][:7]}: {counts['read']} rows read, "
        f"{counts['converted']} converted{why or ', none dropped'}"
    )


def _echo(line: str) -> None:
    import typer

    typer.echo(line, err=True)


def _resolve(dataset: str, subset: str, allow_download: bool) -> tuple[Path, dict[str, Any], bool]:
    """(converted JSONL, its counts, whether it was converted just now)."""
    ds, sub = _lookup(dataset, subset)
    label = f"{dataset}/{subset}"
    downloaded = _download(ds, sub, label, allow_download)
    out, counts_path = _targets(ds, subset, downloaded)
    counts = _read_counts(counts_path)
    if counts is not None and out.is_file():
        return out, counts, False
    from longkit.eval.fetch import _revision
    from longkit.io import write_json

    # Both files are written atomically and the pair is trusted only together (a conversion cut short between
    # them is made again); processes converting at once (a distributed launch) each write the same bytes.
    made = convert_file(downloaded, out, sub.convert)
    counts = {"dataset": dataset, "subset": subset, "revision": _revision(downloaded), "file": sub.file, **made}
    write_json(counts_path, {**counts, "converter": CONVERTER_VERSION})
    return out, counts, True


def resolve_blend_item(item: BlendItem, allow_download: bool = True) -> Path:
    """The local JSONL a blend item reads: its `path`, or its Hub subset converted (downloaded when allowed and
    not offline; the conversion's counts are printed once, when it is made)."""
    if item.dataset is None:
        assert item.path is not None  # BlendItem holds exactly one of path or dataset
        return Path(item.path)
    assert item.subset is not None
    path, counts, fresh = _resolve(item.dataset, item.subset, allow_download)
    if fresh:
        _echo(describe_counts(counts))
    return path


def blend_item_counts(item: BlendItem) -> dict[str, Any] | None:
    """The conversion counts of a dataset item already resolved (None for a path item), for the blend report."""
    if item.dataset is None or item.subset is None:
        return None
    return _resolve(item.dataset, item.subset, allow_download=False)[1]


def fetch_blend_items(stage_or_config: StageSpec | SFTConfig) -> list[dict[str, Any]]:
    """Download and convert every Hub dataset a stage (or every stage of a config) names, each once, printing one
    line of counts per subset; returns the counts with the local `path` of each converted JSONL."""
    stages = getattr(stage_or_config, "stages", None) or [stage_or_config]
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for stage in stages:
        for i, item in enumerate(stage.blend):
            if item.dataset is None or item.subset is None or (item.dataset, item.subset) in seen:
                continue
            try:
                path, counts, _fresh = _resolve(item.dataset, item.subset, allow_download=True)
            except (ConfigError, InputError) as exc:
                exc.args = (f"stage '{stage.name}' blend[{i}]: {exc}", *exc.args[1:])
                raise
            _echo(describe_counts(counts))
            seen[(item.dataset, item.subset)] = {**counts, "path": str(path)}
    return list(seen.values())


def require_cached(config: SFTConfig, where: str) -> None:
    """Offline, every Hub dataset the config names must already be in the cache: checked before a recipe's CPT
    section runs, so a missing SFT file is named before hours of training rather than after (online, the SFT
    section downloads what it needs when it starts)."""
    from longkit.eval.fetch import offline

    if not offline():
        return
    for stage in config.stages:
        for i, item in enumerate(stage.blend):
            if item.dataset is None or item.subset is None:
                continue
            ds, sub = _lookup(item.dataset, item.subset)
            try:
                _download(ds, sub, f"{item.dataset}/{item.subset}", allow_download=False)
            except InputError as exc:
                raise InputError(f"{where}: stage '{stage.name}' blend[{i}]: {exc}") from None
