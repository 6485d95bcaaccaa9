"""Tokenizing sources into the corpus store (longkit.data.sources describes the store): in memory-bounded batches
through `datasets` for local sources, or through the resumable, budgeted writer (longkit.data.stream_corpus) for
Hub sources and sources with a token budget."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from longkit.data.source_spec import SourceSpec
from longkit.data.sources import TokenizedCorpus, iter_documents, write_corpus_meta
from longkit.errors import InputError
from longkit.io import write_json


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
        ds = _rows_dataset(specs, scratch)
        offsets, doc_source, names = _write_tokens(ds, tokenizer, out / "tokens.bin.tmp", num_proc, batch_size, scratch)
        del ds
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if int(offsets[-1]) == 0:
        (out / "tokens.bin.tmp").unlink()
        raise InputError(f"every document in {', '.join(s.path for s in specs)} is empty (0 tokens)")
    os.replace(out / "tokens.bin.tmp", out / "tokens.bin")
    np.save(out / "offsets.npy", offsets)
    np.save(out / "doc_source.npy", doc_source)
    write_json(out / "sources.json", list(names))
    write_corpus_meta(out, specs, tokenizer, tokenizer_name, len(doc_source), int(offsets[-1]))
    return TokenizedCorpus(out)


def _gen_rows(specs: list[SourceSpec]) -> Iterator[dict[str, Any]]:
    for spec in specs:
        for src, text in iter_documents(spec):
            yield {"text": text, "src": src}


def _rows_dataset(specs: list[SourceSpec], scratch: Path) -> Any:  # Any: a datasets.Dataset
    """Every source's documents as an Arrow-backed dataset in the scratch folder; a bad row's InputError as is."""
    import datasets

    try:
        ds = datasets.Dataset.from_generator(_gen_rows, gen_kwargs={"specs": specs}, cache_dir=str(scratch / "rows"))
    except datasets.exceptions.DatasetGenerationError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, InputError):
            raise cause from None
        raise
    if len(ds) == 0:
        raise InputError(f"no documents in {', '.join(s.path for s in specs)}")
    return ds


def _tokenize_batch(batch: dict[str, list[Any]], tokenizer: Any) -> dict[str, list[list[int]]]:
    from longkit.data.utk import encode_text

    return {"ids": encode_text(tokenizer, batch["text"])}


def _write_tokens(
    ds: Any, tokenizer: Any, tmp: Path, num_proc: int, batch_size: int, scratch: Path
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Tokenize the rows (in worker processes when num_proc > 1) and append their ids to `tmp`; returns the
    offsets, each document's source index and the source names."""
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
    return offsets, doc_source, names
