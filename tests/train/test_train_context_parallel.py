"""Context parallelism numerics (GPU-only): one sequence split across 2 GPUs trains like the unsplit sequence.

torch's `context_parallel` (used through accelerate's ParallelismConfig, FSDP2) has no sharding strategy for
the CPU SDPA kernel in torch 2.13, so this test needs 2 CUDA devices; without them it is skipped, never failed.
One command on a GPU machine:

    pytest -q -s tests/train/test_train_context_parallel.py

It runs the real `longkit train cpt` twice on a tiny Llama with fp32 SDPA: once on 1 GPU, once under
`accelerate launch` with FSDP2 + context_parallel_size 2 (each rank holds half of every sequence, load-balanced),
on the same data, and compares per-step losses and final weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from longkit.testing import build_tiny_llama
from longkit.testing import prose as _prose

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.device_count() < 2,
    reason="context parallelism is GPU-only: torch's context_parallel has no CPU SDPA sharding (torch 2.13); "
    "needs 2 CUDA devices",
)

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SEQ = 256

ACCELERATE_CP = {
    "compute_environment": "LOCAL_MACHINE",
    "distributed_type": "FSDP",
    "num_machines": 1,
    "num_processes": 2,
    "machine_rank": 0,
    "mixed_precision": "no",
    "use_cpu": False,
    "fsdp_config": {
        "fsdp_version": 2,
        "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "fsdp_transformer_layer_cls_to_wrap": "LlamaDecoderLayer",
        "fsdp_reshard_after_forward": True,
        "fsdp_state_dict_type": "FULL_STATE_DICT",
        "fsdp_cpu_ram_efficient_loading": False,
    },
    "parallelism_config": {"parallelism_config_dp_shard_size": 1, "parallelism_config_cp_size": 2},
}


def _cfg(tmp: Path, name: str, model: Path, corpus: Path, cp: int) -> Path:
    train = {
        "learning_rate": 1e-3,
        "warmup_steps": 0,
        "max_steps": 3,
        "per_device_batch_size": 1,
        "logging_steps": 1,
        "save_steps": 0,
        "report_to": "none",
        "precision": "fp32",
        "attn_implementation": "sdpa",
        "context_parallel_size": cp,
        "loss_chunk_size": 128,
    }
    data = {"out": str(corpus / "data"), "seq_len": SEQ, "transform": "plain", "separator": "eos", "seed": 0}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"model": str(model), "out": str(tmp / name), "data": data, "train": train}))
    return path


def test_context_parallel_matches_unsplit_sequence(trained_tokenizer, tmp_path):
    from longkit.data.sources import SourceSpec
    from longkit.data.tokenize import tokenize_corpus

    model = build_tiny_llama(trained_tokenizer, tmp_path / "m", max_positions=512)
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": p}) + "\n" for p in _prose().split("\n\n") if len(p) > 200))
    tokenize_corpus([SourceSpec(path=str(docs))], trained_tokenizer, tmp_path / "data" / "corpus")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "0,1")}
    one = subprocess.run(
        [str(BIN / "longkit"), "train", "cpt", str(_cfg(tmp_path, "one", model, tmp_path, 1))],
        cwd=ROOT,
        env={**env, "CUDA_VISIBLE_DEVICES": env["CUDA_VISIBLE_DEVICES"].split(",")[0]},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    acc = tmp_path / "cp.yaml"
    acc.write_text(yaml.safe_dump(ACCELERATE_CP))
    cp = subprocess.run(
        [
            str(BIN / "accelerate"),
            "launch",
            "--config_file",
            str(acc),
            "-m",
            "longkit",
            "train",
            "cpt",
            str(_cfg(tmp_path, "cp", model, tmp_path, 2)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cp.returncode == 0, cp.stderr[-3000:]
    a = json.loads((tmp_path / "one" / "summary.json").read_text())
    b = json.loads((tmp_path / "cp" / "summary.json").read_text())
    assert b["launch"]["processes"] == 2 and b["launch"]["fsdp"]
    rel = np.abs(np.asarray(b["step_losses"]) - np.asarray(a["step_losses"])) / np.asarray(a["step_losses"])
    print(f"context parallel (2 GPUs) vs unsplit: {b['step_losses']} vs {a['step_losses']}, max rel {rel.max():.2e}")
    assert len(rel) == 3 and rel.max() <= 1e-4  # same data, fp32; only the attention's reduction order differs
    from safetensors.torch import load_file

    w1 = load_file(tmp_path / "one" / "final" / "model.safetensors")
    w2 = load_file(tmp_path / "cp" / "final" / "model.safetensors")
    diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    print(f"context parallel final weights max abs diff {diff:.2e}")
    assert diff <= 1e-4
