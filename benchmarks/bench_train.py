"""Continued-pretraining throughput for SmolLM2-135M: tokens/s, MFU and peak memory per sequence length,
attention kernel (SDPA vs FlashAttention-2) and gradient checkpointing, through longkit's Trainer path
(chunked CE, packed position ids). Writes benchmarks/results/bench_train-<device>.json.

    python benchmarks/bench_train.py                      # CUDA: 8K, 16K, 32K and the longest length that fits
    python benchmarks/bench_train.py --lengths 512 --steps 3   # CPU sanity run (MFU not reported on CPU)
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step (CUDA-synchronised)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t = 0.0

    def on_step_begin(self, *a: Any, **k: Any) -> None:
        """Start the step clock."""
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._t = time.perf_counter()

    def on_step_end(self, *a: Any, **k: Any) -> None:
        """Stop the step clock."""
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._t)


def flops_per_token(cfg: Any, n_params: int, seq: int) -> float:
    """Training FLOPs per token: 6N for the weights plus causal attention scores (6 * layers * hidden * seq)."""
    return 6.0 * n_params + 6.0 * cfg.num_hidden_layers * cfg.hidden_size * seq


def peak_tflops() -> float | None:
    """Dense bf16 peak of the current GPU, when known."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def run_one(model_name: str, seq: int, attn: str, ckpt: bool, steps: int, out_dir: Path) -> dict[str, Any]:
    """Train `steps` steps at one setting and measure the steps after the first (warm-up)."""
    from longkit.train.collate import PackedCollator
    from longkit.train.config import TrainSpec
    from longkit.train.loss import enable_chunked_loss
    from longkit.train.run import load_trainable, training_arguments
    from longkit.train.sft import PackedRows
    from longkit.train.trainer import LongkitTrainer

    spec = TrainSpec(
        max_steps=steps,
        per_device_batch_size=1,
        learning_rate=1e-5,
        report_to="none",
        save_steps=10**9,
        logging_steps=10**9,
        gradient_checkpointing=ckpt,
        attn_implementation=attn,
        loss_chunk_size=8192,
        precision="auto",
    )
    model, tok = load_trainable(model_name, spec)
    if getattr(model.config, "max_position_embeddings", seq) < seq:
        from longkit.models.rope import apply_extension, plan_extension

        apply_extension(
            model.config,
            plan_extension(
                model.config,
                "abf",
                seq,
                base=max(float(model.config.rope_parameters["rope_theta"]), 1e6),
                check_min_base=False,
            ),
        )
        model.model.rotary_emb = type(model.model.rotary_emb)(config=model.config)  # new base -> new frequencies
    rng = np.random.default_rng(0)
    rows = [
        {
            "input_ids": rng.integers(0, len(tok), seq).astype(np.int32),
            "labels": rng.integers(0, len(tok), seq).astype(np.int32),
            "position_ids": np.arange(seq, dtype=np.int32),
        }
        for _ in range(steps)
    ]
    args = training_arguments(spec, out_dir / f"tmp-{seq}-{attn}-{ckpt}", streaming=False)
    enable_chunked_loss(model, spec.loss_chunk_size)
    timer = StepTimer()
    trainer = LongkitTrainer(
        model=model, args=args, train_dataset=PackedRows(rows), data_collator=PackedCollator(), callbacks=[timer]
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    t = float(np.mean(timer.times[1:] if len(timer.times) > 1 else timer.times))
    n_params = sum(p.numel() for p in model.parameters())
    tps = seq / t
    peak = peak_tflops()
    res = {
        "seq_len": seq,
        "attn": attn,
        "gradient_checkpointing": ckpt,
        "step_s": round(t, 4),
        "tokens_per_s": round(tps, 1),
        "mfu": round(tps * flops_per_token(model.config, n_params, seq) / (peak * 1e12), 4) if peak else None,
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
    }
    del trainer, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return res


def main() -> None:
    """Parse flags, run the grid, write JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument(
        "--lengths", default=None, help="comma list; default 8192,16384,32768 then doubling until OOM on CUDA"
    )
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    cuda = torch.cuda.is_available()
    import importlib.util

    attns = ["sdpa"] + (["flash_attention_2"] if cuda and importlib.util.find_spec("flash_attn") else [])
    lengths = [int(x) for x in a.lengths.split(",")] if a.lengths else [8192, 16384, 32768]
    out = Path(a.out)
    results, notes = [], []
    for attn in attns:
        for ckpt in (False, True):
            for seq in lengths:
                try:
                    results.append(run_one(a.model, seq, attn, ckpt, a.steps, out))
                    print(json.dumps(results[-1]), flush=True)
                except torch.cuda.OutOfMemoryError:
                    notes.append(f"OOM at {seq} ({attn}, checkpointing={ckpt})")
                    torch.cuda.empty_cache()
                    print(notes[-1], flush=True)
            if cuda and not a.lengths:  # longest length that fits: keep doubling past 32K
                seq = lengths[-1] * 2
                while True:
                    try:
                        r = run_one(a.model, seq, attn, ckpt, a.steps, out)
                    except torch.cuda.OutOfMemoryError:
                        notes.append(f"OOM at {seq} ({attn}, checkpointing={ckpt}); longest fitting {seq // 2}")
                        torch.cuda.empty_cache()
                        break
                    results.append(r)
                    print(json.dumps(r), flush=True)
                    seq *= 2
    device = torch.cuda.get_device_name() if cuda else f"cpu ({platform.processor() or platform.machine()})"
    tag = "cuda" if cuda else "cpu"
    out.mkdir(parents=True, exist_ok=True)
    from longkit.io import write_json

    write_json(
        out / f"bench_train-{tag}.json",
        {
            "device": device,
            "model": a.model,
            "steps": a.steps,
            "torch": torch.__version__,
            "results": results,
            "notes": notes,
        },
    )
    import shutil

    for p in out.glob("tmp-*"):
        shutil.rmtree(p, ignore_errors=True)


if __name__ == "__main__":
    main()
