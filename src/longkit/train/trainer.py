"""The Trainer both stages share: transformers Trainer plus exact data resume, a finite-loss guard
and per-step loss records. Everything else (optimizer, cosine schedule, checkpoints, accelerate /
FSDP / DeepSpeed, gradient checkpointing, logging) is the stock Trainer's.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from longkit.errors import LongkitError
from longkit.train.collate import STATE_KEY

DATA_STATE = "longkit_data_state.json"  # one file: every rank resumes from rank 0's position (sequence sharding)
DONE_MARK = "longkit_checkpoint_complete"


class LongkitTrainer(Trainer):
    """Trainer that saves the streaming dataset's position with each checkpoint and stops on NaN/inf loss."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.step_losses: list[float] = []
        self._data_state: dict[str, Any] | None = None
        self._micro: list[float] = []

    def create_accelerator_and_postprocess(self) -> None:
        super().create_accelerator_and_postprocess()
        from longkit.train.launch import cpu_fsdp_requested

        if cpu_fsdp_requested():
            enable_cpu_fsdp(self)

    def get_train_dataloader(self) -> Any:
        """Plain DataLoader for the self-sharding stream; map-style datasets use the Trainer's own."""
        from longkit.train.collate import StatefulStream

        if not isinstance(self.train_dataset, StatefulStream):
            return super().get_train_dataloader()
        # The packed stream shards itself (each rank keeps its micro-batches of the one global stream);
        # accelerate's IterableDatasetShard would slice every rank's batches again (losing data and
        # breaking the saved stream position). Rank, world size and batch size are set here, in the main
        # process, because data-loader workers cannot ask torch.distributed.
        ds = self.train_dataset.dataset
        if hasattr(ds, "batch_size"):
            # Ranks that split one sequence (context parallel, the innermost mesh dimension) read the same data.
            pc = getattr(self.args, "parallelism_config", None)
            cp = int(getattr(pc, "cp_size", 1) or 1) if pc is not None else 1
            ds.rank, ds.world_size = self.args.process_index // cp, max(1, self.args.world_size // cp)
            ds.batch_size = self._train_batch_size
        workers = self.args.dataloader_num_workers
        return torch.utils.data.DataLoader(
            self.train_dataset,
            batch_size=self._train_batch_size,
            collate_fn=self.data_collator,
            num_workers=workers,
            prefetch_factor=self.args.dataloader_prefetch_factor if workers else None,
            pin_memory=self.args.dataloader_pin_memory and torch.cuda.is_available(),
        )

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        """One micro-batch; remembers the data position of what was trained and checks the loss."""
        state = inputs.pop(STATE_KEY, None)
        loss = super().training_step(model, inputs, num_items_in_batch)
        if state is not None:
            self._data_state = state
        value = float(loss.detach().float().item())
        if self.args.world_size > 1:
            # Averaged over ranks at every micro-batch: a non-finite loss on any rank stops every rank (none is
            # left waiting in a collective), and the sum over the step is the step loss of the whole launch.
            t = torch.tensor([value], dtype=torch.float64, device=self.args.device)
            value = float(self.accelerator.reduce(t, reduction="mean").item())
        if not math.isfinite(value):
            last = last_checkpoint(self._output_dir())
            raise LongkitError(
                f"non-finite loss ({value}) at step {self.state.global_step + 1}; "
                f"last good checkpoint: {last or 'none'} (lower the learning rate or check the data)"
            )
        self._micro.append(value)
        if len(self._micro) >= self.current_gradient_accumulation_steps:
            # Micro-batch losses come back already divided for accumulation (and, across ranks, by the global
            # token count times the world size), so their sum (of rank means) is the step loss.
            self.step_losses.append(sum(self._micro))
            self._micro = []
        return loss

    def _output_dir(self) -> str:
        """args.output_dir: typed optional by transformers, but TrainingArguments always sets it."""
        out = self.args.output_dir
        if out is None:  # not reached; Path(None) would have failed here too
            raise TypeError("TrainingArguments.output_dir is not set")
        return out

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        ckpt = Path(self._output_dir()) / f"checkpoint-{self.state.global_step}"
        if ckpt.is_dir():
            if self.args.process_index == 0 and self._data_state is not None:
                _atomic_json(ckpt / DATA_STATE, self._data_state)
            self.accelerator.wait_for_everyone()  # every rank's part (its RNG state) is on disk before the mark
            if self.args.process_index == 0:
                _atomic_json(ckpt / DONE_MARK, {"step": self.state.global_step})


def enable_cpu_fsdp(trainer: Trainer) -> None:
    """FSDP2 over gloo on CPU. accelerate (1.15) only turns FSDP on for GPU-class process groups and leaves a
    CPU launch as plain DDP, although torch's `fully_shard` shards over gloo; so the launch's FSDP plugin
    (read from the FSDP_* variables `accelerate launch` sets) is put on the CPU state here, and accelerate's
    own FSDP2 path does the rest (wrapping, sharded checkpoints, full-weight save)."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    plugin = FullyShardedDataParallelPlugin()
    if plugin.fsdp_version != 2:
        raise LongkitError("launch: FSDP on CPU needs FSDP2 (fsdp_version: 2 in the accelerate config)")
    state = trainer.accelerator.state
    state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP  # as accelerate's GPU path records it
    state.fsdp_plugin = plugin
    trainer.is_fsdp_enabled = True


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def last_checkpoint(output_dir: str | Path) -> str | None:
    """Newest complete checkpoint dir under output_dir (a crash mid-save leaves an incomplete one behind)."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    done = []
    for p in out.glob("checkpoint-*"):
        if (p / DONE_MARK).exists() and (p / "trainer_state.json").exists():
            try:
                done.append((int(p.name.split("-")[-1]), p))
            except ValueError:
                continue
    return str(max(done)[1]) if done else None


def load_data_state(checkpoint: str | Path) -> dict[str, Any] | None:
    """The dataset position saved with a checkpoint (the same for every rank), if any."""
    p = Path(checkpoint) / DATA_STATE
    return json.loads(p.read_text()) if p.exists() else None
