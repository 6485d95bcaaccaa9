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

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from longkit.data.fingerprint import tokenizer_fingerprint
from longkit.data.source_spec import (  # noqa: F401  (SourceSpec and the row helpers are re-exported)
    MISSING,
    TEXT_SUFFIXES,
    SourceSpec,
    field_value,
    row_doc,
)
from longkit.errors import InputError, located
from longkit.io import iter_jsonl, read_text, write_json


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
                doc = row_doc(spec, row, _plain_stem(p))
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
                    doc = row_doc(spec, row, p.stem)
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
            doc = row_doc(spec, row, default)
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
