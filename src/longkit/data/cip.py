"""Chunk-interleaved pretraining (CIP, the Skywork baseline of the UtK paper) as a packing transform.

Every document of a sequence (with at least two tokens) is split in two; the sequence holds all
first halves in document order, then all second halves in the same order. No knots or labels are
added; the document separator follows each document's second half.
"""

from __future__ import annotations

import numpy as np

from longkit.data.plan import ChunkPlan, Transform
from longkit.errors import ConfigError


class CIPTransform(Transform):
    """Split each document in two (at the middle, or at a uniformly random point) and interleave."""

    name = "cip"

    def __init__(self, split: str = "half"):
        if split not in ("half", "random"):
            raise ConfigError(f"cip.split must be half or random, got '{split}'")
        self.split = split

    def plan(self, length: int, rng: np.random.Generator) -> ChunkPlan:
        """Two chunks for any document of two tokens or more."""
        return ChunkPlan(2 if length >= 2 else 1)

    def split_points(self, lengths: np.ndarray, ns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Middle cut (default) or a uniformly random one."""
        if self.split == "half":
            cuts: np.ndarray = (lengths[ns == 2] // 2).astype(np.int64)
            return cuts
        return super().split_points(lengths, ns, rng)

    def order(self, n_per_piece: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """All first chunks in document order, then all second chunks."""
        piece_of = np.repeat(np.arange(len(n_per_piece)), n_per_piece)
        first = np.concatenate(([0], np.cumsum(n_per_piece)[:-1]))
        chunk_of = np.arange(len(piece_of)) - first[piece_of]
        return np.lexsort((piece_of, chunk_of))
