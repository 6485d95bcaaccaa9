"""Indexing: chunk documents, embed them in committed batches, resume after an interruption."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from longkit.errors import ConfigError, InputError
from longkit.rag.chunk import Chunk, ChunkConfig, chunk_document
from longkit.rag.embed import TextTooLong, _Base
from longkit.rag.index import VectorIndex, check_embedder
from longkit.rag.sources import doc_hash

OVERFLOW_POLICIES = ("error", "split", "pool")


@dataclass
class BuildStats:
    """What an indexing run did."""

    added: int = 0
    replaced: int = 0
    skipped: int = 0
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
    """Open the index at out for writing (checking embedder and chunking), or create it."""
    out = Path(out)
    if (out / "manifest.json").exists():
        index = VectorIndex.open(out, writable=True)
        check_embedder(index.manifest, embedder.describe(), out)
        built = index.manifest.get("chunking", {})
        keys = ("size", "overlap", "unit", "tokenizer", "on_overflow")
        if any(built.get(k) != chunking.get(k) for k in keys):
            raise InputError(
                f"{out}: index was chunked with {({k: built.get(k) for k in keys})}, not "
                f"{({k: chunking.get(k) for k in keys})}; use the same settings or another --out"
            )
        return index
    return VectorIndex.create(out, embedder.describe(), chunking, kind=kind)


def index_documents(
    index: VectorIndex,
    docs: Iterable[tuple[str, str]],
    embedder: _Base,
    config: ChunkConfig,
    tokenizer: Any = None,
    on_overflow: str = "error",
    commit_every: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> BuildStats:
    """Add documents to an index in committed batches of whole documents.

    Unchanged documents (same id and content hash) are skipped, so rerunning an interrupted run
    resumes where its last commit ended; changed documents are replaced. `tokenizer` cuts chunks
    (default: the embedder's own). `progress(docs_done, chunks_done)` is called after each commit.
    """
    if on_overflow not in OVERFLOW_POLICIES:
        raise ConfigError(f"on_overflow must be one of {OVERFLOW_POLICIES}, got '{on_overflow}'")
    tok = tokenizer if tokenizer is not None else embedder.tokenizer
    stats = BuildStats()
    t0 = time.perf_counter()
    known = index.doc_hashes()
    seen: set[str] = set()
    pending: list[Chunk] = []
    pending_hash: dict[str, str] = {}
    replace: list[str] = []
    docs_done = 0
    index.begin_build()

    def flush() -> None:
        nonlocal pending, pending_hash, replace
        if not pending and not replace:
            return
        if replace:
            index.delete(replace)
        vectors = embedder.embed_documents([c.text for c in pending], pool_long=on_overflow == "pool")
        index.add(pending, vectors, pending_hash)
        stats.chunks += len(pending)
        stats.commits += 1
        pending, pending_hash, replace = [], {}, []
        if progress:
            progress(docs_done, stats.chunks)

    for doc_id, text in docs:
        if doc_id in seen:
            raise InputError(f"document id '{doc_id}' appears twice in the input")
        seen.add(doc_id)
        h = doc_hash(text)
        if not text.strip():
            stats.empty += 1
            docs_done += 1
            if doc_id in known:  # emptied since the last run: its old chunks go
                replace.append(doc_id)
                stats.replaced += 1
            continue
        if known.get(doc_id) == h:
            stats.skipped += 1
            docs_done += 1
            continue
        chunks = fit_chunks(chunk_document(text, doc_id, config, tok), text, embedder, on_overflow, stats)
        if doc_id in known:
            replace.append(doc_id)
            stats.replaced += 1
        else:
            stats.added += 1
        stats.doc_ids.append(doc_id)
        pending.extend(chunks)
        pending_hash[doc_id] = h
        docs_done += 1
        if len(pending) >= commit_every:
            flush()
    flush()
    index.save_graph()
    index.end_build()
    stats.seconds = time.perf_counter() - t0
    return stats


def embed_chunks_in_memory(chunks: list[Chunk], embedder: _Base, pool_long: bool = True) -> np.ndarray:
    """Vectors for chunks that are not persisted (sweeps over chunk sizes)."""
    return embedder.embed_documents([c.text for c in chunks], pool_long=pool_long)
