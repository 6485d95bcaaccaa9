"""What a document source is (`SourceSpec`: a path, its reader type and which fields hold the text and the source
name) and how one row becomes a document. Shared by the local readers (longkit.data.sources) and the Hub stream
(longkit.data.hub_stream), which import it and not each other's modules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longkit.errors import ConfigError, InputError, located

TEXT_SUFFIXES = (".txt", ".md", ".rst", ".text")


# 1e15 tokens: far past any corpus (SlimPajama holds 627B, RedPajama-v2 30T); a larger budget is a typo
MAX_TOKEN_BUDGET = 10**15


@dataclass
class SourceSpec:
    """Where documents come from and how to read their text and source name."""

    path: str
    type: str = "auto"  # auto | jsonl | parquet | text | hf | hub (a Hub dataset read as a stream: data.hub_stream)
    source: str | None = None  # fixed source name; else from source_field, else the file/dir stem
    text_field: str = "text"  # a dotted path reads a nested field (meta.title), as source_field does
    source_field: str | None = "source"  # e.g. meta.redpajama_set_name for SlimPajama
    split: str = "train"  # for types hf and hub
    name: str | None = None  # dataset config name for type hf
    kwargs: dict[str, Any] = field(default_factory=dict)
    revision: str | None = None  # type hub: the commit (or branch/tag, fixed to its commit at the build's start)
    token_budget: int | None = None  # stop reading this source once this many tokens are written (streaming writer)

    @classmethod
    def from_obj(cls, obj: Any, where: str = "sources") -> SourceSpec:
        """Build from a path string or a mapping from a config file (`where` names it in errors)."""
        if isinstance(obj, str):
            return cls(path=obj)
        with located(where):
            _check_source_fields(obj, set(cls.__dataclass_fields__))
        spec = cls(**obj)
        if spec.type != "auto":
            spec.resolved_type()  # an unknown type fails here, at load time (paths resolve later)
        return spec

    def resolved_type(self) -> str:
        """The reader this spec uses."""
        if self.type != "auto":
            if self.type not in ("jsonl", "parquet", "text", "hf", "hub"):
                raise ConfigError(
                    f"source {self.path}: type must be jsonl, parquet, text or hf (or hub: a Hub dataset read as a "
                    f"stream), got '{self.type}'"
                )
            if self.type == "hub" and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.path):
                raise ConfigError(f"source {self.path}: type hub needs a Hub dataset name (owner/name) as its path")
            return self.type
        p = Path(self.path)
        suffix = Path(p.stem).suffix if p.suffix == ".gz" else p.suffix  # data.jsonl.gz reads as data.jsonl
        if suffix in (".jsonl", ".json"):
            return "jsonl"
        if p.suffix == ".parquet":
            return "parquet"
        if p.is_dir():
            if (p / "dataset_info.json").exists() or (p / "state.json").exists():
                return "hf"
            return "text"
        if suffix in TEXT_SUFFIXES:
            return "text"
        if p.is_file() and p.suffix in (".gz", ".zst", ".bz2", ".xz"):
            raise InputError(
                f"{self.path}: a compressed file longkit cannot read as a source; .jsonl.gz, .json.gz "
                "and text .gz files are read directly, others must be decompressed first"
            )
        if not p.exists() and (
            self.path.startswith((".", "/", "~"))
            or p.suffix in (".csv", ".gz", ".zst", ".tsv")
            or self.path.count("/") >= 2
        ):
            # a mistyped local path: never hand it to datasets.load_dataset, which would try the Hub
            raise InputError(f"{self.path}: source file or directory not found")
        return "hf"  # a dataset name loadable by datasets.load_dataset


def _check_source_fields(obj: Any, known: set[str]) -> None:
    """A source mapping holds a 'path' and only known fields, each of the right type."""
    if not isinstance(obj, dict) or "path" not in obj:
        raise ConfigError(f"each source needs a 'path' (got {obj!r})")
    unknown = set(obj) - known
    if unknown:
        raise ConfigError(f"unknown source field(s) {sorted(unknown)}")
    for name, value in obj.items():
        if name == "kwargs":
            if not isinstance(value, dict):
                raise ConfigError(f"field 'kwargs' must be a mapping, got {value!r}")
        elif name in ("source", "source_field", "name", "revision", "token_budget") and value is None:
            continue
        elif name == "token_budget":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKEN_BUDGET:
                what = f"a whole number of tokens from 1 to {MAX_TOKEN_BUDGET:.0e}"
                raise ConfigError(f"field 'token_budget' must be {what}, got {value!r}")
        elif not isinstance(value, str) or (name in ("path", "text_field") and not value.strip()):
            raise ConfigError(f"field '{name}' must be a non-empty string, got {value!r}")


MISSING: Any = object()


def field_value(row: dict[str, Any], name: str) -> Any:
    """A row's field by name, or by dotted path into nested objects (meta.redpajama_set_name); MISSING if absent."""
    if name in row:  # a key that itself holds a dot wins
        return row[name]
    value: Any = row
    for part in name.split("."):
        if isinstance(value, str) and value.startswith("{"):
            # some Parquet conversions store a nested object as JSON text (a `meta` column of strings)
            try:
                value = json.loads(value)
            except ValueError:
                return MISSING
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def row_doc(spec: SourceSpec, row: dict[str, Any], default_source: str) -> tuple[str, str]:
    """(source name, text) of one row (the caller names the row's file and line in errors)."""
    text = field_value(row, spec.text_field)
    if text is MISSING:
        raise InputError(f"missing field '{spec.text_field}'")
    if not isinstance(text, str):
        raise InputError(f"field '{spec.text_field}' must be a string, got {type(text).__name__}")
    if spec.source:
        return spec.source, text
    src = field_value(row, spec.source_field) if spec.source_field else None
    if src is not MISSING and src is not None:
        if not isinstance(src, str):
            raise InputError(f"field '{spec.source_field}' must be a string, got {type(src).__name__}")
        return src, text
    return default_source, text
