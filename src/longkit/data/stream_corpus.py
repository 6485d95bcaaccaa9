"""The resumable, budgeted corpus writer for Hub sources and sources with a `token_budget`.

`tokenize_streaming` writes the
same corpus store as `tokenize.tokenize_corpus`, stops a source once its budget of tokens is written, and can be
killed at any point: it appends to OUT/.partial/ and, after every batch, records atomically how much of those
files counts and where each source stopped (file, row). A rerun with the same sources and tokenizer truncates
the files to the recorded sizes and continues from the recorded position, reading no row twice into the corpus
(rows before the position of a compressed file are decompressed again to find it, but not parsed). Other
sources or another tokenizer start over, as `data build` tokenizes again when its corpus no longer fits.

Hub rows are read through longkit.data.hub_stream (listing, downloading and reading files with their positions).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from longkit.data.hub_stream import default_source, iter_hub_rows, resolve_revision, split_files
from longkit.data.source_spec import SourceSpec, row_doc
from longkit.data.sources import TokenizedCorpus, iter_documents, write_corpus_meta
from longkit.errors import InputError, located


class Doc(NamedTuple):
    """A document with the reader's position after it (file index, row); `text` None marks a file boundary."""

    file: int
    row: int
    source: str
    text: str | None


@dataclass
class SourceProgress:
    """Where one source stopped: rows of `file` read through `row` (for a local source: documents read), what it
    wrote, and the commit and file list of a Hub source."""

    file: int = 0
    row: int = 0
    docs: int = 0
    tokens: int = 0
    done: bool = False
    revision: str | None = None
    files: int | None = None  # how many; the list itself is OUT/.partial/files-<source index>.json, written once


@dataclass
class BuildState:
    """OUT/.partial/state.json: what the partial files hold (they may be longer: a batch not yet recorded)."""

    identity: dict[str, Any]
    sources: list[SourceProgress]
    names: list[str] = field(default_factory=list)
    docs: int = 0
    tokens: int = 0


PARTS = ("tokens.bin", "lengths.bin", "doc_source.bin")  # int32 token ids, int64 document lengths, int32 sources


class PartialCorpus:
    """The unfinished corpus under OUT/.partial: three append-only arrays (tokens, document lengths, document
    sources) and the state recording how much of them is committed."""

    def __init__(self, out: Path, identity: dict[str, Any], n_sources: int) -> None:
        self.out, self.dir = out, out / ".partial"
        self.state = self._resume(identity) or self._fresh(identity, n_sources)
        self.on_commit: Callable[[int], None] | None = None  # told the tokens each commit adds (progress)
        self._committed = self.state.tokens
        self._fh = {name: open(self.dir / name, "r+b") for name in PARTS}
        for fh in self._fh.values():
            fh.seek(0, os.SEEK_END)

    def _fresh(self, identity: dict[str, Any], n_sources: int) -> BuildState:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        for name in PARTS:
            (self.dir / name).touch()
        return BuildState(identity=identity, sources=[SourceProgress() for _ in range(n_sources)])

    def _resume(self, identity: dict[str, Any]) -> BuildState | None:
        """The recorded state when it is this build's, its files truncated to what it committed (None: start over)."""
        try:
            raw = json.loads((self.dir / "state.json").read_text(encoding="utf-8"))
            state = BuildState(**{**raw, "sources": [SourceProgress(**s) for s in raw["sources"]]})
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if state.identity != identity:  # other sources or another tokenizer: this partial corpus is not theirs
            return None
        sizes = {"tokens.bin": 4 * state.tokens, "lengths.bin": 8 * state.docs, "doc_source.bin": 4 * state.docs}
        for name, size in sizes.items():
            path = self.dir / name
            if not path.is_file() or path.stat().st_size < size:  # lost after a crash of the machine: start over
                return None
            os.truncate(path, size)  # drop a batch written after the last record
        return state

    def append(self, ids: list[int], source: str) -> None:
        """One document (committed by the next `commit`)."""
        st = self.state
        if source not in st.names:
            st.names.append(source)
        self._fh["tokens.bin"].write(np.asarray(ids, dtype=np.int32).tobytes())
        self._fh["lengths.bin"].write(np.int64(len(ids)).tobytes())
        self._fh["doc_source.bin"].write(np.int32(st.names.index(source)).tobytes())
        st.docs += 1
        st.tokens += len(ids)

    def commit(self) -> None:
        """Record the documents appended so far and the sources' positions (files flushed first, then the state
        replaced atomically: a process killed at any point leaves a state its files hold)."""
        from longkit.io import write_json

        for fh in self._fh.values():
            fh.flush()
        write_json(self.dir / "state.json", asdict(self.state))
        if self.on_commit is not None:
            self.on_commit(self.state.tokens - self._committed)
        self._committed = self.state.tokens

    def save_files(self, index: int, revision: str, files: list[str]) -> None:
        """Fix the commit and file list a Hub source reads, for this build and any resumed run of it."""
        from longkit.io import write_json

        write_json(self.dir / f"files-{index}.json", files)
        pos = self.state.sources[index]
        pos.revision, pos.files = revision, len(files)
        self.commit()

    def files(self, index: int) -> list[str]:
        """The file list a Hub source reads (as `save_files` fixed it)."""
        files: list[str] = json.loads((self.dir / f"files-{index}.json").read_text(encoding="utf-8"))
        return files

    def close(self) -> None:
        """Close the partial files (what is not committed is dropped by the next run)."""
        for fh in self._fh.values():
            fh.close()

    def finish(self, specs: list[SourceSpec], tokenizer: Any, tokenizer_name: str) -> TokenizedCorpus:
        """Write the corpus store from the partial files and remove them."""
        from longkit.io import write_json

        self.close()
        st = self.state
        if st.tokens == 0:
            raise InputError(f"every document in {', '.join(s.path for s in specs)} is empty (0 tokens)")
        lengths = np.fromfile(self.dir / "lengths.bin", dtype=np.int64)
        offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)])
        (self.out / "meta.json").unlink(missing_ok=True)  # an interrupted finish must not pass for a whole corpus
        os.replace(self.dir / "tokens.bin", self.out / "tokens.bin")
        np.save(self.out / "offsets.npy", offsets)
        np.save(self.out / "doc_source.npy", np.fromfile(self.dir / "doc_source.bin", dtype=np.int32))
        write_json(self.out / "sources.json", st.names)
        hub = [
            {"path": s.path, "revision": p.revision, "files_read": p.file + (p.row > 0), "tokens": p.tokens}
            for s, p in zip(specs, st.sources)
            if p.revision is not None
        ]
        write_corpus_meta(self.out, specs, tokenizer, tokenizer_name, st.docs, st.tokens, hub_sources=hub)
        shutil.rmtree(self.dir)
        return TokenizedCorpus(self.out)


def _identity(specs: list[SourceSpec], tokenizer: Any) -> dict[str, Any]:
    from longkit.data.fingerprint import tokenizer_fingerprint
    from longkit.data.reuse import spec_records

    return {"version": 1, "specs": spec_records(specs), "tokenizer_sha256": tokenizer_fingerprint(tokenizer)}


def _documents(spec: SourceSpec, pos: SourceProgress, files: list[str]) -> Generator[Doc, None, None]:
    """The source's documents after its recorded position (`files`: a Hub source's file list)."""
    if spec.resolved_type() != "hub":
        for k, (src, text) in enumerate(iter_documents(spec), start=1):
            if k > pos.row:  # a local source's position counts documents; earlier ones are read, not tokenized
                yield Doc(0, k, src, text)
        return
    assert pos.revision is not None
    for k, row_no, row in iter_hub_rows(spec, pos.revision, files, pos.file, pos.row):
        if row is None:
            yield Doc(k, row_no, "", None)
            continue
        with located(f"{spec.path}/{files[k]}:{row_no}"):
            src, text = row_doc(spec, row, default_source(spec))
        yield Doc(k, row_no, src, text)


def _write_batch(batch: list[Doc], spec: SourceSpec, pos: SourceProgress, partial: PartialCorpus, tok: Any) -> bool:
    """Tokenize and append the batch's documents until the source's budget is reached; True once it is."""
    from longkit.data.utk import encode_text

    budget = spec.token_budget
    if batch:
        for doc, ids in zip(batch, encode_text(tok, [d.text or "" for d in batch])):
            if budget is not None and pos.tokens >= budget:
                break  # the rest of the batch was tokenized ahead of the budget; it is not written
            partial.append(ids, doc.source)
            pos.file, pos.row = doc.file, doc.row
            pos.docs += 1
            pos.tokens += len(ids)
    return budget is not None and pos.tokens >= budget


def _hub_files(index: int, spec: SourceSpec, partial: PartialCorpus) -> list[str]:
    """A Hub source's file list, fixed with its commit at the build's first start (local sources: none)."""
    if spec.resolved_type() != "hub":
        return []
    if partial.state.sources[index].revision is None:
        revision = resolve_revision(spec)
        partial.save_files(index, revision, split_files(spec, revision))
    return partial.files(index)


def _stream_source(index: int, spec: SourceSpec, partial: PartialCorpus, tok: Any, batch_size: int) -> None:
    """Read one source from its position to its end or budget, committing after each batch."""
    pos = partial.state.sources[index]
    full = spec.token_budget is not None and pos.tokens >= spec.token_budget
    batch: list[Doc] = []
    with contextlib.closing(_documents(spec, pos, _hub_files(index, spec, partial))) as docs:
        for doc in docs if not full else ():
            if doc.text is not None:
                batch.append(doc)
                if len(batch) < batch_size:
                    continue
            full = _write_batch(batch, spec, pos, partial, tok)
            batch = []
            if doc.text is None and not full:  # a file boundary: the next start skips the finished file whole
                pos.file, pos.row = doc.file, doc.row
            partial.commit()
            if full:
                break
    _write_batch(batch, spec, pos, partial, tok)
    if pos.docs == 0:
        raise InputError(f"{spec.path}: source has no documents")
    pos.done = True
    partial.commit()


def tokenize_streaming(
    specs: list[SourceSpec], tokenizer: Any, out_dir: str | Path, batch_size: int = 256, tokenizer_name: str = ""
) -> TokenizedCorpus:
    """Tokenize the sources into a corpus store, each up to its `token_budget`, resuming a killed run (see the
    module's docstring); the result is byte for byte the corpus one uninterrupted run writes."""
    from longkit.progress import Progress

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    partial = PartialCorpus(out, _identity(specs, tokenizer), len(specs))
    budgets = [s.token_budget for s in specs]
    total = sum(b for b in budgets if b is not None) if all(b is not None for b in budgets) else None
    try:
        with Progress("tokenize", total=total, done=partial.state.tokens, unit="tokens") as prog:
            partial.on_commit = prog.advance
            for i, spec in enumerate(specs):
                if not partial.state.sources[i].done:
                    _stream_source(i, spec, partial, tokenizer, batch_size)
    except BaseException:
        partial.close()  # killed or failed: what is committed stays for the next run
        raise
    return partial.finish(specs, tokenizer, tokenizer_name)
