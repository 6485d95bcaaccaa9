"""Training beyond one process on CPU (real `accelerate launch` subprocesses over gloo): DDP and FSDP2 equal
one process with gradient accumulation, `accelerate launch --cpu --num_processes 2` starts its ranks, exact
resume after SIGKILL with data-loader workers, and the one-line refusals of launches that cannot work.
Tiny random Llama, a few steps; two processes at most."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from longkit.testing import build_tiny_llama
from longkit.testing import prose as _prose

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SEQ = 64


@pytest.fixture(scope="module")
def tiny(trained_tokenizer, tmp_path_factory):
    return build_tiny_llama(trained_tokenizer, tmp_path_factory.mktemp("dist-llama"), max_positions=256)


@pytest.fixture(scope="module")
def corpus(trained_tokenizer, tmp_path_factory):
    from longkit.data.sources import SourceSpec
    from longkit.data.tokenize import tokenize_corpus

    root = tmp_path_factory.mktemp("dist-data")
    paras = [p for p in _prose().split("\n\n") if len(p) > 200][:60]
    with open(root / "docs.jsonl", "w") as fh:
        for p in paras:
            fh.write(json.dumps({"text": p}) + "\n")
    tokenize_corpus([SourceSpec(path=str(root / "docs.jsonl"))], trained_tokenizer, root / "data" / "corpus")
    return root


def _cpt_yaml(tiny, corpus, out: Path, extend: bool = False, **train) -> Path:
    t = {
        "learning_rate": 3e-3,
        "warmup_steps": 1,
        "max_steps": 4,
        "per_device_batch_size": 1,
        "grad_accum": 1,
        "logging_steps": 1,
        "save_steps": 0,
        "report_to": "none",
        "loss_chunk_size": 32,
        **train,
    }
    data = {
        "out": str(corpus / "data"),
        "seq_len": SEQ,
        "transform": "utk",
        "separator": "eos",
        "seed": 0,
        "utk": {"probability": 1.0},
    }
    cfg = {"model": str(tiny), "out": str(out), "data": data, "train": t}
    if extend:  # ABF to the same window: every rank needs the extended copy that rank 0 alone writes
        cfg["extend"] = {"method": "abf", "base": 5e4, "max_length": 256}
    path = out.parent / f"{out.name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("LONGKIT_DEBUG", None)
    return env


def _run(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def _launch(config: str, *args: str) -> subprocess.CompletedProcess:
    return _run(
        [
            str(BIN / "accelerate"),
            "launch",
            "--config_file",
            str(ROOT / "configs" / "accelerate" / config),
            "--main_process_port",
            str(29500 + os.getpid() % 1000),
            "-m",
            "longkit",
            "train",
            *args,
        ]
    )


def _train(kind: str, config: Path) -> None:
    """A single-process run in this process (the reference side; no interpreter start-up to pay)."""
    if kind == "cpt":
        from longkit.train.cpt import cpt_from_file

        cpt_from_file(config)
    else:
        from longkit.train.sft import sft_from_file

        sft_from_file(config)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path / "final" / "model.safetensors")


def _files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}


def _max_rel(a: list[float], b: list[float]) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))))


def test_ddp_two_processes_equal_one_process_with_accumulation(tiny, corpus, tmp_path):
    """2 processes x batch 1 (DDP, gloo) == 1 process x grad_accum 2: same step losses, same final weights."""
    one = _cpt_yaml(tiny, corpus, tmp_path / "one", extend=True, grad_accum=2, save_steps=2)
    two = _cpt_yaml(tiny, corpus, tmp_path / "two", extend=True, grad_accum=1, save_steps=2)
    _train("cpt", one)
    p = _launch("cpu-ddp.yaml", "cpt", str(two))
    assert p.stdout.count('"steps": 4') == 1  # one summary per launch, from rank 0
    s1 = json.loads((tmp_path / "one" / "summary.json").read_text())
    s2 = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert len(s1["step_losses"]) == len(s2["step_losses"]) == 4
    rel = _max_rel(s2["step_losses"], s1["step_losses"])
    print(f"DDP 2x1 vs 1x(ga 2): step losses {s1['step_losses']} vs {s2['step_losses']}, max rel diff {rel:.2e}")
    assert rel <= 1e-5
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    wdiff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    print(f"DDP final weights max abs diff {wdiff:.2e}")
    assert wdiff <= 1e-5
    # Rank 0 alone writes: the output holds what one process writes, only the RNG state is per rank.
    f1, f2 = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert f2 - f1 == {
        "checkpoint-2/rng_state_0.pth",
        "checkpoint-2/rng_state_1.pth",
        "checkpoint-4/rng_state_0.pth",
        "checkpoint-4/rng_state_1.pth",
    }
    assert f1 - f2 == {"checkpoint-2/rng_state.pth", "checkpoint-4/rng_state.pth"}


def test_fsdp2_two_processes_equal_one_process_with_accumulation(tiny, corpus, tmp_path):
    """FSDP2 (torch fully_shard over gloo) 2 x batch 1 == 1 process x grad_accum 2; sharded checkpoints resume."""
    one = _cpt_yaml(tiny, corpus, tmp_path / "one", grad_accum=2, save_steps=2)
    two = _cpt_yaml(tiny, corpus, tmp_path / "two", grad_accum=1, save_steps=2)
    _train("cpt", one)
    _launch("cpu-fsdp.yaml", "cpt", str(two))
    s1 = json.loads((tmp_path / "one" / "summary.json").read_text())
    s2 = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert s2["launch"]["fsdp"] is True and s2["launch"]["distributed"] == "FSDP" and s2["launch"]["processes"] == 2
    rel = _max_rel(s2["step_losses"], s1["step_losses"])
    print(f"FSDP2 2x1 vs 1x(ga 2): step losses {s1['step_losses']} vs {s2['step_losses']}, max rel diff {rel:.2e}")
    assert len(s2["step_losses"]) == 4 and rel <= 1e-5
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert set(w1) == set(w2)
    wdiff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    print(f"FSDP2 final weights max abs diff {wdiff:.2e}")
    assert wdiff <= 1e-5
    # Resume from the sharded checkpoint-2 (as after a crash at step 3): steps 3-4 come out the same.
    shutil.copytree(tmp_path / "two", tmp_path / "resumed")
    for gone in ("checkpoint-4", "final"):
        shutil.rmtree(tmp_path / "resumed" / gone)
    (tmp_path / "resumed" / "summary.json").unlink()
    cfg = yaml.safe_load(two.read_text())
    cfg["out"] = str(tmp_path / "resumed")
    (tmp_path / "resumed.yaml").write_text(yaml.safe_dump(cfg))
    _launch("cpu-fsdp.yaml", "cpt", str(tmp_path / "resumed.yaml"))
    s3 = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    diff = float(np.max(np.abs(np.asarray(s3["step_losses"]) - np.asarray(s2["step_losses"][2:]))))
    print(f"FSDP2 resume from sharded checkpoint-2: max abs diff {diff:.1e}")
    assert s3["resumed_from"].endswith("checkpoint-2") and len(s3["step_losses"]) == 2 and diff <= 1e-6


@pytest.mark.parametrize("launch", ["cpu-ddp.yaml", "cpu-fsdp.yaml"])
def test_sft_two_processes_equal_one_process_with_accumulation(tiny, tmp_path, launch):
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Repeat: " + p.split()[0]},
                {"role": "assistant", "content": " ".join(p.split()[:3])},
            ]
        }
        for p in _prose().split("\n\n")
        if len(p) > 100
    ][:24]
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def cfg(name: str, ga: int) -> Path:
        c = {
            "model": str(tiny),
            "out": str(tmp_path / name),
            "seq_len": 128,
            "train": {
                "learning_rate": 3e-3,
                "max_steps": 2,
                "per_device_batch_size": 1,
                "grad_accum": ga,
                "logging_steps": 1,
                "save_steps": 0,
                "report_to": "none",
                "loss_chunk_size": 64,
            },
            "stages": [
                {"name": "s1", "blend": [{"path": str(data), "weight": 1.0}]},
                {"name": "s2", "blend": [{"path": str(data), "weight": 1.0}], "num_samples": 12},
            ],
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(c))
        return path

    _train("sft", cfg("one", 2))
    _launch(launch, "sft", str(cfg("two", 1)))
    for stage in ("s1", "s2"):
        a = json.loads((tmp_path / "one" / stage / "summary.json").read_text())["step_losses"]
        two = json.loads((tmp_path / "two" / stage / "summary.json").read_text())
        b = two["step_losses"]
        print(f"SFT {stage}: 1x(ga 2) {a} vs {launch} 2x1 {b}")
        assert two["launch"]["fsdp"] is (launch == "cpu-fsdp.yaml")
        assert len(a) == len(b) == 2 and _max_rel(b, a) <= 1e-5
    w1, w2 = _weights(tmp_path / "one" / "s1"), _weights(tmp_path / "two" / "s1")
    assert set(w1) == set(w2) and max(float((w1[k] - w2[k]).abs().max()) for k in w1) <= 1e-5
    # After the second stage: FSDP sums gradients in another order than accumulation does (rounding at 1e-7),
    # and Adam's normalisation magnifies that in entries whose gradient is near zero; DDP stays exact.
    w1, w2 = _weights(tmp_path / "one" / "s2"), _weights(tmp_path / "two" / "s2")
    rel = max(float((w1[k] - w2[k]).norm() / w1[k].norm()) for k in w1)
    print(f"SFT {launch}: final weights after s2, largest per-tensor relative difference {rel:.1e}")
    assert set(w1) == set(w2) and rel <= (1e-4 if launch == "cpu-fsdp.yaml" else 1e-6)


# ---------------------------------------------------------------------------------------------
# Exact resume after SIGKILL, with data-loader workers
# ---------------------------------------------------------------------------------------------

_KILLER = """
import os, signal, sys
from longkit.train import trainer as T
orig = T.LongkitTrainer.training_step
def step(self, *a, **k):
    if self.state.global_step >= {kill_at}:  # a checkpoint was written at an earlier step; die mid-run
        os.kill(os.getpid(), signal.SIGKILL)
    return orig(self, *a, **k)
T.LongkitTrainer.training_step = step
from longkit.cli import main
sys.argv = ["longkit", "train", {kind!r}, {config!r}]
main()
"""


def _killed_run(kind: str, config: Path, kill_at: int) -> None:
    code = _KILLER.format(kill_at=kill_at, kind=kind, config=str(config))
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]


def test_cpt_resume_after_sigkill_with_two_workers_is_exact(tiny, corpus, tmp_path):
    full = _cpt_yaml(
        tiny, corpus, tmp_path / "full", max_steps=6, save_steps=2, per_device_batch_size=2, dataloader_num_workers=2
    )
    crash = _cpt_yaml(
        tiny, corpus, tmp_path / "crash", max_steps=6, save_steps=2, per_device_batch_size=2, dataloader_num_workers=2
    )
    _train("cpt", full)
    _killed_run("cpt", crash, kill_at=3)  # checkpoint-2 saved, step 3 lost
    assert (tmp_path / "crash" / "checkpoint-2").is_dir() and not (tmp_path / "crash" / "final").exists()
    _train("cpt", crash)  # resumes from checkpoint-2
    a = json.loads((tmp_path / "full" / "summary.json").read_text())
    b = json.loads((tmp_path / "crash" / "summary.json").read_text())
    assert b["resumed_from"].endswith("checkpoint-2") and len(b["step_losses"]) == 4
    diff = float(np.max(np.abs(np.asarray(b["step_losses"]) - np.asarray(a["step_losses"][2:]))))
    print(
        f"CPT resume with 2 workers: steps 3-6 {a['step_losses'][2:]} vs resumed {b['step_losses']}, "
        f"max abs diff {diff:.1e}"
    )
    assert diff <= 1e-6


def test_sft_resume_after_sigkill_across_a_stage_boundary_with_two_workers(tiny, tmp_path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Repeat: " + p.split()[0]},
                {"role": "assistant", "content": " ".join(p.split()[:3])},
            ]
        }
        for p in _prose().split("\n\n")
        if len(p) > 100
    ][:24]
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def cfg(name: str) -> Path:
        c = {
            "model": str(tiny),
            "out": str(tmp_path / name),
            "seq_len": 128,
            "train": {
                "learning_rate": 3e-3,
                "max_steps": 4,
                "per_device_batch_size": 2,
                "logging_steps": 1,
                "save_steps": 2,
                "report_to": "none",
                "loss_chunk_size": 64,
                "dataloader_num_workers": 2,
            },
            "stages": [
                {"name": "s1", "blend": [{"path": str(data), "weight": 1.0}]},
                {"name": "s2", "blend": [{"path": str(data), "weight": 1.0}], "num_samples": 20},
            ],
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(c))
        return path

    _train("sft", cfg("full"))
    # Dies in stage s2 at step 3, after s1 finished and s2's checkpoint-2 was written.
    code = _KILLER.replace("if self.state.global_step", "if 's2' in self.args.output_dir and self.state.global_step")
    p = subprocess.run(
        [sys.executable, "-c", code.format(kill_at=3, kind="sft", config=str(cfg("crash")))],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    assert (tmp_path / "crash" / "s1" / "final").is_dir() and (tmp_path / "crash" / "s2" / "checkpoint-2").is_dir()
    _train("sft", cfg("crash"))  # s1 done: skipped; s2 resumes from checkpoint-2
    a = json.loads((tmp_path / "full" / "s2" / "summary.json").read_text())
    b = json.loads((tmp_path / "crash" / "s2" / "summary.json").read_text())
    assert b["resumed_from"].endswith("checkpoint-2")
    diff = float(np.max(np.abs(np.asarray(b["step_losses"]) - np.asarray(a["step_losses"][2:]))))
    print(f"SFT resume across the stage boundary with 2 workers: max abs diff {diff:.1e}")
    assert len(b["step_losses"]) == 2 and diff <= 1e-6


# ---------------------------------------------------------------------------------------------
# Launches that cannot work: one line before any work
# ---------------------------------------------------------------------------------------------


def _error_line(cmd: list[str], env: dict[str, str] | None = None) -> str:
    p = subprocess.run(cmd, cwd=ROOT, env={**_env(), **(env or {})}, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stdout[-2000:] + p.stderr[-2000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    return lines[0]


def test_bad_launches_fail_in_one_line(tiny, corpus, tmp_path):
    longkit = str(BIN / "longkit")
    cp = _cpt_yaml(tiny, corpus, tmp_path / "cp", context_parallel_size=2)
    assert "GPU-only" in _error_line([longkit, "train", "cpt", str(cp)])
    # FSDP1 on CPU (it needs a GPU per rank): refused in one line; FSDP2 runs (test above).
    line = _error_line(
        [longkit, "train", "cpt", str(_cpt_yaml(tiny, corpus, tmp_path / "fsdp"))],
        env={"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"},
    )
    assert "FSDP on CPU needs FSDP2" in line and "cpu-fsdp.yaml" in line
    line = _error_line(
        [longkit, "train", "cpt", str(_cpt_yaml(tiny, corpus, tmp_path / "fsdp"))],
        env={"ACCELERATE_USE_DEEPSPEED": "true"},
    )
    assert "DeepSpeed through accelerate is GPU-only" in line
    assert not (tmp_path / "fsdp").exists()


def test_accelerate_cpu_launcher_starts_the_ranks(tiny, corpus, tmp_path):
    """`accelerate launch --cpu --num_processes 2` (no mpirun): longkit starts the 2 gloo ranks itself, and the
    run equals 1 process x grad_accum 2 as the other launchers do."""
    one = _cpt_yaml(tiny, corpus, tmp_path / "one", grad_accum=2)
    two = _cpt_yaml(tiny, corpus, tmp_path / "two", grad_accum=1)
    _train("cpt", one)
    p = _run(
        [
            str(BIN / "accelerate"),
            "launch",
            "--cpu",
            "--num_processes",
            "2",
            "--main_process_port",
            str(29500 + os.getpid() % 1000),
            "-m",
            "longkit",
            "train",
            "cpt",
            str(two),
        ]
    )
    assert "starting the 2 gloo ranks" in p.stderr
    s1 = json.loads((tmp_path / "one" / "summary.json").read_text())
    s2 = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert s2["launch"]["processes"] == 2 and s2["launch"]["distributed"] == "MULTI_CPU"
    assert _max_rel(s2["step_losses"], s1["step_losses"]) <= 1e-5


def test_cpu_launch_process_count_is_read_from_the_accelerate_command_line(tmp_path):
    from longkit.train.launch import requested_processes

    assert requested_processes(["python", "accelerate", "launch", "--cpu", "--num_processes", "3", "-m", "x"]) == 3
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        (ROOT / "configs" / "accelerate" / "cpu-ddp.yaml").read_text().replace("num_processes: 2", "num_processes: 4")
    )
    assert requested_processes(["accelerate", "launch", "--cpu", "--config_file", str(cfg), "train.py"]) == 4
    assert requested_processes(["python", "-m", "pytest"]) is None
    assert requested_processes(["accelerate", "launch", "--cpu", "train.py"]) is None  # no count, no config


def test_fsdp_on_a_model_it_cannot_wrap_is_refused(tiny, monkeypatch):
    from transformers import AutoModelForCausalLM

    from longkit.errors import ConfigError
    from longkit.train.run import check_fsdp_wrappable

    model = AutoModelForCausalLM.from_pretrained(tiny)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_TRANSFORMER_CLS_TO_WRAP", "GPT2Block")
    with pytest.raises(ConfigError, match=r"FSDP cannot wrap LlamaForCausalLM.*GPT2Block.*LlamaDecoderLayer"):
        check_fsdp_wrappable(model, "cfg")
    monkeypatch.setenv("FSDP_TRANSFORMER_CLS_TO_WRAP", "LlamaDecoderLayer")
    check_fsdp_wrappable(model, "cfg")


def test_more_processes_than_sft_rows_is_refused(tiny, tmp_path, monkeypatch):
    from longkit.errors import ConfigError
    from longkit.train.config import SFTConfig
    from longkit.train.sft import run_sft

    data = tmp_path / "one.jsonl"
    data.write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}) + "\n"
    )
    cfg = SFTConfig.model_validate(
        {
            "model": str(tiny),
            "out": str(tmp_path / "o"),
            "seq_len": 256,
            "train": {"report_to": "none", "max_steps": 1},
            "stages": [{"name": "s", "blend": [{"path": str(data), "weight": 1.0}]}],
        }
    )
    monkeypatch.setenv("WORLD_SIZE", "2")  # checked before torch.distributed would start
    with pytest.raises(ConfigError, match="1 packed rows cannot feed 2 processes"):
        run_sft(cfg)


def test_context_parallel_sizes_are_checked(monkeypatch):
    from longkit.errors import ConfigError
    from longkit.train import run
    from longkit.train.config import TrainSpec

    monkeypatch.setattr(run, "has_cuda", lambda: True)  # the size checks run before any device is touched
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ConfigError, match="does not divide the 4 processes"):
        run.check_launch(TrainSpec(context_parallel_size=3), 1200, "cfg", streaming=True)
    with pytest.raises(ConfigError, match="divisible by 2 x context_parallel_size = 8"):
        run.check_launch(TrainSpec(context_parallel_size=4), 1020, "cfg", streaming=True)
    run.check_launch(TrainSpec(context_parallel_size=2), 1024, "cfg", streaming=True)
    with pytest.raises(ConfigError, match="dataloader_num_workers"):
        run.check_launch(TrainSpec(dataloader_num_workers=2), 1024, "cfg", streaming=True, dataset=[1, 2])
