"""Indexing: chunk documents, embed them in commits of a fixed number of chunks, resume after an interruption.

A document is recognised by its id (a file's id is its resolved path, see `sources.iter_documents`) and its
content hash, `sha256:` + the SHA-256 of its UTF-8 text (for a text file: of its bytes, less a leading BOM).
Rerunning skips unchanged documents, replaces changed ones, and redoes a document that a stopped run committed
only in part. Records written before hashes were SHA-256 hold a SHA-1 of the text and may hold an unresolved
path as id: they are matched by resolved path and compared by re-hashing, then relabelled without re-embedding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from longkit.errors import ConfigError, InputError
from longkit.rag.chunk import Chunk, ChunkConfig, chunk_document
from longkit.rag.embed import TextTooLong, _Base
from longkit.rag.index import VectorIndex
from longkit.rag.manifest import check_build_settings, read_manifest
from longkit.rag.sources import PYDOC_SOURCE, doc_hash

OVERFLOW_POLICIES = ("error", "split", "pool")
HASH_PREFIX = "sha256:"


@dataclass
class BuildStats:
    """What an indexing run did."""

    added: int = 0
    replaced: int = 0  # content changed (or emptied) since it was indexed
    redone: int = 0  # a stopped run had committed only part of its chunks
    skipped: int = 0  # unchanged
    duplicates: int = 0  # the same document given again in this run (e.g. through a symlink)
    upgraded: int = 0  # unchanged records of an older index given their resolved path and SHA-256
    chunks: int = 0
    commits: int = 0
    seconds: float = 0.0
    resplit: int = 0
    pooled: int = 0
    empty: int = 0  # documents with no text (nothing to index)
    doc_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view without the id list; `chunks_added` counts this run's chunks only."""
        d = dataclasses.asdict(self)
        d.pop("doc_ids")
        d["chunks_added"] = d.pop("chunks")
        return d


@dataclass
class Scan:
    """What a reading pass over the inputs found."""

    documents: int = 0
    with_text: int = 0


def content_hash(text: str) -> str:
    """The content hash recorded for a document: `sha256:` + SHA-256 of its UTF-8 text."""
    return HASH_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _duplicate(doc_id: str) -> InputError:
    return InputError(
        f"document '{doc_id}': appears twice in the input with different text; expected each document id once"
    )


def scan_documents(docs: Iterable[tuple[str, str]]) -> Scan:
    """Read every document once, keeping no text, so a bad input is refused before anything is written."""
    seen: dict[str, str] = {}
    scan = Scan()
    for doc_id, text in docs:
        h = content_hash(text)
        if seen.setdefault(doc_id, h) != h:
            raise _duplicate(doc_id)
        scan.documents += 1
        scan.with_text += bool(text.strip())
    return scan


def chunking_record(config: ChunkConfig, tokenizer_name: str, on_overflow: str) -> dict[str, Any]:
    """The manifest's record of how chunks were cut."""
    return {**dataclasses.asdict(config), "tokenizer": tokenizer_name, "on_overflow": on_overflow}


def fit_chunks(chunks: list[Chunk], text: str, embedder: _Base, on_overflow: str, stats: BuildStats) -> list[Chunk]:
    """Apply the overflow policy to chunks longer than the embedder's limit (never truncate)."""
    counts = embedder.token_counts([c.text for c in chunks])
    if all(n <= embedder.max_tokens for n in counts):
        return chunks
    if on_overflow == "pool":
        stats.pooled += sum(n > embedder.max_tokens for n in counts)
        return chunks
    out: list[Chunk] = []
    for c, n in zip(chunks, counts):
        if n <= embedder.max_tokens:
            out.append(c)
            continue
        if on_overflow == "error":
            raise TextTooLong(
                f"document '{c.doc_id}' chunk {c.position} is {n} tokens for embedder '{embedder.name}', "
                f"which reads at most {embedder.max_tokens}; use a smaller --chunk-size or --on-overflow split|pool"
            )
        sub_cfg = ChunkConfig(size=embedder.max_tokens - embedder.n_special, overlap=0, unit="token")
        for s in chunk_document(c.text, c.doc_id, sub_cfg, embedder.tokenizer):
            out.append(Chunk(c.doc_id, 0, c.start + s.start, c.start + s.end, s.n_tokens, s.text))
        stats.resplit += 1
    return [dataclasses.replace(c, position=i) for i, c in enumerate(out)]


def open_or_create(out: str | Path, embedder: _Base, chunking: dict[str, Any], kind: str = "exact") -> VectorIndex:
    """Open the index at out for writing, or create it; settings that differ from its own are refused first."""
    out = Path(out)
    if (out / "manifest.json").exists():
        # Checked on the manifest alone, so a refused run has written nothing.
        check_build_settings(read_manifest(out), out, kind=kind, chunking=chunking, embedder=embedder.describe())
        return VectorIndex.open(out, writable=True)
    return VectorIndex.create(out, embedder.describe(), chunking, kind=kind)


def _legacy_aliases(hashes: dict[str, str]) -> dict[str, list[str]]:
    """Resolved path -> ids of older records naming that file another way (their hash kind is 'unknown')."""
    out: dict[str, list[str]] = {}
    for doc_id, h in sorted(hashes.items()):
        if h.startswith(HASH_PREFIX) or doc_id == PYDOC_SOURCE:
            continue
        path, sep, line = doc_id.rpartition(":")
        path, suffix = (path, f":{line}") if sep and line.isdigit() else (doc_id, "")  # JSONL rows: 'file:line'
        try:
            resolved = str(Path(path).resolve()) + suffix if Path(path).is_file() else None
        except (OSError, RuntimeError):  # an id that is no usable path (too long, a symlink loop)
            resolved = None
        if resolved is not None and resolved != doc_id:
            out.setdefault(resolved, []).append(doc_id)
    return out


class _Known:
    """What the index held when the run started, and how an input document compares with it."""

    def __init__(self, index: VectorIndex):
        self.hashes = index.doc_hashes()
        self.unfinished = index.unfinished_docs()
        self.aliases = _legacy_aliases(self.hashes)

    def find(self, doc_id: str) -> tuple[str | None, list[str]]:
        """The id the index holds this document under (or None), and other ids naming the same file."""
        others = list(self.aliases.get(doc_id, []))
        if doc_id in self.hashes:
            return doc_id, others
        return (others[0], others[1:]) if others else (None, [])

    def unchanged(self, old_id: str, text: str, h: str) -> bool:
        """Whether the indexed version is complete and has this content (older SHA-1 records: re-hashed)."""
        stored = self.hashes[old_id]
        if old_id in self.unfinished:
            return False
        return stored == h if stored.startswith(HASH_PREFIX) else stored == doc_hash(text)


class _Committer:
    """Queued chunks, committed `commit_every` at a time (a document may span commits), with pending deletions."""

    def __init__(
        self,
        index: VectorIndex,
        embedder: _Base,
        on_overflow: str,
        commit_every: int,
        stats: BuildStats,
        progress: Callable[[int, int], None] | None,
    ):
        self.index, self.embedder, self.stats, self.progress = index, embedder, stats, progress
        self.pool_long = on_overflow == "pool"
        self.commit_every = commit_every
        self.pending: list[Chunk] = []
        self.hashes: dict[str, str] = {}
        self.doomed: set[str] = set()  # ids whose indexed chunks go at the next commit
        self.labels: dict[str, tuple[str, str]] = {}  # old id -> (id, hash), applied at the next commit
        self.docs_done = 0
        self.started = False

    def queue(self, doc_id: str, h: str, chunks: list[Chunk]) -> None:
        """Queue a document's chunks; commit every full batch."""
        self.hashes[doc_id] = h
        self.pending.extend(chunks)
        while len(self.pending) >= self.commit_every:
            self.commit(self.commit_every)

    def commit(self, n: int) -> None:
        """Apply pending deletions and relabels, then commit the first n queued chunks as one segment."""
        if not self.started:  # the first write of the run: until end_build() a reopen verifies checksums
            self.index.begin_build()
            self.started = True
        if self.labels:
            self.index.relabel(self.labels)
            self.labels = {}
        if self.doomed:
            self.index.delete(self.doomed)
            self.doomed = set()
        batch, self.pending = self.pending[:n], self.pending[n:]
        if batch:
            vectors = self.embedder.embed_documents([c.text for c in batch], pool_long=self.pool_long)
            unfinished = {c.doc_id for c in batch} & {c.doc_id for c in self.pending}
            self.index.add(batch, vectors, self.hashes, unfinished=unfinished)
            self.stats.chunks += len(batch)
        self.stats.commits += 1
        if self.progress:
            self.progress(self.docs_done, self.stats.chunks)

    def finish(self) -> None:
        """Commit what is left and mark the run finished."""
        if self.pending or self.doomed or self.labels:
            self.commit(len(self.pending))
        self.index.save_graph()
        self.index.end_build()


def _take(
    doc_id: str, text: str, h: str, known: _Known, run: _Committer, cut: Callable[[str, str], list[Chunk]]
) -> None:
    """Decide what one input document needs (skip, relabel, add, replace, redo) and queue it."""
    stats = run.stats
    old, others = known.find(doc_id)
    run.doomed.update(others)  # the same file indexed under other (older) ids: one copy stays
    if not text.strip():
        stats.empty += 1
        if old is not None:  # emptied since the last run: its old chunks go
            run.doomed.add(old)
            stats.replaced += 1
        return
    if old is not None and known.unchanged(old, text, h):
        stats.skipped += 1
        if (old, known.hashes[old]) != (doc_id, h):
            run.labels[old] = (doc_id, h)
            stats.upgraded += 1
        return
    chunks = cut(text, doc_id)
    if old is None:
        stats.added += 1
    else:
        run.doomed.add(old)
        if old in known.unfinished:
            stats.redone += 1
        else:
            stats.replaced += 1
    stats.doc_ids.append(doc_id)
    run.queue(doc_id, h, chunks)


def index_documents(
    index: VectorIndex,
    docs: Iterable[tuple[str, str]],
    embedder: _Base,
    config: ChunkConfig,
    tokenizer: Any = None,  # Any: a Hugging Face tokenizer
    on_overflow: str = "error",
    commit_every: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> BuildStats:
    """Add documents, committing every `commit_every` chunks; `progress(docs_done, chunks_done)` after each commit."""
    # Documents are read as they are indexed (a stopped run keeps its commits): callers that must refuse bad
    # inputs before the first write read them first (scan_documents), as `rag index` does.
    if on_overflow not in OVERFLOW_POLICIES:
        raise ConfigError(f"on_overflow must be one of {OVERFLOW_POLICIES}, got '{on_overflow}'")
    if commit_every < 1:
        raise ConfigError(f"commit_every must be >= 1, got {commit_every}")
    tok = tokenizer if tokenizer is not None else embedder.tokenizer
    stats = BuildStats()
    t0 = time.perf_counter()
    known = _Known(index)
    run = _Committer(index, embedder, on_overflow, commit_every, stats, progress)

    def cut(text: str, doc_id: str) -> list[Chunk]:
        return fit_chunks(chunk_document(text, doc_id, config, tok), text, embedder, on_overflow, stats)

    seen: dict[str, str] = {}
    for doc_id, text in docs:
        h = content_hash(text)
        run.docs_done += 1
        if doc_id in seen:
            if seen[doc_id] != h:
                raise _duplicate(doc_id)
            stats.duplicates += 1
            continue
        seen[doc_id] = h
        _take(doc_id, text, h, known, run, cut)
    run.finish()
    stats.seconds = time.perf_counter() - t0
    return stats


def embed_chunks_in_memory(chunks: list[Chunk], embedder: _Base, pool_long: bool = True) -> np.ndarray:
    """Vectors for chunks that are not persisted (sweeps over chunk sizes)."""
    return embedder.embed_documents([c.text for c in chunks], pool_long=pool_long)
