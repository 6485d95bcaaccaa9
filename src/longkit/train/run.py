"""Shared plumbing for `train cpt` and `train sft`: TrainingArguments from a TrainSpec, model loading
with the right attention kernel, and one Trainer run with resume and a JSON summary."""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longkit.errors import ConfigError, LongkitError, located
from longkit.io import write_json
from longkit.train.config import TrainSpec

if TYPE_CHECKING:
    from longkit.train.probe import ProbePlan

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
        output_dir=str(out),
        max_steps=spec.max_steps if spec.num_epochs is None else -1,
        num_train_epochs=spec.num_epochs or 1,
        per_device_train_batch_size=spec.per_device_batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        learning_rate=spec.learning_rate,
        lr_scheduler_type=sched,
        lr_scheduler_kwargs=sched_kwargs,
        warmup_steps=spec.warmup_steps,
        weight_decay=spec.weight_decay,
        adam_beta1=spec.adam_beta1,
        adam_beta2=spec.adam_beta2,
        max_grad_norm=spec.max_grad_norm,
        logging_steps=spec.logging_steps,
        save_steps=max(spec.save_steps, 1),
        save_total_limit=spec.save_total_limit,
        # On a machine without CUDA, accelerate only starts gloo (MULTI_CPU) when asked for the CPU.
        use_cpu=not has_cuda(),
        ddp_find_unused_parameters=False,  # every parameter takes part (a fully masked batch adds a zero on the graph)
        seed=spec.seed,
        data_seed=spec.seed,
        bf16=bf16,
        fp16=fp16,
        activation_checkpointing=spec.gradient_checkpointing,
        report_to=resolve_report_to(spec),
        dataloader_num_workers=spec.dataloader_num_workers,
        # a bar redrawn with carriage returns is noise in a log file: off a terminal the Trainer prints each
        # logging step's line instead (its PrinterCallback)
        remove_unused_columns=False,
        disable_tqdm=not sys.stderr.isatty(),
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


def world_size() -> int:
    """Processes in this launch (accelerate/torchrun set WORLD_SIZE), before torch.distributed starts."""
    import os

    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def is_main_process() -> bool:
    """True on the process that writes outputs (rank 0 of a launch, or a single process)."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


def end_distributed() -> None:
    """Leave the process group cleanly at the end of a command: every rank waits for the others, then the group
    is destroyed (a gloo group left to interpreter exit can abort a rank, failing a finished launch)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_launch(
    spec: TrainSpec, seq_len: int, where: str | None = None, streaming: bool = False, dataset: Any = None
) -> None:
    """Refuse, before any work, what this launch cannot run (`where`, the config, prefixes its field errors)."""
    _check_launcher()
    with located(where):
        _check_parallelism(spec, seq_len, streaming, dataset)


def _check_launcher() -> None:
    """The launcher's own settings (accelerate's environment), which no config field sets."""
    import os

    from longkit.train.launch import is_single_cpu_launch, parent_cmdline, relaunch_as_ranks, requested_processes

    if is_single_cpu_launch():
        # accelerate's --cpu launcher started this one process and left the other ranks to mpirun: start the
        # ranks here (torch.distributed.run, gloo) rather than train alone, a different run from the one asked for.
        n = requested_processes(parent_cmdline())
        if n is None:
            raise ConfigError(
                "launch: `accelerate launch --cpu` with several processes needs mpirun, and the number "
                "of processes could not be read; use `accelerate launch --config_file "
                "configs/accelerate/cpu-ddp.yaml` or `torchrun --nproc_per_node N -m longkit ...`"
            )
        if n > 1:
            raise SystemExit(relaunch_as_ranks(n))
    if (
        os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")
        and not has_cuda()
        and os.environ.get("FSDP_VERSION", "1") != "2"
    ):
        # On CPU longkit runs FSDP2 (torch's fully_shard over gloo); FSDP1 needs a GPU device per rank.
        raise ConfigError(
            "launch: FSDP on CPU needs FSDP2: set fsdp_config.fsdp_version: 2 in the accelerate "
            "config (configs/accelerate/cpu-fsdp.yaml)"
        )
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() in ("1", "true") and not has_cuda():
        # accelerate turns DeepSpeed on only off the CPU; this launch would quietly train plain DDP.
        raise ConfigError(
            "launch: DeepSpeed through accelerate is GPU-only (on CPU it would silently run DDP); "
            "for sharded training on CPU use configs/accelerate/cpu-fsdp.yaml"
        )


def _check_parallelism(spec: TrainSpec, seq_len: int, streaming: bool, dataset: Any) -> None:
    """The config's context-parallel size and loader workers against this launch and dataset."""
    world, cp = world_size(), spec.context_parallel_size
    if cp > 1:
        if not has_cuda():
            raise ConfigError(
                "field 'train.context_parallel_size': context parallelism is GPU-only (torch's "
                "context_parallel has no CPU attention sharding); set it to 1 on CPU"
            )
        if world % cp:
            raise ConfigError(
                f"field 'train.context_parallel_size': {cp} does not divide the {world} processes of this launch"
            )
        if seq_len % (2 * cp):
            raise ConfigError(
                f"field 'train.context_parallel_size': seq_len {seq_len} must be divisible by "
                f"2 x context_parallel_size = {2 * cp} (load-balanced sharding)"
            )
    if (
        streaming
        and spec.dataloader_num_workers > 0
        and dataset is not None
        and not (hasattr(dataset, "state_dict") and hasattr(dataset, "load_state_dict"))
    ):
        raise ConfigError(
            f"field 'train.dataloader_num_workers': {type(dataset).__name__} cannot save its "
            "position, so a resumed run would not continue exactly; use 0 workers"
        )


def check_fsdp_wrappable(model: Any, where: str | None = None) -> None:
    """Under an FSDP launch, the layer class to wrap must exist in the model (else accelerate fails deep inside)."""
    import os

    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() not in ("1", "true"):
        return
    if os.environ.get("FSDP_AUTO_WRAP_POLICY", "TRANSFORMER_BASED_WRAP") != "TRANSFORMER_BASED_WRAP":
        return
    wanted = [c.strip() for c in os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "").split(",") if c.strip()]
    wanted = wanted or list(getattr(model, "_no_split_modules", None) or [])
    have = {type(m).__name__ for m in model.modules()}
    missing = [c for c in wanted if c not in have]
    if not wanted or missing:
        with located(where):
            raise ConfigError(
                f"FSDP cannot wrap {type(model).__name__}: layer class(es) {missing or '(none given)'} "
                "not in the model (set fsdp_transformer_layer_cls_to_wrap in the accelerate config to "
                f"one of its layer classes, e.g. {sorted(n for n in have if 'Layer' in n)[:3]})"
            )


def free_unreachable_models() -> None:
    """Collect an earlier model no one holds any more before the next one loads (the next SFT stage, the SFT after a
    recipe's CPT). The chunked loss binds a forward to its model, a reference cycle that only the garbage collector
    frees: until it runs, a finished stage's weights stay on the GPU (measured by benchmarks/gpu_cpt_lengths.py,
    where leaked models added 4.6 GiB per 1B and 15 GiB per 8B model to the next peak)."""
    import gc

    gc.collect()
    if has_cuda():
        import torch

        torch.cuda.empty_cache()


def load_trainable(model: str, spec: TrainSpec) -> tuple[Any, Any]:
    """Load (model, tokenizer) in float32 master weights with the chosen attention kernel."""
    from longkit.models.load import load_model

    free_unreachable_models()

    m, tok = load_model(model, dtype="float32", attn_implementation=resolve_attn(spec))
    m.config.use_cache = False
    return m, tok


def save_final(trainer: Any, final: Path) -> None:
    """Full weights in final/, loadable by from_pretrained. Every rank calls it (FSDP gathers the shards);
    only the main process writes. The Trainer's own save_model writes nothing under FSDP's sharded
    state-dict type (the type resumable checkpoints need), so the full state dict is gathered here."""
    plugin = getattr(trainer.accelerator.state, "fsdp_plugin", None)
    if trainer.is_fsdp_enabled and plugin is not None and "FULL_STATE_DICT" not in str(plugin.state_dict_type):
        state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
        seen: set[int] = set()
        for name, p in trainer.model.named_parameters(remove_duplicate=False):
            if id(p) in seen:  # a tied weight (lm_head = embeddings) is stored once, as save_pretrained does
                state.pop(name, None)
            seen.add(id(p))
        if trainer.args.process_index == 0:
            trainer._save(str(final), state_dict=state)
        return
    trainer.save_model(str(final))


def _add_probes(trainer: Any, plan: ProbePlan, spec: TrainSpec, out: Path, ckpt: str | None) -> None:
    """Register the probe callback; tokens per step count every data-parallel rank's batches (context-parallel
    ranks share one sequence)."""
    from longkit.train.probe import ProbeCallback

    data_ranks = max(1, trainer.args.world_size // spec.context_parallel_size)
    tokens_per_step = plan.seq_len * spec.per_device_batch_size * spec.grad_accum * data_ranks
    resume_step = int(Path(ckpt).name.split("-")[-1]) if ckpt else 0
    trainer.add_callback(ProbeCallback(trainer, plan, out, tokens_per_step, resume_step))


def fit(
    model: Any,
    tok: Any,
    dataset: Any,
    collator: Any,
    spec: TrainSpec,
    out: Path,
    resume: bool,
    streaming: bool,
    summary_extra: dict[str, Any] | None = None,
    probe: ProbePlan | None = None,
) -> dict[str, Any]:
    """Train with LongkitTrainer (resuming from the last complete checkpoint), save final/, write summary.json;
    with a probe plan, long-context probes run during training (longkit.train.probe)."""
    from longkit.train.loss import enable_chunked_loss
    from longkit.train.trainer import LongkitTrainer, last_checkpoint, load_data_state

    out.mkdir(parents=True, exist_ok=True)
    args = training_arguments(spec, out, streaming)
    enable_chunked_loss(model, spec.loss_chunk_size)
    ckpt = last_checkpoint(out) if resume else None
    if ckpt and streaming:
        state = load_data_state(ckpt)
        if state is None:
            raise LongkitError(
                f"{ckpt}: checkpoint has no data position; cannot resume the stream exactly (start a new output dir)"
            )
        dataset.load_state_dict(state)
    trainer = LongkitTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=collator, processing_class=tok
    )
    if probe is not None:
        _add_probes(trainer, probe, spec, out, ckpt)
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=ckpt)
    wall = time.time() - t0
    final = out / "final"
    save_final(trainer, final)
    if args.process_index == 0:
        tok.save_pretrained(final)
    trainer.accelerator.wait_for_everyone()  # the next stage loads final/ on every rank
    losses = trainer.step_losses
    summary = {
        "output": str(final),
        "resumed_from": ckpt,
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "step_losses": losses,
        "wall_s": round(wall, 2),
        "log_history": trainer.state.log_history,
        "launch": {
            "processes": args.world_size,
            "distributed": str(trainer.accelerator.distributed_type).split(".")[-1],
            "fsdp": bool(trainer.is_fsdp_enabled),
            "dataloader_num_workers": spec.dataloader_num_workers,
        },
        **(summary_extra or {}),
    }
    if args.process_index == 0:
        write_json(out / "summary.json", summary)
    return summary
