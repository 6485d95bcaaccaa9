"""SFT training data by name: the ChatQA papers' Hugging Face datasets, so that a stage blend can list
`{dataset: nvidia/ChatQA-Training-Data, subset: drop, weight: 0.069}` instead of a local JSONL path.

Datasets (files, revisions and row schemas as published on the Hub; schemas in longkit.sft.convert):

- nvidia/ChatQA-Training-Data, ChatQA 1.5's two-stage blend (Liu et al. 2024, arXiv:2401.10225), pinned at
  164f018cf5e7862ae5ef9c2b8ada47b07e3e3a31 (2024-06-04, the head of its history: "Upload train.json" to squad2.0
  after "Delete squad2.0", and NewsQA removed in 2daf20f). One `<subset>/train.json` per subset, except TAT-QA,
  published as two files (`tatqa/train_arithmetic.json`, `tatqa/train_others.json`) that the card's blend
  weighs separately (tatqa-arithmetic, tatqa-others). NewsQA is not distributed there any more: its folder
  holds only a README pointing to NewsQA's own download script, so a blend needs a local `path:` for it.
- nvidia/ChatQA2-Long-SFT-data, ChatQA 2's stage-3 additions (Xu et al. 2024, arXiv:2407.14482), pinned at
  7acef85b3b1c0fb6c088793f8bfbd7b237e14c5b (2024-09-09; the data files date from 198d3bd "add long_sft" and
  c538a45 "add NQA", the later commits only edit the README): `long_sft/long_sft_QA_train.json` and
  `NarrativeQA_131072/NarrativeQA_131072_QA_train.json` (the card's train splits).

Stage-2 instructions: the ChatQA-Training-Data card adds one to the user's turn per dataset type; the card
quotes them without a final period, longkit adds one (as ChatQA's evaluation prompts end theirs).

Files are fetched with huggingface_hub into the standard Hub cache (HF_HUB_CACHE / HF_HOME) and converted
once into LONGKIT_CACHE/data/<org>--<name>/<revision>/<subset>.jsonl (the revision of the downloaded snapshot,
so another revision is converted again), next to <subset>.counts.json (rows read, converted, dropped and why).
Offline (HF_HUB_OFFLINE=1) only the caches are read.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longkit.errors import ConfigError, InputError
from longkit.sft.convert import RowConverter, chatqa_row, convert_file, megatron_qa_row

if TYPE_CHECKING:
    from longkit.train.config import BlendItem, SFTConfig, StageSpec

# Bump when a converter's output changes: a cached conversion made by another version is made again.
CONVERTER_VERSION = 1
FETCH_HINT = "fetch it with `longkit train fetch CONFIG` while online"

SHORT_SPAN = "Answer the following question with a short span."
LONG_ANSWER = "Please give a full and complete answer for the question."
ARITHMETIC = "Answer the following question with a number from context or the math arithmetic."
SHORT_OR_LONG = "Answer the following question with a short span, or a full and complete answer."


@dataclass(frozen=True)
class HubSubset:
    """One subset: its file in the repository and the converter of its rows (or why it cannot be fetched)."""

    file: str | None
    convert: RowConverter
    unavailable: str | None = None


@dataclass(frozen=True)
class HubDataset:
    repo: str
    revision: str
    subsets: dict[str, HubSubset]


def _chatqa(file: str, instruction: str | None) -> HubSubset:
    return HubSubset(file, functools.partial(chatqa_row, instruction=instruction))


NEWSQA_GONE = (
    "NewsQA is not distributed in nvidia/ChatQA-Training-Data (removed in revision 2daf20f; newsqa/ holds only "
    "a README pointing to NewsQA's own download script): build it yourself and list it as a `path:` item"
)

DATASETS: dict[str, HubDataset] = {
    "nvidia/ChatQA-Training-Data": HubDataset(
        "nvidia/ChatQA-Training-Data",
        "164f018cf5e7862ae5ef9c2b8ada47b07e3e3a31",
        {
            "sft": _chatqa("sft/train.json", None),
            **{s: _chatqa(f"{s}/train.json", SHORT_SPAN) for s in ("drop", "narrativeqa", "quoref", "ropes")},
            **{s: _chatqa(f"{s}/train.json", SHORT_SPAN) for s in ("squad1.1", "squad2.0")},
            "newsqa": HubSubset(None, functools.partial(chatqa_row, instruction=SHORT_SPAN), NEWSQA_GONE),
            "tatqa-arithmetic": _chatqa("tatqa/train_arithmetic.json", ARITHMETIC),
            "tatqa-others": _chatqa("tatqa/train_others.json", SHORT_OR_LONG),
            "synthetic_convqa": _chatqa("synthetic_convqa/train.json", LONG_ANSWER),
        },
    ),
    "nvidia/ChatQA2-Long-SFT-data": HubDataset(
        "nvidia/ChatQA2-Long-SFT-data",
        "7acef85b3b1c0fb6c088793f8bfbd7b237e14c5b",
        {
            "long_sft": HubSubset("long_sft/long_sft_QA_train.json", megatron_qa_row),
            "NarrativeQA_131072": HubSubset("NarrativeQA_131072/NarrativeQA_131072_QA_train.json", megatron_qa_row),
        },
    ),
}


def check_subset(dataset: str, subset: str) -> HubSubset:
    """The registered subset; ValueError (for the config validator) naming the known datasets or subsets."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset '{dataset}'; datasets longkit can fetch by name: {', '.join(DATASETS)}")
    subsets = DATASETS[dataset].subsets
    if subset not in subsets:
        raise ValueError(f"unknown subset '{subset}' of {dataset}; known subsets: {', '.join(subsets)}")
    sub = subsets[subset]
    if sub.unavailable:
        raise ValueError(f"subset '{subset}' of {dataset}: {sub.unavailable}")
    return sub


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
