"""Document sources (JSONL, Parquet, text directories, `datasets`) and the tokenized corpus store.

A corpus is tokenized once and stored as a directory:

    tokens.bin      int32, all documents' token ids back to back (read through a numpy memmap)
    offsets.npy     int64 [n_docs + 1], document i is tokens[offsets[i]:offsets[i+1]]
    doc_source.npy  int32 [n_docs], index into sources.json
    sources.json    source names
    meta.json       tokenizer (name, vocabulary size, fingerprint), counts, the source specs it was built from

so training streams documents without holding the corpus in memory.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from longkit.data.fingerprint import tokenizer_fingerprint
from longkit.errors import ConfigError, InputError, located
from longkit.io import iter_jsonl, read_text, write_json

TEXT_SUFFIXES = (".txt", ".md", ".rst", ".text")


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
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"field 'token_budget' must be a whole number of tokens >= 1, got {value!r}")
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


def _row_doc(spec: SourceSpec, row: dict[str, Any], default_source: str) -> tuple[str, str]:
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


def iter_documents(spec: SourceSpec) -> Iterator[tuple[str, str]]:
    """Yield (source name, text) for every document of a source; bad rows raise InputError with file:line."""
    kind = spec.resolved_type()
    p = Path(spec.path)
    if kind in ("jsonl", "parquet", "text") and not p.exists():
        raise InputError(f"{p}: file not found")
    if kind in ("jsonl", "parquet") and p.is_dir():
        raise InputError(f"{p}: expected a {kind} file, got a directory")
    if kind == "jsonl":
        for lineno, row in iter_jsonl(p):
            with located(f"{p}:{lineno}"):
                doc = _row_doc(spec, row, _plain_stem(p))
            yield doc
    elif kind == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(p)
        except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
            raise InputError(f"{p}: not a readable Parquet file ({str(exc).strip().splitlines()[0]})") from None
        names = set(pf.schema_arrow.names)
        text_col = _column(spec.text_field, names)
        if text_col not in names:
            raise InputError(f"{p}: missing column '{spec.text_field}' (columns: {sorted(names)})")
        src_col = _column(spec.source_field, names) if spec.source_field else ""
        cols = sorted({text_col} | ({src_col} if src_col in names else set()))
        row_no = 0
        batches = pf.iter_batches(columns=cols, batch_size=4096)
        while True:
            try:
                batch = next(batches, None)
            except (OSError, ValueError) as exc:  # a damaged row group
                raise InputError(
                    f"{p}: damaged Parquet file after row {row_no} ({str(exc).strip().splitlines()[0]})"
                ) from None
            if batch is None:
                break
            for row in batch.to_pylist():
                row_no += 1
                if field_value(row, spec.text_field) in (None, MISSING):
                    raise InputError(f"{p}: row {row_no}: field '{spec.text_field}' is null")
                with located(f"{p}: row {row_no}"):
                    doc = _row_doc(spec, row, p.stem)
                yield doc
    elif kind == "text":
        files = (
            [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and _text_suffix(f) in TEXT_SUFFIXES)
        )
        if not files:
            raise InputError(f"{p}: no text files ({', '.join(TEXT_SUFFIXES)}) found")
        for f in files:
            text = read_text(f, "text file")
            # a directory's top-level folders name its sources (else the directory); a single file is named by its stem
            if p.is_dir():
                rel = f.relative_to(p)
                default = rel.parts[0] if len(rel.parts) > 1 else p.name
            else:
                default = _plain_stem(p)
            default = spec.source or default
            yield default, text
    elif kind == "hub":
        from longkit.data.hub_stream import iter_hub_documents

        yield from iter_hub_documents(spec)
    else:
        yield from _iter_hf(spec)


def _column(name: str, columns: set[str]) -> str:
    """The top-level column a (dotted) field is read from: itself if a column has that name, else its first part."""
    return name if name in columns else name.split(".")[0]


def _plain_stem(path: Path) -> str:
    """A file's name without its suffix, or suffixes when gzipped (wiki.jsonl.gz -> wiki): its default source name."""
    return Path(path.stem).stem if path.suffix == ".gz" else path.stem


def _text_suffix(path: Path) -> str:
    """A text file's own suffix, looking through a trailing .gz (notes.txt.gz -> .txt)."""
    return Path(path.stem).suffix if path.suffix == ".gz" else path.suffix


def _iter_hf(spec: SourceSpec) -> Iterator[tuple[str, str]]:
    import datasets

    p = Path(spec.path)
    try:
        if p.is_dir() and ((p / "dataset_info.json").exists() or (p / "state.json").exists()):
            ds = datasets.load_from_disk(str(p))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[spec.split]
        else:
            ds = datasets.load_dataset(spec.path, spec.name, split=spec.split, **spec.kwargs)
    except Exception as exc:  # datasets raises many types; the user needs the path and the reason
        raise InputError(f"{spec.path}: cannot load dataset ({type(exc).__name__}: {exc})") from None
    if _column(spec.text_field, set(ds.column_names)) not in ds.column_names:
        raise InputError(f"{spec.path}: missing column '{spec.text_field}' (columns: {ds.column_names})")
    default = spec.source or p.name or spec.path
    for i, row in enumerate(ds):
        with located(f"{spec.path}: row {i + 1}"):
            doc = _row_doc(spec, row, default)
        yield doc


CORPUS_FILES = ("tokens.bin", "offsets.npy", "doc_source.npy", "sources.json")


def file_manifest(root: Path, names: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """{name: {bytes, sha256}} for files under root: the integrity record stored in a build's manifest."""
    from longkit.io import sha256_file

    return {n: {"bytes": (root / n).stat().st_size, "sha256": sha256_file(root / n)} for n in names}


def check_files(root: Path, manifest: dict[str, Any], verify: bool = False, what: str = "file") -> None:
    """Refuse a file whose size (always) or SHA-256 (with verify) differs from the manifest, naming it."""
    from longkit.io import sha256_file

    for name, rec in manifest.items():
        f = root / name
        if not f.is_file():
            raise InputError(f"{f}: {what} listed in the manifest is missing")
        size = f.stat().st_size
        if size != rec.get("bytes"):
            raise InputError(
                f"{f}: {what} is damaged (size {size} bytes, the manifest says {rec.get('bytes')}); "
                "rebuild it with `longkit data build`"
            )
        if verify and rec.get("sha256") and sha256_file(f) != rec["sha256"]:
            raise InputError(
                f"{f}: {what} is damaged (SHA-256 differs from the manifest); rebuild it with `longkit data build`"
            )


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr: np.ndarray = np.load(path, allow_pickle=False)
        return arr
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(
            f"{path}: not a readable .npy array ({str(exc).strip() or type(exc).__name__}); "
            "rebuild the corpus with `longkit data build`"
        ) from None


class TokenizedCorpus:
    """A tokenized corpus directory opened read-only through memmaps; file sizes are checked on every open."""

    def __init__(self, path: str | Path, verify: bool = False):
        from longkit.io import read_json

        self.path = Path(path)
        for name in CORPUS_FILES:
            if not (self.path / name).exists():
                raise InputError(f"{self.path}: not a tokenized corpus (missing {name}); run `longkit data build`")
        meta = self.path / "meta.json"
        self.meta: dict[str, Any] = read_json(meta, "corpus manifest") if meta.exists() else {}
        if not isinstance(self.meta, dict):
            raise InputError(f"{meta}: expected a JSON object")
        if isinstance(self.meta.get("files"), dict):
            check_files(self.path, self.meta["files"], verify=verify, what="corpus file")
        self.offsets = _load_npy(self.path / "offsets.npy")
        self.doc_source = _load_npy(self.path / "doc_source.npy")
        names = read_json(self.path / "sources.json", "corpus source list")
        if not isinstance(names, list):
            raise InputError(f"{self.path / 'sources.json'}: expected a JSON list of source names")
        self.source_names: list[str] = names
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or len(self.doc_source) != len(self.offsets) - 1:
            raise InputError(f"{self.path}: offsets.npy and doc_source.npy disagree; rebuild the corpus")
        n_tok = int(self.offsets[-1])
        size = (self.path / "tokens.bin").stat().st_size
        if size != 4 * n_tok:  # int32 tokens: a truncated or padded file would shift every document after it
            raise InputError(
                f"{self.path / 'tokens.bin'}: corpus file is damaged (size {size} bytes, the offsets "
                f"say {4 * n_tok}); rebuild it with `longkit data build`"
            )
        self.tokens = (
            np.memmap(self.path / "tokens.bin", dtype=np.int32, mode="r", shape=(n_tok,))
            if n_tok
            else np.zeros(0, np.int32)
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getstate__(self) -> dict[str, Any]:  # dataloader workers reopen the memmap, never copy tokens
        return {"path": str(self.path)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    @property
    def lengths(self) -> np.ndarray:
        """Token count of every document."""
        return np.diff(self.offsets)

    def doc(self, i: int) -> np.ndarray:
        """Token ids of document i (a memmap view)."""
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]


def _tokenize_batch(batch: dict[str, list[Any]], tokenizer: Any) -> dict[str, list[list[int]]]:
    from longkit.data.utk import encode_text

    return {"ids": encode_text(tokenizer, batch["text"])}


def _gen_rows(specs: list[SourceSpec]) -> Iterator[dict[str, Any]]:
    for spec in specs:
        for src, text in iter_documents(spec):
            yield {"text": text, "src": src}


def tokenize_corpus(
    specs: list[SourceSpec],
    tokenizer: Any,
    out_dir: str | Path,
    num_proc: int = 1,
    batch_size: int = 256,
    tokenizer_name: str = "",
) -> TokenizedCorpus:
    """Read every source, tokenize in batches with datasets.map(num_proc), write the corpus store.

    Rows stream through an Arrow file in a scratch folder (never the whole corpus in memory); a bad
    row fails before any tokenization with file, line and field. Hub sources and sources with a token budget
    go through the resumable streaming writer instead (`stream_corpus.tokenize_streaming`, one process).
    """
    import shutil
    import tempfile

    import datasets

    if any(s.resolved_type() == "hub" or s.token_budget is not None for s in specs):
        from longkit.data.stream_corpus import tokenize_streaming

        return tokenize_streaming(specs, tokenizer, out_dir, batch_size=batch_size, tokenizer_name=tokenizer_name)
    for spec in specs:  # an empty source is a mistake (wrong file, wrong field): say which, before any work
        if next(iter_documents(spec), None) is None:
            raise InputError(f"{spec.path}: source has no documents")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=out))
    try:
        try:
            ds = datasets.Dataset.from_generator(
                _gen_rows, gen_kwargs={"specs": specs}, cache_dir=str(scratch / "rows")
            )
        except datasets.exceptions.DatasetGenerationError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, InputError):
                raise cause from None
            raise
        if len(ds) == 0:
            raise InputError(f"no documents in {', '.join(s.path for s in specs)}")
        from longkit.data.utk import encode_text
        from longkit.progress import Progress

        if num_proc > 1:  # worker processes tokenize (datasets shows its own bar); the loop below only writes
            ds = ds.map(
                _tokenize_batch,
                batched=True,
                batch_size=batch_size,
                num_proc=num_proc,
                fn_kwargs={"tokenizer": tokenizer},
                remove_columns=["text"],
                desc="tokenize",
                cache_file_name=str(scratch / "tokens.arrow"),
            )
        n = len(ds)
        names: dict[str, int] = {}
        offsets = np.zeros(n + 1, dtype=np.int64)
        doc_source = np.zeros(n, dtype=np.int32)
        tmp = out / "tokens.bin.tmp"
        with open(tmp, "wb") as fh, Progress("tokenize", total=n, unit="docs") as prog:
            i = 0
            for batch in ds.iter(batch_size=batch_size):
                ids_batch = batch["ids"] if num_proc > 1 else encode_text(tokenizer, batch["text"])
                for ids, src in zip(ids_batch, batch["src"]):
                    arr = np.asarray(ids, dtype=np.int32)
                    fh.write(arr.tobytes())
                    offsets[i + 1] = offsets[i] + len(arr)
                    doc_source[i] = names.setdefault(src, len(names))
                    i += 1
                prog.advance(len(batch["src"]))
            fh.flush()
            os.fsync(fh.fileno())
        del ds
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if int(offsets[-1]) == 0:
        tmp.unlink()
        raise InputError(f"every document in {', '.join(s.path for s in specs)} is empty (0 tokens)")
    os.replace(tmp, out / "tokens.bin")
    np.save(out / "offsets.npy", offsets)
    np.save(out / "doc_source.npy", doc_source)
    write_json(out / "sources.json", list(names))
    write_corpus_meta(out, specs, tokenizer, tokenizer_name, n, int(offsets[-1]))
    return TokenizedCorpus(out)


def write_corpus_meta(
    out: Path, specs: list[SourceSpec], tokenizer: Any, tokenizer_name: str, docs: int, tokens: int, **extra: Any
) -> None:
    """meta.json of a corpus whose other files are written: what produced it, counts, the files' checksums."""
    write_json(
        out / "meta.json",
        {
            "tokenizer": tokenizer_name,
            "vocab_size": len(tokenizer),
            "tokenizer_sha256": tokenizer_fingerprint(tokenizer),
            "docs": docs,
            "tokens": tokens,
            "specs": [s.__dict__ for s in specs],
            "files": file_manifest(out, CORPUS_FILES),
            **extra,
        },
    )
