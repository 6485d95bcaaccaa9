"""The data build config (YAML) and the objects it resolves to: separator ids, transform, pad id."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from longkit.data.plan import Transform
from longkit.data.sources import SourceSpec
from longkit.data.upsample import UpsampleConfig
from longkit.data.utk import UtKConfig, utk_preset
from longkit.errors import ConfigError


@dataclass
class DataConfig:
    """Everything `longkit data build` and the streaming dataset need."""

    sources: list[SourceSpec] = field(default_factory=list)
    tokenizer: str = "smollm2-135m-instruct"
    out: str = "runs/data"
    seq_len: int = 8192
    separator: str = "<s>"  # literal text tokenized as ordinary text (ChatQA 2), or bos | eos | none
    transform: str = "utk"  # plain | cip | utk
    utk: UtKConfig = field(default_factory=UtKConfig)
    cip_split: str = "half"
    overflow: str = "split"  # split | carry | truncate
    intra_doc_attention: bool = False
    upsample: UpsampleConfig = field(default_factory=lambda: UpsampleConfig(enabled=False))
    seed: int = 0
    num_proc: int = 1
    max_sequences: int | None = None
    sequences_per_shard: int = 64

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for reports."""
        d = asdict(self)
        d["utk"] = self.utk.to_dict()
        return d


MAX_SEQ_LEN = 1 << 24  # 16M tokens; larger values are typos (1e12) that would only fail deep inside packing

# field -> (low, high) for integer fields; None: unbounded on that side
_BOUNDS: dict[str, dict[str, tuple[int | None, int | None]]] = {
    "DataConfig": {"seq_len": (16, MAX_SEQ_LEN), "num_proc": (1, 512), "max_sequences": (1, None),
                   "sequences_per_shard": (1, 1_000_000), "seed": (0, None)},
    "UpsampleConfig": {"threshold": (0, None), "total_tokens": (1, None), "max_passes": (1, 1_000_000)},
    "UtKConfig": {"label_length": (1, 64), "label_pool": (1, None), "label_seed": (0, None)},
}
_CHOICES = {"transform": ("plain", "cip", "utk"), "overflow": ("split", "carry", "truncate"),
            "cip_split": ("half", "random")}


def _type_error(value: Any, hint: Any) -> str | None:
    """Why value does not fit a simple type hint (int, float, bool, str, X | None, list[...], dict[...]); else None."""
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errs = [_type_error(value, a) for a in args if a is not type(None)]
        return None if any(e is None for e in errs) else errs[0]
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if origin is list:
        if not isinstance(value, list):
            return "a list"
        (inner,) = typing.get_args(hint) or (Any,)
        if inner in (int, float, str, bool):
            bad = [v for v in value if _type_error(v, inner)]
            return f"a list of {inner.__name__} values" if bad else None
        return None
    if origin is dict:
        return None if isinstance(value, dict) else "a mapping"
    return None  # structured fields are checked by their own constructors


def _check_fields(cls: type, data: dict[str, Any], where: str) -> None:
    """Types, integer bounds and choices of a config section, before any object is built."""
    import typing

    hints = typing.get_type_hints(cls)
    bounds = _BOUNDS.get(cls.__name__, {})
    for name, value in data.items():
        if name in hints:
            why = _type_error(value, hints[name])
            if why:
                raise ConfigError(f"{where}: field '{name}': expected {why}, got {value!r}")
        if name in bounds and value is not None:
            lo, hi = bounds[name]
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
                raise ConfigError(f"{where}: field '{name}': must be {rng}, got {value}")
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ConfigError(f"{where}: field '{name}': must be one of {', '.join(_CHOICES[name])}, got {value!r}")


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(names)}")
    _check_fields(cls, data, where)
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ConfigError as exc:  # the dataclass's own checks: say which file they are about
        raise ConfigError(f"{where.split(':')[0]}: {exc}") from None


def data_config_from_dict(data: dict[str, Any], where: str = "config") -> DataConfig:
    """Validate a mapping (from YAML) into a DataConfig; errors name the field."""
    data = dict(data)
    utk = data.pop("utk", None) or {}
    if not isinstance(utk, dict):
        raise ConfigError(f"{where}: field 'utk' must be a mapping")
    utk = dict(utk)
    preset = utk.pop("preset", "paper")
    try:
        base = utk_preset(preset).to_dict()
    except ConfigError as exc:
        raise ConfigError(f"{where}: field 'utk.preset': {exc}") from None
    base.update(utk)
    try:
        if "chunk_dists" in utk:
            base["chunk_dists"] = [(d["weight"], d["counts"]) if isinstance(d, dict) else tuple(d)
                                   for d in utk["chunk_dists"]]
        else:
            base["chunk_dists"] = [(d["weight"], d["counts"]) for d in base["chunk_dists"]]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{where}: field 'utk.chunk_dists': expected a list of {{weight: W, counts: {{N: P}}}}, "
                          f"got {utk.get('chunk_dists')!r}") from None
    up = data.pop("upsample", None)
    srcs = data.pop("sources", [])
    if not isinstance(srcs, list):
        raise ConfigError(f"{where}: field 'sources' must be a list")
    cfg = _build(DataConfig, data, where)
    cfg.utk = _build(UtKConfig, base, f"{where}: utk")
    cfg.upsample = _build(UpsampleConfig, up, f"{where}: upsample") if up is not None else UpsampleConfig(enabled=False)
    cfg.sources = [SourceSpec.from_obj(s, f"{where}: sources[{i}]") for i, s in enumerate(srcs)]
    seen: dict[tuple, int] = {}
    for i, s in enumerate(cfg.sources):
        key = (os.path.normpath(s.path), s.type, s.split, s.name, s.text_field)
        if key in seen:
            raise ConfigError(f"{where}: field 'sources[{i}]': the same source as sources[{seen[key]}] ({s.path}); its "
                              "documents would be read twice (list it once; per-source weights are 'upsample.mix')")
        seen[key] = i
    b = cfg.upsample.buckets
    if not b or any(x < 0 for x in b) or any(y <= x for x, y in zip(b, b[1:])):
        raise ConfigError(f"{where}: field 'upsample.buckets': expected increasing token counts >= 0, got {b}")
    for k, v in (cfg.upsample.mix or {}).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(f"{where}: field 'upsample.mix.{k}': expected a share >= 0, got {v!r}")
    if cfg.transform not in ("plain", "cip", "utk"):
        raise ConfigError(f"{where}: field 'transform' must be plain, cip or utk, got '{cfg.transform}'")
    if cfg.transform == "utk" and cfg.intra_doc_attention:
        # separate attention segments per chunk would hide a document's chunks from each other: UtK's point
        raise ConfigError(f"{where}: field 'intra_doc_attention' must be false with transform utk "
                          "(the chunks of a document must attend to each other)")
    if cfg.seq_len < 16:
        raise ConfigError(f"{where}: field 'seq_len' must be >= 16, got {cfg.seq_len}")
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


def pad_id(tokenizer: Any) -> int:
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
