"""Shared plumbing for `train cpt` and `train sft`: TrainingArguments from a TrainSpec, model loading
with the right attention kernel, and one Trainer run with resume and a JSON summary."""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path
from typing import Any

from longkit.io import write_json
from longkit.train.config import TrainSpec

log = logging.getLogger(__name__)


def has_cuda() -> bool:
    """True when a CUDA device is usable."""
    import torch

    return torch.cuda.is_available()


def resolve_attn(spec: TrainSpec) -> str:
    """Attention kernel: FlashAttention-2 on CUDA when installed, else SDPA (both honour packed position ids)."""
    if spec.attn_implementation != "auto":
        return spec.attn_implementation
    if has_cuda() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def resolve_report_to(spec: TrainSpec) -> list[str]:
    """Loggers: 'auto' picks TensorBoard and W&B when their packages are installed."""
    import os

    if spec.report_to == "auto":
        out = []
        if importlib.util.find_spec("tensorboard") is not None:
            out.append("tensorboard")
        if importlib.util.find_spec("wandb") is not None and os.environ.get("WANDB_PROJECT"):
            out.append("wandb")
        return out or ["none"]
    return [s.strip() for s in spec.report_to.split(",") if s.strip()] or ["none"]


def training_arguments(spec: TrainSpec, out: str | Path, streaming: bool) -> Any:
    """TrainingArguments for one run (cosine with warmup; bf16 on GPUs that support it)."""
    import torch
    from transformers import TrainingArguments

    bf16 = spec.precision == "bf16" or (spec.precision == "auto" and has_cuda() and torch.cuda.is_bf16_supported())
    fp16 = spec.precision == "fp16"
    sched, sched_kwargs = spec.lr_scheduler, {}
    if spec.min_lr is not None and sched == "cosine":
        sched, sched_kwargs = "cosine_with_min_lr", {"min_lr": spec.min_lr}
    kwargs: dict[str, Any] = dict(
        output_dir=str(out), max_steps=spec.max_steps if spec.num_epochs is None else -1,
        num_train_epochs=spec.num_epochs or 1, per_device_train_batch_size=spec.per_device_batch_size,
        gradient_accumulation_steps=spec.grad_accum, learning_rate=spec.learning_rate, lr_scheduler_type=sched,
        lr_scheduler_kwargs=sched_kwargs, warmup_steps=spec.warmup_steps, weight_decay=spec.weight_decay,
        adam_beta1=spec.adam_beta1, adam_beta2=spec.adam_beta2, max_grad_norm=spec.max_grad_norm,
        logging_steps=spec.logging_steps, save_steps=max(spec.save_steps, 1), save_total_limit=spec.save_total_limit,
        seed=spec.seed, data_seed=spec.seed, bf16=bf16, fp16=fp16, activation_checkpointing=spec.gradient_checkpointing,
        report_to=resolve_report_to(spec), dataloader_num_workers=spec.dataloader_num_workers,
        remove_unused_columns=False, disable_tqdm=False,
        # save_steps 0: no intermediate checkpoints (smoke runs); the final model is still saved.
        save_strategy="steps" if spec.save_steps > 0 else "no",
        # The streaming dataset shards itself by rank and resumes from its own saved position.
        accelerator_config={"dispatch_batches": False, "split_batches": False} if streaming else None,
        ignore_data_skip=streaming,
    )
    if spec.context_parallel_size > 1:
        from accelerate.parallelism_config import ParallelismConfig

        kwargs["parallelism_config"] = ParallelismConfig(cp_size=spec.context_parallel_size)
    if kwargs["accelerator_config"] is None:
        kwargs.pop("accelerator_config")
    return TrainingArguments(**kwargs)


def load_trainable(model: str, spec: TrainSpec) -> tuple[Any, Any]:
    """Load (model, tokenizer) in float32 master weights with the chosen attention kernel."""
    from longkit.models.load import load_model

    m, tok = load_model(model, dtype="float32", attn_implementation=resolve_attn(spec))
    m.config.use_cache = False
    return m, tok


def fit(model: Any, tok: Any, dataset: Any, collator: Any, spec: TrainSpec, out: Path, resume: bool,
        streaming: bool, summary_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train with LongkitTrainer (resuming from the last complete checkpoint), save final/, write summary.json."""
    from longkit.train.loss import enable_chunked_loss
    from longkit.train.trainer import LongkitTrainer, last_checkpoint, load_data_state

    out.mkdir(parents=True, exist_ok=True)
    args = training_arguments(spec, out, streaming)
    enable_chunked_loss(model, spec.loss_chunk_size)
    ckpt = last_checkpoint(out) if resume else None
    if ckpt and streaming:
        state = load_data_state(ckpt, args.process_index)
        if state is None:
            from longkit.errors import LongkitError

            raise LongkitError(f"{ckpt}: checkpoint has no data position for rank {args.process_index}; "
                               "cannot resume the stream exactly (start a new output dir)")
        dataset.load_state_dict(state)
    trainer = LongkitTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                             processing_class=tok)
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=ckpt)
    wall = time.time() - t0
    final = out / "final"
    trainer.save_model(str(final))
    tok.save_pretrained(final)
    losses = trainer.step_losses
    summary = {
        "output": str(final), "resumed_from": ckpt, "steps": trainer.state.global_step,
        "train_loss": result.training_loss, "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None, "step_losses": losses, "wall_s": round(wall, 2),
        "log_history": trainer.state.log_history, **(summary_extra or {}),
    }
    if args.process_index == 0:
        write_json(out / "summary.json", summary)
    return summary
