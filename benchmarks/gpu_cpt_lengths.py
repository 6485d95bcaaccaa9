"""longkit's CPT step on one GPU at 8K-128K for randomly initialised models of real shapes: tokens/s, MFU against
the chip's bf16 peak, peak memory, the longest length that fits, and `longkit train plan`'s prediction beside each.

    python benchmarks/gpu_cpt_lengths.py                    # one H200/H100: Llama-3.2-1B and Llama-3.1-8B shapes
    python benchmarks/gpu_cpt_lengths.py --smoke            # a tiny shape on CPU, to check the script itself

Written for a GPU machine with torch and transformers but no network, no model weights and no longkit
dependencies beyond those: it imports only `longkit.train.loss` (the chunked loss) and `longkit.train.plan_memory`
(the plan's memory and FLOP model), which need nothing but torch and the standard library. Run it from the
repository root with PYTHONPATH=src.

The step is the one `longkit train cpt` runs (transformers' Trainer under `precision: bf16`): float32 master
weights, bf16 autocast, gradient checkpointing on every decoder layer, longkit's chunked cross-entropy
(loss_chunk_size 8192), SDPA attention, then a fused AdamW step. Llama-3.1-8B's float32 weights, gradients and
AdamW moments (16 bytes x 8B = 128 GB) do not fit one GPU beside any activations; an 8-GPU FSDP run holds an eighth
of them. For the 8B shape the script therefore runs forward and backward with bf16 weights and no optimizer, and
compares its peak with the plan's bf16 weights and gradients plus its activation and logit prediction for a GPU
computing with bf16 weights. Each figure says which it is (`mode`).

Each setting builds its model afresh, and the previous one is garbage-collected first (the chunked loss makes a
reference cycle): without that, a leaked model's weights counted in the next setting's peak (runs 1 and 2 in
benchmarks/results/gpu_cpt_lengths-h200-run*.json; docs/training.md derives their clean figures).

Writes benchmarks/results/gpu_cpt_lengths-<device>.json. The whole run keeps to --budget-s (default 420 s):
a length whose estimated time would pass the budget is recorded as skipped, not run.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

# Published shapes (the models' config.json on the Hub): Llama-3.2-1B and Llama-3.1-8B.
SHAPES: dict[str, dict[str, Any]] = {
    "llama-3.2-1b": dict(
        num_hidden_layers=16,
        hidden_size=2048,
        num_attention_heads=32,
        num_key_value_heads=8,
        intermediate_size=8192,
        vocab_size=128256,
        tie_word_embeddings=True,
        rope_theta=500000.0,
    ),
    "llama-3.1-8b": dict(
        num_hidden_layers=32,
        hidden_size=4096,
        num_attention_heads=32,
        num_key_value_heads=8,
        intermediate_size=14336,
        vocab_size=128256,
        tie_word_embeddings=False,
        rope_theta=500000.0,
    ),
    # --smoke: small enough for a CPU in seconds, same code paths (tiny-bf16 takes the 8B shape's path)
    "tiny": dict(
        num_hidden_layers=2,
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=512,
        tie_word_embeddings=False,
        rope_theta=10000.0,
    ),
}
SHAPES["tiny-bf16"] = SHAPES["tiny"]
# shapes whose float32 weights, gradients and AdamW moments do not fit one GPU: forward+backward in bf16 only
FORWARD_BACKWARD_ONLY = ("llama-3.1-8b", "tiny-bf16")
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0}
LENGTHS = (8192, 32768, 65536, 131072)
FIT_SEARCH = (196608, 262144, 393216, 524288)
LOSS_CHUNK = 8192


def build_model(shape: dict[str, Any], seq: int, device: str, dtype: torch.dtype) -> Any:
    """A randomly initialised Llama of `shape` whose window covers `seq`, built directly on the device."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from longkit.train.loss import enable_chunked_loss

    cfg = LlamaConfig(**shape, max_position_embeddings=seq, attn_implementation="sdpa", use_cache=False)
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(dtype)
    # transformers 5 renamed gradient checkpointing (the GPU machine's version may be older or newer)
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return enable_chunked_loss(model, LOSS_CHUNK)


def one_step(model: Any, seq: int, device: str, optimizer: Any | None, autocast: bool) -> None:
    """Forward, backward and (with an optimizer) the AdamW step, on one packed sequence of random tokens."""
    ids = torch.randint(0, model.config.vocab_size, (1, seq), device=device)
    pos = torch.arange(seq, device=device)[None]
    with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=autocast):
        loss = model(input_ids=ids, position_ids=pos, labels=ids).loss
    loss.backward()
    if optimizer is not None:
        optimizer.step()
    for p in model.parameters():  # set_to_none at the end of the step, as the Trainer's zero_grad does
        p.grad = None


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def measure(name: str, seq: int, device: str, full_step: bool, steps: int) -> dict[str, Any]:
    """Peak memory and step time of `steps` steps (the first is warm-up when there are two or more)."""
    shape = SHAPES[name]
    dtype = torch.float32 if full_step else torch.bfloat16
    before = torch.cuda.memory_allocated() if device.startswith("cuda") else 0  # 0 unless a previous model leaked
    model = build_model(shape, seq, device, dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.startswith("cuda")) if full_step else None
    n_params = sum(p.numel() for p in model.parameters())
    times, peaks = [], []
    for _ in range(steps):
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()  # each step's own peak: AdamW's moments exist from step 2 on
        _sync(device)
        t = time.perf_counter()
        one_step(model, seq, device, opt, autocast=True)
        _sync(device)
        times.append(time.perf_counter() - t)
        peaks.append(_peak_gib(device))
    step_s = min(times[1:]) if len(times) > 1 else times[0]
    peak = None if peaks[-1] is None else max(x for x in peaks if x is not None)
    row: dict[str, Any] = {
        "model": name,
        "seq_len": seq,
        "mode": "full step (fp32 master, bf16 autocast, AdamW)" if full_step else "forward+backward, bf16 weights",
        "params": n_params,
        "step_s": round(step_s, 3),
        "tokens_per_s": round(seq / step_s, 1),
        "peak_gib": None if peak is None else round(peak, 2),
        "peak_gib_per_step": [None if x is None else round(x, 2) for x in peaks],
    }
    # the chunked loss binds a forward to the model (a reference cycle): collect it, or the next setting's peak
    # would count this model's memory too
    del model, opt
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        row["resident_before_gib"] = round(before / 2**30, 2)
    return row


def _shape(name: str) -> Any:
    from longkit.train.plan_memory import ModelShape

    return ModelShape.from_config({"model_type": "llama", **SHAPES[name]}, where=name)


def add_mfu(row: dict[str, Any], name: str, peak_tflops: float | None) -> None:
    """MFU of the measured throughput, with the plan's FLOP count per token (6N + attention, full s x s)."""
    from longkit.train.plan_memory import step_flops_per_token

    flops = step_flops_per_token(_shape(name), row["seq_len"])
    row["mfu"] = None if peak_tflops is None else round(row["tokens_per_s"] * flops / (peak_tflops * 1e12), 4)


def add_prediction(row: dict[str, Any], name: str, full_step: bool) -> None:
    """The plan's per-GPU memory for the same setting, beside the measured peak.

    Full step: one GPU, bf16 autocast over float32 masters (the plan's 'autocast' mode), without the plan's fixed
    allowance for the CUDA context, which max_memory_allocated does not see either. Forward+backward with bf16
    weights: the bf16 weights and gradients this GPU holds plus the activations and logit chunk the plan gives a
    GPU computing with bf16 weights (its FSDP mode, whose activations do not depend on the GPU count)."""
    from longkit.train.plan_memory import GIB, MemorySetting, memory_breakdown

    setting = MemorySetting(
        seq_len=row["seq_len"],
        precision="bf16",
        gradient_checkpointing=True,
        loss_chunk_size=LOSS_CHUNK,
        sharding="ddp" if full_step else "fsdp",
        gpus=1 if full_step else 8,
        device="cuda",
    )
    terms = memory_breakdown(_shape(name), setting)
    transient = terms["activations"] + terms["logits_chunked"]
    bf16_state = 2 * 2 * row["params"]  # bf16 weights and gradients
    predicted = terms["total"] - terms["allowance"] if full_step else bf16_state + transient
    row["predicted_gib"] = round(predicted / GIB, 2)
    row["predicted_activation_gib"] = round(transient / GIB, 2)
    measured = row["peak_gib"]
    row["difference_pct"] = None if not measured else round(100 * (predicted / GIB - measured) / measured, 1)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _estimate(done: list[dict[str, Any]], name: str, seq: int) -> float:
    """Seconds one step at `seq` should take, from the shape's last measured step (attention makes it grow faster
    than seq); 0 when nothing of the shape ran yet."""
    last = next((r for r in reversed(done) if r.get("model") == name and r.get("step_s")), None)
    if last is None:
        return 0.0
    return float(last["step_s"]) * (seq / last["seq_len"]) ** 1.6


def run_one(name: str, seq: int, search: bool, ctx: dict[str, Any]) -> dict[str, Any]:
    """One setting, inside the time budget: measured, out of memory, or skipped; written out at once."""
    one = _estimate(ctx["rows"], name, seq)
    # a slow step is timed once: the first step's extra cost (kernel selection, allocator warm-up) is small beside it
    steps = 1 if search or one > ctx["single_step_above_s"] else ctx["steps"]
    full_step = name not in FORWARD_BACKWARD_ONLY
    if full_step:  # the optimizer's moments are created by the first step: only the second step holds them
        steps = max(steps, 2)
    if time.perf_counter() - ctx["t0"] + one * steps + ctx["build_s"] > ctx["budget_s"]:
        row: dict[str, Any] = {"model": name, "seq_len": seq, "status": "skipped (time budget)"}
    else:
        try:
            row = {**measure(name, seq, ctx["device"], full_step, steps), "status": "ok", "timed_steps": steps}
            add_mfu(row, name, ctx["peak_tflops"])
            add_prediction(row, name, full_step)
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            if not _is_oom(exc):
                raise
            if ctx["device"].startswith("cuda"):
                torch.cuda.empty_cache()
            row = {"model": name, "seq_len": seq, "status": "out of memory"}
    row["search"] = search
    ctx["rows"].append(row)
    ctx["write"]()
    print(json.dumps(row), flush=True)
    return row


def run_all(
    models: list[str], lengths: list[int], search_models: list[str], search: list[int], ctx: dict[str, Any]
) -> None:
    """Every shape's grid first, then the longest-fit search of the chosen shapes with the time left (stopping a
    shape at its first out-of-memory)."""
    for name in models:
        for seq in lengths:
            run_one(name, seq, False, ctx)
    for name in search_models:
        for seq in search:
            if run_one(name, seq, True, ctx)["status"] == "out of memory":
                break
    for name in models:
        fits = [r["seq_len"] for r in ctx["rows"] if r["model"] == name and r["status"] == "ok"]
        ctx["rows"].append({"model": name, "longest_fitting_seq_len": max(fits) if fits else None})


def device_peak(device: str) -> tuple[str, float | None]:
    """The device's name and its dense bf16 peak (TFLOPs), when known."""
    if not device.startswith("cuda"):
        return platform.processor() or "cpu", None
    name = torch.cuda.get_device_name()
    return name, next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse flags, run the shapes, write the JSON (after every row, so a run cut short keeps what it measured)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="llama-3.2-1b,llama-3.1-8b")
    ap.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    ap.add_argument("--search-models", default="llama-3.2-1b", help="shapes whose longest fitting length is sought")
    ap.add_argument("--fit-search", default=",".join(map(str, FIT_SEARCH)))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=420.0)
    ap.add_argument("--single-step-above-s", type=float, default=20.0, help="time one step when a step takes longer")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, short lengths, CPU allowed")
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="auto: CUDA when present")
    a = ap.parse_args(argv)
    device = a.device if a.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but no CUDA GPU is available")
    if a.smoke:
        a.models, a.lengths, a.search_models, a.fit_search = "tiny,tiny-bf16", "64,128", "tiny,tiny-bf16", "256"
    elif device == "cpu":
        raise SystemExit("error: benchmarks/gpu_cpt_lengths.py needs a CUDA GPU (use --smoke to check it on CPU)")
    name, peak = device_peak(device)
    out = Path(a.out) / f"gpu_cpt_lengths-{'smoke' if a.smoke else name.replace(' ', '_')}.json"
    result: dict[str, Any] = {"device": name, "peak_bf16_tflops": peak, "torch": torch.__version__, "rows": []}
    ctx: dict[str, Any] = {
        "device": device,
        "steps": a.steps,
        "budget_s": a.budget_s,
        "t0": time.perf_counter(),
        "peak_tflops": peak,
        "rows": result["rows"],
        "single_step_above_s": a.single_step_above_s,
        "build_s": 0.0 if a.smoke else 20.0,  # building and initialising a model of the shape on the GPU
    }

    def write() -> None:
        result["wall_s"] = round(time.perf_counter() - ctx["t0"], 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))

    ctx["write"] = write
    models = a.models.split(",")
    search_models = [m for m in a.search_models.split(",") if m in models]
    run_all(
        models, [int(x) for x in a.lengths.split(",")], search_models, [int(x) for x in a.fit_search.split(",")], ctx
    )
    write()
    return result


if __name__ == "__main__":
    main()
