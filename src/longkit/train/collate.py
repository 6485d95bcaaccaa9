"""Batching packed samples for the Trainer: int32 numpy rows -> LongTensors, plus the data position.

Intra-document attention comes from `position_ids` alone: transformers turns restarting position
ids into a block-diagonal causal mask for SDPA/eager and into varlen `cu_seqlens` for
FlashAttention-2, so no 4D mask is built here. Rows whose position ids simply count 0..L-1 get the
ordinary causal mask (cross-document attention, as ChatQA 2 and UtK train).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

STATE_KEY = "_longkit_data_state"


class PackedCollator:
    """Stack packed samples into a batch; carries the data-position state of the last sample."""

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """Collate samples with equal-length input_ids/labels/position_ids."""
        lengths = {len(s["input_ids"]) for s in samples}
        if len(lengths) != 1:
            raise ValueError(f"packed samples in one batch must share a length, got {sorted(lengths)}")
        batch: dict[str, Any] = {}
        for key in ("input_ids", "labels", "position_ids"):
            if key in samples[0]:
                batch[key] = torch.from_numpy(np.stack([np.asarray(s[key], dtype=np.int64) for s in samples]))
        if "labels" not in batch:
            batch["labels"] = batch["input_ids"].clone()
        if STATE_KEY in samples[-1]:
            batch[STATE_KEY] = samples[-1][STATE_KEY]
        return batch


class StatefulStream(torch.utils.data.IterableDataset[dict[str, Any]]):
    """Wrap a resumable IterableDataset so each sample carries the dataset state right after it.

    The Trainer's dataloader prefetches, so the dataset's own state_dict() at checkpoint time is
    ahead of what was trained on; the state that rides with the last trained batch is exact.
    """

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for sample in self.dataset:
            sample = dict(sample)
            for k in ("segments", "num_pad", "structure", "cu_seqlens"):
                sample.pop(k, None)  # variable-length metadata: the model needs position ids only
            sample[STATE_KEY] = self.dataset.state_dict()
            yield sample

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume the wrapped dataset."""
        self.dataset.load_state_dict(state)
