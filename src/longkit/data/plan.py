"""What the packer and the transforms share: part kinds (loss masks), segment columns, pieces, plans.

`pack.py` (the packer) and the transforms (`cip.py`, `utk.py`) all import this module and nothing
imports them back from here, so the packer and UtK no longer import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

IGNORE = -100
# part kinds, i.e. how a run of tokens is labelled: learned; masked; masked and the position after it
# masked too (the authors' UtK masks the prediction made *from* a knot, a chunk label or an EOD);
# learned but the position after it masked
LEARN, MASK, MASK_NEXT, LEARN_MASK_NEXT = 0, 1, 2, 3
# a run of structure tokens and its part kind, as parts() and trailer() return them
Part = tuple[np.ndarray, int]
EMPTY = np.zeros(0, dtype=np.int32)

# columns of PackedSample.segments (one row per chunk of text placed in the sequence)
SEG_KEY, SEG_DOC, SEG_OFFSET, SEG_CHUNK, SEG_NCHUNKS, SEG_START, SEG_END, SEG_LAST = range(8)


@dataclass
class Piece:
    """A document, or the part of one that is placed in the current sequence."""

    key: int  # unique stream position of the document (a repeated document gets a new key)
    doc_id: int  # row of the document in the tokenized corpus
    offset: int  # offset of tokens[0] within the original document
    tokens: np.ndarray
    last: bool = True  # this piece ends its document


@dataclass
class ChunkPlan:
    """How a piece is cut: n chunks and, for UtK, the label of each chunk (indices into the transform's labels)."""

    n: int
    labels: np.ndarray | None = None
    overhead: int = 0  # structure tokens this piece adds (separator excluded)


class Transform:
    """Plain concatenation: one chunk per document, in stream order; base class of CIP and UtK."""

    name = "plain"
    has_parts = False  # whether parts()/trailer() add structure around split pieces
    cross_chunk = False  # chunks of one document must see each other (UtK): no intra-document attention
    sep_kind = LEARN  # how the document separator is labelled
    sep_after_text = False  # separator right after the document's last chunk (else after its trailer)

    def begin_sequence(self, rng: np.random.Generator) -> None:
        """Reset per-sequence state (label draws, per-sequence chunk-count distribution)."""

    def plan(self, length: int, rng: np.random.Generator) -> ChunkPlan:
        """Choose the chunking of a piece of `length` tokens."""
        return ChunkPlan(1)

    def split_points(self, lengths: np.ndarray, ns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Cut points of all pieces at once: for piece p, ns[p]-1 sorted distinct cuts in [1, lengths[p]).

        Returned flat, grouped by piece in order (uniformly random, vectorised; pieces whose i.i.d.
        draws collide are redrawn, which keeps the choice uniform over subsets).
        """
        k = ns - 1
        piece = np.repeat(np.arange(len(ns)), k)
        m = lengths[piece]
        cuts: np.ndarray = 1 + (rng.random(len(piece)) * (m - 1)).astype(np.int64)
        while True:
            o = np.lexsort((cuts, piece))
            cuts = cuts[o]
            dup = np.flatnonzero((piece[1:] == piece[:-1]) & (cuts[1:] == cuts[:-1]))
            if not len(dup):
                return cuts
            bad = np.isin(piece, piece[dup])
            cuts[bad] = 1 + (rng.random(int(bad.sum())) * (m[bad] - 1)).astype(np.int64)

    def order(self, n_per_piece: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Stream order of all chunks (chunk c of the flattened piece-major list goes to position i)."""
        return np.arange(int(n_per_piece.sum()))

    def parts(self, plans: list[ChunkPlan], piece: int, chunk: int) -> tuple[list[Part], list[Part]]:
        """Structure parts before and after chunk text: lists of (tokens, kind)."""
        return [], []

    def trailer(self, plan: ChunkPlan) -> list[Part]:
        """Parts appended after a piece's last chunk in stream order (UtK backtracing target)."""
        return []

    def structure(self) -> dict[str, Any]:
        """Token ids untie() needs to parse this transform's output."""
        return {"transform": self.name}
