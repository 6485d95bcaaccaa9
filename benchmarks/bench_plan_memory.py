"""Check `longkit train plan`'s memory model against real training steps on this machine's CPU.

Each setting (model x sequence length x gradient checkpointing) runs in a fresh subprocess: load the model in
float32 as longkit trains on CPU (SDPA attention, use_cache off, longkit's chunked loss), then two steps of
forward + backward + AdamW (fused, as the Trainer's default optimizer on torch >= 2.8). Memory is measured from
the kernel's high-water mark: after loading, the process resets its peak RSS (`5` written to
/proc/self/clear_refs) and reads VmRSS as the baseline; after the steps VmHWM is the peak. The measured figure is
the rise of the peak over the baseline, which holds everything the plan counts except the weights themselves
(already loaded): gradients, AdamW moments, activations and one chunk of logits. The prediction is the plan's
memory breakdown for the same setting (1 process, fp32, device cpu) minus its parameter term.

    .venv/bin/python benchmarks/bench_plan_memory.py [--quick]
writes benchmarks/results/plan_memory_cpu.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "plan_memory_cpu.json"
STEPS = 2  # the second step is the steady state: AdamW moments exist through its forward and backward
LOSS_CHUNK = 1024
SETTINGS = {  # model -> sequence lengths (kept so that the whole run stays under ~10 minutes on 2 cores)
    "tiny": [512, 1024, 2048, 4096],
    "smollm2-135m-instruct": [256, 512, 1024],  # a 1K step takes a minute or more on 2 busy cores
}


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def measure(model_name: str, seq_len: int, checkpointing: bool) -> dict[str, Any]:
    """One setting in this process: returns the peak RSS rise over the loaded model, in bytes."""
    import gc

    import torch

    from longkit.models.load import load_model
    from longkit.train.loss import enable_chunked_loss

    torch.manual_seed(0)
    model, _ = load_model(model_name, dtype="float32", attn_implementation="sdpa")
    model.config.use_cache = False
    for p in model.parameters():  # weights still backed by the mmapped safetensors file would count as they are touched
        p.data = p.data.clone()
    enable_chunked_loss(model, LOSS_CHUNK)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    ids = torch.randint(0, model.config.vocab_size, (1, seq_len))
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _status_kib("VmRSS")
    times = []
    for _ in range(STEPS):
        t0 = time.time()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.time() - t0)
    peak = _status_kib("VmHWM")
    return {
        "baseline_rss_bytes": base * 1024,
        "peak_rss_bytes": peak * 1024,
        "measured_bytes": (peak - base) * 1024,
        "step_s": [round(t, 2) for t in times],
        "loss": float(loss.detach()),
    }


def predict(config: dict[str, Any], seq_len: int, checkpointing: bool) -> dict[str, int]:
    """The plan's breakdown for this setting on one CPU process in fp32."""
    from longkit.train.plan_memory import MemorySetting, ModelShape, memory_breakdown

    shape = ModelShape.from_config(config)
    s = MemorySetting(
        seq_len=seq_len,
        precision="fp32",
        gradient_checkpointing=checkpointing,
        loss_chunk_size=LOSS_CHUNK,
        sharding="ddp",
        gpus=1,
        device="cpu",
    )
    return memory_breakdown(shape, s)


def _model_config(name: str) -> dict[str, Any]:
    from longkit.train.plan import read_model_config

    return read_model_config(name)[0]


def _tiny_model(tmp: Path) -> str:
    from longkit.models.load import load_tokenizer
    from longkit.testing import build_tiny_llama

    return str(build_tiny_llama(load_tokenizer("smollm2-135m-instruct"), tmp / "tiny", max_positions=8192))


def run_all(quick: bool) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        names = {"tiny": _tiny_model(Path(tmp)), "smollm2-135m-instruct": "smollm2-135m-instruct"}
        for label, lengths in SETTINGS.items():
            cfg = _model_config(names[label])
            for n in lengths[:2] if quick else lengths:
                for ckpt in (False, True):
                    rows.append(_one(label, names[label], cfg, n, ckpt))
    return rows


def _one(label: str, name: str, cfg: dict[str, Any], n: int, ckpt: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", name, str(n), str(int(ckpt))]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode:
        raise SystemExit(f"{label} {n} ckpt={ckpt} failed:\n{res.stderr[-2000:]}")
    got = json.loads(res.stdout.strip().splitlines()[-1])
    terms = predict(cfg, n, ckpt)
    pred = terms["total"] - terms["parameters"]
    row = {
        "model": label,
        "seq_len": n,
        "gradient_checkpointing": ckpt,
        "loss_chunk_size": LOSS_CHUNK,
        "predicted_bytes": pred,
        "predicted_terms": terms,
        **got,
        "difference_pct": round(100.0 * (pred - got["measured_bytes"]) / got["measured_bytes"], 1),
    }
    print(
        f"{label:>22} {n:>5} ckpt={int(ckpt)} predicted {pred / 2**20:8.1f} MiB measured "
        f"{got['measured_bytes'] / 2**20:8.1f} MiB ({row['difference_pct']:+.1f}%)",
        flush=True,
    )
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | seq_len | checkpointing | predicted (MiB) | measured (MiB) | difference |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['seq_len']} | {'yes' if r['gradient_checkpointing'] else 'no'} | "
            f"{r['predicted_bytes'] / 2**20:.1f} | {r['measured_bytes'] / 2**20:.1f} | "
            f"{r['difference_pct']:+.1f}% |"
        )
    return "\n".join(lines)


# Published per-GPU memory beside the plan's prediction for the same setting (nothing measured here).
LLAMA31_8B = {  # meta-llama/Llama-3.1-8B config.json (rope scaling left out: it does not change memory)
    "model_type": "llama",
    "num_hidden_layers": 32,
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "rope_theta": 500000.0,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
}
QWEN25_7B = {  # Qwen/Qwen2.5-7B config.json
    "model_type": "qwen2",
    "num_hidden_layers": 28,
    "hidden_size": 3584,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "intermediate_size": 18944,
    "vocab_size": 152064,
    "rope_theta": 1000000.0,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
}
TORCHTITAN = (
    "pytorch/torchtitan docs/performance.md, Table 2 (FSDP + CP + torch.compile + Float8, Llama 3.1 8B, 8 x H100 "
    "96 GB, local batch 1, full activation checkpointing); https://github.com/pytorch/torchtitan/blob/main/docs/"
    "performance.md"
)
LF360 = (
    "Qihoo360/360-LLaMA-Factory README.md, 'SFT Max Length' (full-parameter SFT, zero3-offload + gradient "
    "checkpointing, zigzag ring SP); https://github.com/Qihoo360/360-LLaMA-Factory"
)
PUBLISHED = [  # (label, config, seq_len, cp, sharding, published GiB per GPU or None, device GiB, source, caveat)
    *[
        (
            "Llama-3.1-8B torchtitan",
            LLAMA31_8B,
            n,
            cp,
            "fsdp",
            gib,
            96,
            TORCHTITAN,
            "Float8 linears + torch.compile; full (unchunked) logits; memory = max reserved",
        )
        for n, cp, gib in ((32768, 1, 83.9), (65536, 2, 84.2), (131072, 4, 84.0), (262144, 8, 84.5))
    ],
    (
        "Qwen2.5-7B 360-LLaMA-Factory",
        QWEN25_7B,
        210 * 1024,
        8,
        "zero3",
        None,
        80,
        LF360,
        "the largest length that fit 80 GB with parameters and optimizer offloaded to CPU; 210k read as 210 x 1024",
    ),
]


def published() -> list[dict[str, Any]]:
    """The plan's per-GPU peak for each published setting (8 GPUs, bf16, checkpointing, unchunked logits as the
    published runs compute them; the chunked figure beside it)."""
    from longkit.train.plan_memory import GIB, MemorySetting, ModelShape, memory_breakdown

    rows = []
    for label, cfg, n, cp, sharding, gib, device, source, caveat in PUBLISHED:
        shape = ModelShape.from_config(cfg)
        s = MemorySetting(
            seq_len=n,
            precision="bf16",
            gradient_checkpointing=True,
            loss_chunk_size=n,
            sharding=sharding,
            gpus=8,
            cp=cp,
        )
        t = memory_breakdown(shape, s)
        chunked = memory_breakdown(shape, MemorySetting(**{**s.__dict__, "loss_chunk_size": 8192}))
        rows.append(
            {
                "setting": label,
                "seq_len": n,
                "gpus": 8,
                "cp": cp,
                "sharding": sharding,
                "device_memory_gib": device,
                "published_gib": gib,
                "predicted_gib": round(t["total"] / GIB, 1),
                "predicted_chunked_loss_gib": round(chunked["total"] / GIB, 1),
                "predicted_terms_gib": {k: round(v / GIB, 2) for k, v in t.items()},
                "source": source,
                "caveat": caveat,
            }
        )
        print(
            f"{label:>30} {n:>7} cp={cp} published {gib} GiB predicted {rows[-1]['predicted_gib']} GiB "
            f"(chunked loss {rows[-1]['predicted_chunked_loss_gib']})"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two lengths per model")
    ap.add_argument("--published", action="store_true", help="write the published-GPU comparison only")
    ap.add_argument("--one", nargs=3, metavar=("MODEL", "SEQ_LEN", "CKPT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        name, n, ckpt = args.one
        print(json.dumps(measure(name, int(n), bool(int(ckpt)))))
        return
    if args.published:
        rows_p = published()
        (OUT.parent / "plan_memory_gpu.json").write_text(
            json.dumps(
                {
                    "what": "published per-GPU training memory beside `longkit train plan`'s prediction for the "
                    "same setting",
                    "rows": rows_p,
                },
                indent=2,
            )
            + "\n"
        )
        return
    import torch

    t0 = time.time()
    rows = run_all(args.quick)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "what": "peak RSS rise over the loaded model during 2 training steps (fp32, CPU) vs the "
                "plan's prediction "
                "(total minus parameters, 1 process, device cpu)",
                "measurement": "VmHWM after the steps minus VmRSS after loading, the high-water mark reset "
                "through "
                "/proc/self/clear_refs; each setting in a fresh process",
                "optimizer": "torch.optim.AdamW(fused=True)",
                "steps": STEPS,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "wall_s": round(time.time() - t0, 1),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
