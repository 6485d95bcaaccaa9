"""Retrieval: top-k or a token budget, chunks in score or document order, multi-turn queries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from longkit.errors import ConfigError, InputError
from longkit.rag.embed import _Base, load_embedder
from longkit.rag.index import Hit, VectorIndex, check_embedder

ORDERS = ("score", "position")


def query_from_messages(messages: str | Sequence[dict[str, str]], turns: int = 2) -> str:
    """The retrieval query of a conversation: its last `turns` user turns, oldest first."""
    if isinstance(messages, str):
        return messages
    users = [m["content"].strip() for m in messages if m.get("role") == "user" and str(m.get("content", "")).strip()]
    if not users:
        raise InputError("the conversation has no user turn to retrieve for")
    return "\n".join(users[-max(1, turns) :])


def order_hits(hits: list[Hit], order: str) -> list[Hit]:
    """Hits by score (as retrieved) or by position: documents in order of their best hit, chunks in
    document order within each (order-preserving RAG)."""
    if order == "score":
        return list(hits)
    if order != "position":
        raise ConfigError(f"order must be one of {ORDERS}, got '{order}'")
    first: dict[str, int] = {}
    for h in hits:
        first.setdefault(h.chunk.doc_id, h.rank)
    return sorted(hits, key=lambda h: (first[h.chunk.doc_id], h.chunk.position))


class Retriever:
    """An index plus the embedder it was built with."""

    def __init__(self, index: VectorIndex, embedder: _Base):
        check_embedder(index.manifest, embedder.describe(), index.path)
        self.index = index
        self.embedder = embedder

    @classmethod
    def open(cls, path: str | Path, embedder: _Base | str | None = None) -> Retriever:
        """Open an index directory; the embedder defaults to the one named in its manifest."""
        index = VectorIndex.open(path)
        if embedder is None or isinstance(embedder, str):
            embedder = load_embedder(embedder or index.manifest["embedder"]["name"])
        return cls(index, embedder)

    def search(
        self,
        query: str | Sequence[dict[str, str]],
        k: int | None = None,
        token_budget: int | None = None,
        order: str = "score",
        doc_ids: Sequence[str] | None = None,
        history_turns: int = 2,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """Top-k chunks, or the best chunks whose lengths add up to at most token_budget."""
        if (k is None) == (token_budget is None):
            raise ConfigError("give exactly one of k or token_budget")
        if k is not None and k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        if token_budget is not None and token_budget < 1:
            raise ConfigError(f"token budget must be >= 1, got {token_budget}")
        if query_vector is None:
            query_vector = self.embedder.embed_queries([query_from_messages(query, history_turns)])[0]
        if k is not None:
            rows = self.index.search(query_vector, k, doc_ids)
        else:
            assert token_budget is not None  # exactly one of k and token_budget is given (checked above)
            sizes = self.index.n_tokens()
            shortest = max(1, int(sizes.min())) if len(sizes) else 1
            rows = self.index.search(query_vector, token_budget // shortest + 1, doc_ids)
            kept, used = [], 0
            for row, score in rows:
                n = int(sizes[row])
                if used + n > token_budget:
                    break  # keep relevance order: no smaller, lower-ranked chunk jumps the queue
                kept.append((row, score))
                used += n
            rows = kept
        hits = [Hit(self.index.chunk(r), s, rank, r) for rank, (r, s) in enumerate(rows)]
        return order_hits(hits, order)

    def describe(self) -> dict[str, Any]:
        """Index facts for logs."""
        return {"path": str(self.index.path), "rows": len(self.index), "embedder": self.embedder.name}
