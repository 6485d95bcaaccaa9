"""The data build config (YAML, validated by pydantic) and the objects it resolves to: separator ids,
transform, pad id. Every section reports a bad value as `<file>: field '<path>': <what was expected>`."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, InstanceOf, ValidationError, field_validator

from longkit.data.config_fields import (
    Bool,
    IntList,
    Section,
    Str,
    StrList,
    choice,
    field_error,
    integer,
    kind_of,
    number,
)
from longkit.data.plan import Transform
from longkit.data.source_spec import SourceSpec
from longkit.data.upsample import DEFAULT_BUCKETS, UpsampleConfig
from longkit.data.utk import UtKConfig, utk_preset
from longkit.errors import ConfigError

MAX_SEQ_LEN = 1 << 24  # 16M tokens; larger values are typos (1e12) that would only fail deep inside packing
_PAPER = UtKConfig()

Share = Annotated[float, number(0, 1)]
Count = Annotated[int, integer(1)]
NonNegative = Annotated[int, integer(0)]
SeqLen = Annotated[int, integer(16, MAX_SEQ_LEN)]
LabelLength = Annotated[int, integer(1, 64)]
Processes = Annotated[int, integer(1, 512)]
PerShard = Annotated[int, integer(1, 1_000_000)]
Passes = Annotated[int, integer(1, 1_000_000)]
Preset = Annotated[str, choice("paper", "authors")]
UtKSplit = Annotated[str, choice("random", "even")]
LabelDraw = Annotated[str, choice("pool", "fresh")]
ShortDocs = Annotated[str, choice("fewer", "whole")]
SeparatorAfter = Annotated[str, choice("target", "text")]
TransformName = Annotated[str, choice("plain", "cip", "utk")]
CipSplit = Annotated[str, choice("half", "random")]
Overflow = Annotated[str, choice("split", "carry", "truncate")]


def _chunk_dists(v: Any) -> list[tuple[float, dict[Any, Any]]]:
    """[{weight: W, counts: {N: P}}] (or [W, {N: P}] pairs) as (weight, counts) tuples; UtKConfig checks the rest."""
    try:
        pairs = [(d["weight"], d["counts"]) if isinstance(d, dict) else tuple(d) for d in v]
        if all(isinstance(w, (int, float)) and not isinstance(w, bool) and isinstance(c, dict) for w, c in pairs):
            return pairs
    except (KeyError, TypeError, ValueError):
        pass
    raise field_error("chunk_dists", f"expected a list of {{weight: W, counts: {{N: P}}}}, got {v!r}")


class UtKSection(Section):
    """The `utk:` section: a preset, then any UtKConfig switch on top of it."""

    model_config = ConfigDict(extra="forbid")

    preset: Preset = "paper"
    probability: Share = _PAPER.probability
    chunk_dists: Annotated[list[tuple[float, dict[Any, Any]]], BeforeValidator(_chunk_dists)] = _PAPER.chunk_dists
    split: UtKSplit = _PAPER.split
    preserve_order: Bool = _PAPER.preserve_order
    chunk_labels: Bool = _PAPER.chunk_labels
    backtrace: Bool = _PAPER.backtrace
    label_length: LabelLength = _PAPER.label_length
    label_chars: Str = _PAPER.label_chars
    label_pool: Count = _PAPER.label_pool
    label_seed: NonNegative = _PAPER.label_seed
    cl_open: Str = _PAPER.cl_open
    cl_close: Str = _PAPER.cl_close
    head_knots: StrList = _PAPER.head_knots
    tail_knots: StrList = _PAPER.tail_knots
    bt_open: Str = _PAPER.bt_open
    bt_close: Str = _PAPER.bt_close
    bt_sep: Str | None = _PAPER.bt_sep
    mask_after_knots: Bool = _PAPER.mask_after_knots
    mask_after_bt_close: Bool = _PAPER.mask_after_bt_close
    label_draw: LabelDraw = _PAPER.label_draw
    short_docs: ShortDocs = _PAPER.short_docs
    separator_after: SeparatorAfter = _PAPER.separator_after
    mask_after_label: Bool = _PAPER.mask_after_label
    mask_after_separator: Bool = _PAPER.mask_after_separator
    keep_tail_last: Bool = _PAPER.keep_tail_last

    def to_config(self) -> UtKConfig:
        """The preset with the switches this section sets (UtKConfig checks what spans several switches)."""
        given = {k: getattr(self, k) for k in self.model_fields_set - {"preset"}}
        try:
            return dataclasses.replace(utk_preset(self.preset), **given)
        except ConfigError as exc:
            raise field_error("utk", str(exc)) from None


class UpsampleSection(Section):
    """The `upsample:` section (Fu et al.'s length upsampling); present means enabled unless it says otherwise."""

    model_config = ConfigDict(extra="forbid")

    enabled: Bool = True
    threshold: NonNegative = 4096
    keep_short: Share = 0.1
    total_tokens: Count | None = None
    mix: dict[str, Any] | None = None
    max_passes: Passes = 1000
    buckets: IntList = Field(default_factory=lambda: list(DEFAULT_BUCKETS))

    @field_validator("mix", mode="before")
    @classmethod
    def _shares(cls, v: Any) -> Any:
        if v is None:
            return v
        if not isinstance(v, dict):
            raise field_error("mix", f"expected a mapping of source -> share, got {v!r}")
        for k, share in v.items():
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not share >= 0:
                raise field_error("mix", f"expected a share >= 0 for source '{k}', got {share!r}")
        return v

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, b: list[int]) -> list[int]:
        if not b or any(x < 0 for x in b) or any(y <= x for x, y in zip(b, b[1:])):
            raise field_error("buckets", f"expected increasing token counts >= 0, got {b}")
        return b

    def to_config(self) -> UpsampleConfig:
        """The UpsampleConfig this section describes."""
        return UpsampleConfig(**{k: getattr(self, k) for k in self.model_fields_set})


def _utk(v: Any) -> UtKConfig:
    if isinstance(v, UtKConfig):
        return v
    return UtKSection.model_validate({} if v is None else v).to_config()


def _upsample(v: Any) -> UpsampleConfig:
    if isinstance(v, UpsampleConfig):
        return v
    if v is None:  # no section: every document once
        return UpsampleConfig(enabled=False)
    return UpsampleSection.model_validate(v).to_config()


def _sources(v: Any) -> list[SourceSpec]:
    if not isinstance(v, list):
        raise field_error("sources", f"expected a list of sources, got {kind_of(v)}")
    try:
        return [s if isinstance(s, SourceSpec) else SourceSpec.from_obj(s, f"sources[{i}]") for i, s in enumerate(v)]
    except ConfigError as exc:
        raise field_error("sources", str(exc)) from None


class DataConfig(Section):
    """Everything `longkit data build` and the streaming dataset need."""

    # validate_assignment: an override (--out, --max-sequences, a CPT seq_len) is checked like the YAML value
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    sources: Annotated[list[InstanceOf[SourceSpec]], BeforeValidator(_sources)] = Field(default_factory=list)
    tokenizer: Str = "smollm2-135m-instruct"
    out: Str = "runs/data"
    seq_len: SeqLen = 8192
    separator: Str = "<s>"  # literal text tokenized as ordinary text (ChatQA 2), or bos | eos | none
    transform: TransformName = "utk"
    utk: Annotated[InstanceOf[UtKConfig], BeforeValidator(_utk)] = Field(default_factory=UtKConfig)
    cip_split: CipSplit = "half"
    overflow: Overflow = "split"
    intra_doc_attention: Bool = False
    upsample: Annotated[InstanceOf[UpsampleConfig], BeforeValidator(_upsample)] = Field(
        default_factory=lambda: UpsampleConfig(enabled=False)
    )
    seed: NonNegative = 0
    num_proc: Processes = 1
    max_sequences: Count | None = None
    sequences_per_shard: PerShard = 64

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise ConfigError(f"{name} {value!r}: {exc.errors()[0]['msg']}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for reports (the field order and values stats.json and manifests have always had)."""
        d: dict[str, Any] = {name: getattr(self, name) for name in type(self).model_fields}
        d["sources"] = [dataclasses.asdict(s) for s in self.sources]
        d["utk"] = self.utk.to_dict()
        d["upsample"] = dataclasses.asdict(self.upsample)
        return d


def _check_rules(cfg: DataConfig, where: str) -> None:
    """Rules that span fields, after each field is valid."""
    seen: dict[tuple[str, str, str, str | None, str], int] = {}
    for i, s in enumerate(cfg.sources):
        key = (os.path.normpath(s.path), s.type, s.split, s.name, s.text_field)
        if key in seen:
            raise ConfigError(
                f"{where}: field 'sources[{i}]': the same source as sources[{seen[key]}] ({s.path}); its "
                "documents would be read twice (list it once; per-source weights are 'upsample.mix')"
            )
        seen[key] = i
        if s.token_budget is not None and s.token_budget < cfg.seq_len:  # the budget would not fill one sequence
            raise ConfigError(
                f"{where}: field 'sources[{i}].token_budget': {s.token_budget} tokens is less than one sequence "
                f"(seq_len {cfg.seq_len})"
            )
    if cfg.transform == "utk" and cfg.intra_doc_attention:
        # separate attention segments per chunk would hide a document's chunks from each other: UtK's point
        raise ConfigError(
            f"{where}: field 'intra_doc_attention' must be false with transform utk "
            "(the chunks of a document must attend to each other)"
        )


def data_config_from_dict(data: dict[str, Any], where: str = "config") -> DataConfig:
    """Validate a mapping (from YAML) into a DataConfig; errors name the field."""
    from longkit.config import validate

    data = data.copy()  # a YAML mapping's copy keeps its key lines, which errors cite
    srcs = data.get("sources", [])
    if not isinstance(srcs, list):
        raise ConfigError(f"{where}: field 'sources' must be a list")
    # sources first, each with its own message (`sources[1]: each source needs a 'path'`)
    data["sources"] = [SourceSpec.from_obj(s, f"{where}: sources[{i}]") for i, s in enumerate(srcs)]
    cfg = validate(DataConfig, data, source=where)
    _check_rules(cfg, where)
    return cfg


def load_data_config(path: str | Path) -> DataConfig:
    """Read a data config YAML; relative source paths are resolved against the config's folder."""
    from longkit.config import load_yaml

    cfg = data_config_from_dict(load_yaml(path), str(path))
    base = Path(path).resolve().parent
    for s in cfg.sources:
        p = Path(s.path)
        if not p.is_absolute() and (base / p).exists() and not p.exists():
            s.path = str(base / p)
    return cfg


def resolve_separator(tokenizer: Any, separator: str) -> list[int]:
    """Token ids of the document separator: bos/eos special tokens, none, or literal text as ordinary text."""
    from longkit.data.utk import encode_text

    if separator in ("bos", "eos"):
        tid = getattr(tokenizer, f"{separator}_token_id")
        if tid is None:
            raise ConfigError(f"separator '{separator}': the tokenizer has no {separator} token")
        return [int(tid)]
    if separator in ("none", ""):
        return []
    return list(encode_text(tokenizer, [separator])[0])


def pad_id(tokenizer: Any) -> int:  # Any: a Hugging Face tokenizer
    """Padding id for the last, partly filled sequence (its labels are -100)."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0


def build_transform(cfg: DataConfig, tokenizer: Any) -> Transform:
    """The transform the config names (UtK needs its special tokens in the tokenizer)."""
    if cfg.transform == "plain":
        return Transform()
    if cfg.transform == "cip":
        from longkit.data.cip import CIPTransform

        return CIPTransform(cfg.cip_split)
    from longkit.data.utk import UtKTransform

    return UtKTransform(tokenizer, cfg.utk)
