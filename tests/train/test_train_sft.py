"""ChatQA-style SFT through the Trainer on a tiny real Llama: packed rows, loss falls, stages chain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from longkit.errors import ConfigError, InputError
from longkit.sft.format import IGNORE, encode_chatqa
from longkit.testing import build_tiny_llama
from longkit.testing import prose as _prose


@pytest.fixture(scope="module")
def sft_model(trained_tokenizer, tmp_path_factory):
    return build_tiny_llama(trained_tokenizer, tmp_path_factory.mktemp("sft-llama"), max_positions=512)


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def sft_files(tmp_path_factory):
    """Two small real-text SFT sets: plain instructions and context QA (answer = first sentence of context)."""
    root = tmp_path_factory.mktemp("sft-data")
    paras = [p.strip() for p in _prose().split("\n\n") if 80 < len(p) < 400][:60]
    inst = [
        {
            "messages": [
                {"role": "user", "content": "Repeat the word: " + p.split()[0]},
                {"role": "assistant", "content": p.split()[0]},
            ]
        }
        for p in paras[:30]
    ]
    qa = [
        {"context": p, "question": "What does the context start with?", "answer": " ".join(p.split()[:4])}
        for p in paras[30:]
    ]
    return {"inst": _write(root / "inst.jsonl", inst), "qa": _write(root / "qa.jsonl", qa)}


def test_packed_sft_rows_keep_samples_apart(trained_tokenizer, sft_model):
    from transformers import AutoModelForCausalLM

    from longkit.train.sft import pack_examples

    a = encode_chatqa(
        trained_tokenizer, [{"role": "user", "content": "Name a bird."}, {"role": "assistant", "content": "A heron."}]
    )
    b = encode_chatqa(
        trained_tokenizer,
        [{"role": "user", "content": "Name a tree."}, {"role": "assistant", "content": "An oak."}],
        context="Trees grow.",
    )
    too_long = ([1] * 300, [1] * 300)
    rows, dropped = pack_examples([a, b, too_long], seq_len=256, pad_id=0)
    assert dropped == 1 and len(rows) == 1
    row = rows[0]
    n_a, n_b = len(a[0]), len(b[0])
    assert row["position_ids"][:n_a].tolist() == list(range(n_a))
    assert row["position_ids"][n_a : n_a + n_b].tolist() == list(range(n_b))
    assert (row["labels"][n_a + n_b :] == IGNORE).all()
    model = AutoModelForCausalLM.from_pretrained(sft_model).eval()
    with torch.no_grad():
        packed = model(
            input_ids=torch.as_tensor(row["input_ids"][None], dtype=torch.long),
            position_ids=torch.as_tensor(row["position_ids"][None], dtype=torch.long),
            use_cache=False,
        ).logits
        alone = model(input_ids=torch.tensor([b[0]])).logits
    assert torch.allclose(packed[0, n_a : n_a + n_b], alone[0], atol=1e-4)


def _sft_cfg(model, files, out, **over):
    from longkit.train.config import SFTConfig

    train = {
        "learning_rate": 3e-3,
        "warmup_steps": 2,
        "max_steps": 25,
        "per_device_batch_size": 2,
        "logging_steps": 5,
        "save_steps": 1000,
        "report_to": "none",
        "loss_chunk_size": 64,
    }
    stages = [
        {"name": "stage1", "blend": [{"path": files["inst"], "weight": 1.0}], "num_samples": 60},
        {
            "name": "stage2",
            "blend": [{"path": files["qa"], "epochs": 2}, {"path": files["inst"], "epochs": 0.5}],
            "train": {"max_steps": 6},
        },
    ]
    return SFTConfig.model_validate(
        {"model": str(model), "out": str(out), "seq_len": 256, "train": train, "stages": stages, **over}
    )


def test_sft_two_stages_loss_falls_and_chain(sft_model, sft_files, tmp_path):
    from longkit.train.sft import run_sft

    res = run_sft(_sft_cfg(sft_model, sft_files, tmp_path / "sft"))
    s1, s2 = res
    l1 = s1["step_losses"]
    first, last = np.mean(l1[:3]), np.mean(l1[-3:])
    print(
        f"SFT stage1 loss: first {first:.3f} -> last {last:.3f}; stage2 {s2['step_losses'][0]:.3f} -> "
        f"{s2['step_losses'][-1]:.3f}"
    )
    assert last < first - 1.0
    assert s2["model"] == s1["output"]  # stage 2 starts from stage 1's model
    blend = json.loads((tmp_path / "sft" / "stage2" / "blend.json").read_text())
    eff = {d["name"]: d["effective_epochs"] for d in blend["datasets"]}
    assert eff == {"qa": 2.0, "inst": 0.5}
    _check_reruns(sft_model, sft_files, tmp_path / "sft")


def _weights(out):
    weights = {f"{p.parent.parent.name}/weights": p.read_bytes() for p in out.glob("*/final/model.safetensors")}
    return weights | {f"{p.parent.name}/record": p.stat().st_mtime_ns for p in out.glob("*/train_run.json")}


def _check_reruns(model, files, out):
    """Reruns of a finished two-stage SFT: unchanged -> complete; changed -> refused by field, or (recipe) the
    changed stage and every stage after it trained again."""
    from longkit.train.sft import run_sft

    before = _weights(out)
    again = run_sft(_sft_cfg(model, files, out))
    assert [s["already_complete"] for s in again] == [True, True] and [s["stage"] for s in again] == [
        "stage1",
        "stage2",
    ]
    assert _weights(out) == before  # nothing rewritten

    lr = _sft_cfg(model, files, out)
    lr.stages[1].train = {"max_steps": 6, "learning_rate": 1e-3}
    with pytest.raises(
        ConfigError,
        match=r"stage 'stage2': field 'train.learning_rate': .* was trained with 0.003, "
        r"not 0.001; use a new out, or delete .*stage2 to start fresh",
    ):
        run_sft(lr)
    samples = _sft_cfg(model, files, out)
    samples.stages[0].num_samples = 50
    with pytest.raises(ConfigError, match=r"stage 'stage1': field 'num_samples': .* with 60, not 50"):
        run_sft(samples)
    other = _sft_cfg(model, files, out)
    other.model = "some-other-model"
    with pytest.raises(
        ConfigError,
        match=r"stage 'stage1': field 'model': .* was trained from .*, not from "
        r"some-other-model",
    ):
        run_sft(other)
    assert _weights(out) == before  # every refusal came before a write

    # a recipe rerun retrains the changed stage and what follows it, nothing before it
    res = run_sft(lr, retrain_changed=True)
    assert [s.get("already_complete", False) for s in res] == [True, False]
    after = _weights(out)
    assert after["stage1/weights"] == before["stage1/weights"] and after["stage2/weights"] != before["stage2/weights"]
    res = run_sft(samples, retrain_changed=True)
    assert [s.get("already_complete", False) for s in res] == [False, False]
    assert res[0]["blend"]["samples"] == 50


def test_sft_bad_configs(sft_model, sft_files, tmp_path):
    from longkit.train.config import SFTConfig, load_train_config
    from longkit.train.sft import run_sft

    cfg = _sft_cfg(sft_model, sft_files, tmp_path / "x")
    cfg.stages[0].blend[0].path = str(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match=r"stage 'stage1' blend\[0\] field 'path': dataset not found"):
        run_sft(cfg)
    # A later stage's missing data is reported before the first stage trains.
    cfg = _sft_cfg(sft_model, sft_files, tmp_path / "y")
    cfg.stages[-1].blend[0].path = str(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match=rf"stage '{cfg.stages[-1].name}' blend\[0\] field 'path': dataset not found"):
        run_sft(cfg)
    assert len(cfg.stages) > 1 and not (tmp_path / "y").exists()
    # ... and so is a later stage's unreadable row (file:line), without tokenizing anything.
    bad_rows = tmp_path / "bad-rows.jsonl"
    bad_rows.write_text(
        '{"question": "q", "answer": "a"}\n{"messages": [{"role": "user", "content": "only a question"}]}\n'
    )
    cfg = _sft_cfg(sft_model, sft_files, tmp_path / "z")
    cfg.stages[-1].blend[0].path = str(bad_rows)
    with pytest.raises(InputError, match=r"bad-rows.jsonl:2: the last message must be an assistant reply"):
        run_sft(cfg)
    assert not (tmp_path / "z").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\nout: o\nstages:\n  - name: s\n    blend:\n      - {path: a.jsonl, wieght: 1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: field 'stages.0.blend.0.wieght'"):
        load_train_config(SFTConfig, bad)


def test_sft_resume_gives_the_same_next_step_losses(sft_model, sft_files, tmp_path):
    import shutil

    from longkit.train.sft import run_sft

    def cfg(out):
        c = _sft_cfg(sft_model, sft_files, out)
        c.stages = c.stages[:1]
        c.train.max_steps, c.train.save_steps = 6, 3
        return c

    full = run_sft(cfg(tmp_path / "full"))[0]
    shutil.copytree(tmp_path / "full" / "stage1" / "checkpoint-3", tmp_path / "crashed" / "stage1" / "checkpoint-3")
    shutil.copy(tmp_path / "full" / "stage1" / "train_run.json", tmp_path / "crashed" / "stage1" / "train_run.json")
    resumed = run_sft(cfg(tmp_path / "crashed"))[0]
    assert resumed["resumed_from"].endswith("checkpoint-3")
    assert resumed["step_losses"] == pytest.approx(full["step_losses"][3:], abs=1e-5)
