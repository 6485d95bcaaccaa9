"""Stage blends: datasets with a weight (share of the stage's samples) or a number of epochs, as in
ChatQA 2's appendix table; reports the effective epochs each dataset gets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longkit.errors import ConfigError


@dataclass
class BlendPart:
    """One dataset of a blend after planning."""

    name: str
    size: int
    samples: int

    @property
    def effective_epochs(self) -> float:
        """How many passes over the dataset the blend makes."""
        return self.samples / self.size if self.size else 0.0


def _draw(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """k indices into range(n): whole shuffled passes, then a random partial pass."""
    full, rest = divmod(k, n)
    parts = [rng.permutation(n) for _ in range(full)]
    if rest:
        parts.append(rng.permutation(n)[:rest])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def plan_blend(
    items: list[dict[str, Any]], sizes: list[int], num_samples: int | None = None, seed: int = 0
) -> tuple[list[tuple[int, int]], list[BlendPart]]:
    """Sample order [(dataset index, row index)] and per-dataset counts for a blend spec."""
    if not items:
        raise ConfigError("blend: a blend needs at least one dataset")
    rng = np.random.default_rng(seed)
    counts = [0] * len(items)
    weighted = []
    for i, (it, n) in enumerate(zip(items, sizes)):
        w, e = it.get("weight"), it.get("epochs")
        if (w is None) == (e is None):
            raise ConfigError(f"blend[{i}] ({it.get('path')}): give exactly one of 'weight' or 'epochs'")
        if n == 0:
            raise ConfigError(f"blend[{i}] ({it.get('path')}): dataset is empty")
        if e is not None:
            if e <= 0:
                raise ConfigError(f"blend[{i}]: 'epochs' must be > 0, got {e}")
            counts[i] = int(round(e * n))
        else:
            assert w is not None  # exactly one of weight and epochs is given (checked above)
            if w <= 0:
                raise ConfigError(f"blend[{i}]: 'weight' must be > 0, got {w}")
            weighted.append(i)
    if weighted:
        total_w = sum(items[i]["weight"] for i in weighted)
        budget = num_samples if num_samples is not None else sum(sizes[i] for i in weighted)
        for i in weighted:
            counts[i] = int(math.floor(budget * items[i]["weight"] / total_w + 0.5))
    order = [(i, int(j)) for i, (n, k) in enumerate(zip(sizes, counts)) for j in _draw(n, k, rng)]
    perm = rng.permutation(len(order))
    order = [order[p] for p in perm]
    parts = [BlendPart(it.get("name") or Path(it["path"]).stem, n, k) for it, n, k in zip(items, sizes, counts)]
    return order, parts
