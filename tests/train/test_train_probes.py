"""Long-context probes during training (longkit.train.probe) and `longkit train curves`, on a tiny real Llama."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from longkit.testing import build_tiny_llama
from longkit.testing import prose as _prose

SEQ = 128
PROBE = {"every": 2, "tasks": ["passkey"], "lengths": [128, 256], "samples": 2, "ppl": True, "seed": 0}


@pytest.fixture(scope="module")
def corpus_dir(trained_tokenizer, tmp_path_factory):
    """A tokenized corpus of Python's language reference, built with longkit.data (as test_train_cpt's)."""
    from longkit.data.sources import SourceSpec
    from longkit.data.tokenize import tokenize_corpus

    root = tmp_path_factory.mktemp("probe-data")
    paras = [p for p in _prose().split("\n\n") if len(p) > 200][:120]
    with open(root / "docs.jsonl", "w") as fh:
        for p in paras:
            fh.write(json.dumps({"text": p}) + "\n")
    tokenize_corpus([SourceSpec(path=str(root / "docs.jsonl"))], trained_tokenizer, root / "data" / "corpus")
    return root


@pytest.fixture(scope="module")
def probe_model(trained_tokenizer, tmp_path_factory):
    """The tiny Llama with attention dropout, so a probe that drew from torch's generator would change the losses."""
    out = build_tiny_llama(trained_tokenizer, tmp_path_factory.mktemp("probe-llama"), max_positions=256)
    cfg = json.loads((out / "config.json").read_text())
    cfg["attention_dropout"] = 0.1
    (out / "config.json").write_text(json.dumps(cfg))
    return out


def _raw(model, corpus_dir, out, steps=6, save_steps=3, probe=None):
    data = {
        "tokenizer": "smollm2-135m-instruct",
        "out": str(corpus_dir / "data"),
        "seq_len": SEQ,
        "transform": "plain",
        "separator": "eos",
        "seed": 0,
    }
    train = {
        "learning_rate": 3e-3,
        "warmup_steps": 1,
        "max_steps": steps,
        "per_device_batch_size": 2,
        "logging_steps": 1,
        "save_steps": save_steps,
        "report_to": "none",
        "loss_chunk_size": 50,
    }
    raw = {"model": str(model), "out": str(out), "data": data, "train": train}
    if probe is not None:
        raw["probe"] = probe
    return raw


def _cfg(*args, **kwargs):
    from longkit.train.config import CPTConfig

    return CPTConfig(**_raw(*args, **kwargs))


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "probes.jsonl").read_text().splitlines()]


def _comparable(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "wall_s"}


@pytest.fixture(scope="module")
def probed(probe_model, corpus_dir, tmp_path_factory):
    """A 6-step run probed every 2 steps, with checkpoints every 3."""
    from longkit.train.cpt import run_cpt

    out = tmp_path_factory.mktemp("probed") / "run"
    return out, run_cpt(_cfg(probe_model, corpus_dir, out, probe=PROBE))


# ---------------------------------------------------------------------------------------------
# Schedule, logs and the training stream
# ---------------------------------------------------------------------------------------------


def test_probe_rows_at_every_step_and_checkpoint(probed):
    out, summary = probed
    rows = _rows(out)
    # every 2 steps (2, 4, 6), and the checkpoint at step 3
    assert [r["step"] for r in rows] == [2, 3, 4, 6]
    for r in rows:
        assert r["tokens"] == r["step"] * SEQ * 2  # seq_len x batch x accumulation x ranks
        assert set(r["scores"]["passkey"]) == {"128", "256"}
        assert set(r["mean"]) == {"128", "256"} and "effective_length" in r
        assert r["ppl"]["length"] == 256 and r["ppl"]["ppl"] > 1 and len(r["ppl"]["by_position"]) == 8
        assert r["wall_s"] > 0
        assert (out / "probes" / f"step-{r['step']}" / "passkey" / "results.jsonl").exists()  # per-sample answers
    logged = [e for e in summary["log_history"] if "probe/passkey/128" in e]
    assert [e["step"] for e in logged] == [2, 3, 4, 6]
    assert {"probe/effective_length", "probe/ppl", "probe/passkey/256", "probe/tokens"} <= set(logged[0])
    assert logged[-1]["probe/ppl"] == rows[-1]["ppl"]["ppl"]


def test_probes_leave_the_step_losses_unchanged(probed, probe_model, corpus_dir, tmp_path):
    from longkit.train.cpt import run_cpt

    _, with_probes = probed
    plain = run_cpt(_cfg(probe_model, corpus_dir, tmp_path / "plain"))
    assert not (tmp_path / "plain" / "probes.jsonl").exists()
    assert with_probes["step_losses"] == plain["step_losses"]  # exactly, dropout included


def test_isolated_restores_what_training_reads(trained_tokenizer, probe_model):
    from longkit.models.load import load_model
    from longkit.train.probe import isolated

    model, tok = load_model(str(probe_model), dtype="float32")
    model.config.use_cache = False
    model.train()
    pad, gen = tok.pad_token, model.generation_config.to_dict()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with isolated(model, tok):
        assert not model.training and not torch.is_grad_enabled()
        random.random(), np.random.rand(), torch.rand(3)  # what a probe might draw
        model.config.use_cache = True
        model.generation_config.max_new_tokens = 3
        tok.pad_token = tok.eos_token if pad != tok.eos_token else tok.bos_token
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert model.training and model.config.use_cache is False
    assert model.generation_config.to_dict() == gen and tok.pad_token == pad


def test_resumed_run_keeps_earlier_probes_without_duplicates(probed, probe_model, corpus_dir, tmp_path):
    from longkit.train.cpt import run_cpt

    full_out, _ = probed
    full = _rows(full_out)
    crashed = tmp_path / "crashed"
    # killed after step 4's probe: checkpoint-3 is its last checkpoint, probes.jsonl holds steps 2, 3 and 4
    shutil.copytree(full_out / "checkpoint-3", crashed / "checkpoint-3")
    shutil.copy(full_out / "train_run.json", crashed / "train_run.json")
    (crashed / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in full if r["step"] <= 4))
    resumed = run_cpt(_cfg(probe_model, corpus_dir, crashed, probe=PROBE))
    assert resumed["resumed_from"].endswith("checkpoint-3")
    rows = _rows(crashed)
    assert [r["step"] for r in rows] == [2, 3, 4, 6]  # step 4 probed again after the resume, once
    for a, b in zip(rows, full):
        a, b = _comparable(a), _comparable(b)
        assert a["scores"] == b["scores"] and a["effective_length"] == b["effective_length"]
        assert a["ppl"]["ppl"] == pytest.approx(b["ppl"]["ppl"], rel=1e-3)
    logged = [e["step"] for e in resumed["log_history"] if "probe/passkey/128" in e]
    assert logged == [2, 3, 4, 6]  # the checkpoint's history holds 2 and 3; this run added 4 and 6


def test_sft_stage_writes_its_own_probes(probe_model, trained_tokenizer, tmp_path):
    from longkit.train.config import SFTConfig
    from longkit.train.sft import run_sft

    paras = [p.strip() for p in _prose().split("\n\n") if 80 < len(p) < 400][:40]
    qa = [{"context": p, "question": "What does the context start with?", "answer": p.split()[0]} for p in paras]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa))
    cfg = SFTConfig(
        model=str(probe_model),
        out=str(tmp_path / "sft"),
        seq_len=256,
        train={"max_steps": 3, "save_steps": 0, "logging_steps": 1, "report_to": "none", "learning_rate": 1e-3},
        stages=[{"name": "s1", "blend": [{"path": str(tmp_path / "qa.jsonl"), "weight": 1.0}], "num_samples": 12}],
        probe={**PROBE, "every": 2, "ppl": False},
    )
    (summary,) = run_sft(cfg)
    rows = _rows(tmp_path / "sft" / "s1")
    assert [r["step"] for r in rows] == [2, 3]  # every 2 steps, and the final model (no checkpoints here)
    assert rows[0]["tokens"] == 2 * 256 and rows[0]["ppl"] is None
    assert [e["step"] for e in summary["log_history"] if "probe/passkey/256" in e] == [2, 3]


# ---------------------------------------------------------------------------------------------
# Validation: one line, exit 2, before any work
# ---------------------------------------------------------------------------------------------


def _cli_error(tmp_path, raw) -> str:
    from longkit.cli import app

    path = tmp_path / "cpt.yaml"
    path.write_text(yaml.safe_dump(raw))
    res = CliRunner().invoke(app, ["train", "cpt", str(path)])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert lines[-1].startswith("error: ")
    return lines[-1]


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        ({"tasks": ["passkey", "no_such_task"]}, r"field 'probe.tasks'.*unknown task 'no_such_task' \(known tasks:"),
        ({"lengths": [512]}, "field 'probe.lengths': 512 exceeds the model's 256-token window"),
        ({"every": 0}, r"field 'probe.every'.*greater than or equal to 1"),
        ({"samples": 0}, r"field 'probe.samples'.*greater than or equal to 1"),
        ({"tasks": ["ppl"]}, r"field 'probe.tasks'.*scores text instead of generating"),
    ],
)
def test_bad_probe_configs_are_one_line_errors(probe_model, corpus_dir, tmp_path, probe, expected):
    raw = _raw(probe_model, corpus_dir, tmp_path / "run", probe={**PROBE, **probe})
    line = _cli_error(tmp_path, raw)
    assert re.search(expected, line), line
    assert not (tmp_path / "run").exists()  # refused before the first write


def test_a_task_whose_data_is_not_cached_is_refused(probe_model, corpus_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "empty-longkit"))
    raw = _raw(probe_model, corpus_dir, tmp_path / "run", probe={**PROBE, "tasks": ["qa_1"]})
    line = _cli_error(tmp_path, raw)
    assert "field 'probe.tasks'" in line and "longkit eval fetch qa_1" in line, line


def test_extend_covers_longer_probe_lengths(probe_model, trained_tokenizer):
    from longkit.errors import ConfigError
    from longkit.models.load import load_model
    from longkit.train.config import ExtendSpec, ProbeSpec
    from longkit.train.probe import probe_plan

    model, tok = load_model(str(probe_model), dtype="float32")
    spec = ProbeSpec(tasks=["passkey"], lengths=[128, 512], samples=1, ppl=False)
    with pytest.raises(ConfigError, match="512 exceeds the model's 256-token window"):
        probe_plan(spec, model, tok, SEQ)
    plan = probe_plan(spec, model, tok, SEQ, ExtendSpec(method="abf", base=1e5, max_length=512))
    assert plan is not None and plan.window == 512


# ---------------------------------------------------------------------------------------------
# longkit train curves
# ---------------------------------------------------------------------------------------------


def _fake_run(root: Path, name: str, scale: float) -> Path:
    """A probes.jsonl of a run whose passkey score grows with training."""
    run = root / name
    run.mkdir(parents=True)
    rows = []
    for step in (10, 20, 30):
        s = {"128": min(1.0, scale * step / 10), "256": min(1.0, scale * step / 30)}
        rows.append(
            {
                "step": step,
                "tokens": step * 256,
                "scores": {"passkey": s},
                "mean": s,
                "effective_length": 256 if s["256"] > 0.856 else (128 if s["128"] > 0.856 else None),
                "task_effective_length": {},
                "ppl": {"ppl": 100.0 / step, "by_position": {}},
                "wall_s": 1.0,
            }
        )
    (run / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_curves_plots_two_runs_and_prints_a_table(probed, tmp_path):
    from longkit.cli import app

    real, _ = probed
    a, b = _fake_run(tmp_path, "plain", 0.3), _fake_run(tmp_path, "utk", 1.0)
    fig = tmp_path / "fig.png"
    res = CliRunner().invoke(app, ["train", "curves", str(a), str(b), str(real), "--out", str(fig)])
    assert res.exit_code == 0, res.output
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| run | step | tokens | effective_length | mean/128 | mean/256 | ppl |" in res.output
    assert "| utk | 30 | 7680 | 256 | 1 | 1 | 3.333 |" in res.output
    assert "| plain | 10 | 2560 | 0 |" in res.output and "| run | 6 |" in res.output
    one = tmp_path / "one.png"
    res = CliRunner().invoke(app, ["train", "curves", str(a), str(b), "--metric", "passkey/256", "--out", str(one)])
    assert res.exit_code == 0 and one.exists() and "| run | step | tokens | passkey/256 |" in res.output
    res = CliRunner().invoke(app, ["train", "curves", str(a), "--metric", "passkey/999", "--out", str(one)])
    assert res.exit_code == 2 and "--metric passkey/999: not in these probes" in res.output


def test_curves_names_a_missing_or_empty_probes_file(tmp_path):
    from longkit.cli import app

    res = CliRunner().invoke(app, ["train", "curves", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and f"{tmp_path / 'nowhere' / 'probes.jsonl'}: no such file" in res.output
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "probes.jsonl").write_text("")
    res = CliRunner().invoke(app, ["train", "curves", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "probes.jsonl: no probe rows yet" in res.output


def test_curves_refuses_a_broken_probes_file_or_out_in_one_line(tmp_path):
    from longkit.cli import app

    row = {"step": 2, "tokens": 512, "scores": {"passkey": {"256": 0.0}}, "mean": {"256": 0.0}}
    cases = {
        b"\xff\xfe\n": "probes.jsonl:1: not valid UTF-8",
        b"not json\n" + json.dumps(row).encode() + b"\n": "probes.jsonl:1: not a JSON line",
        b'{"step": 1, "tokens": 5}\n': "probes.jsonl:1: field 'scores': expected dict, got None",
        b"[1, 2]\n": "probes.jsonl:1: expected a probe row (a JSON object), got list",
        b'{"step": "3", "tokens": 5, "scores": {}, "mean": {}}\n': "field 'step': expected int, got '3'",
    }
    for i, (data, phrase) in enumerate(cases.items()):
        run = tmp_path / f"r{i}"
        run.mkdir()
        (run / "probes.jsonl").write_bytes(data)
        res = CliRunner().invoke(app, ["train", "curves", str(run), "--out", str(tmp_path / "c.png")])
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and phrase in lines[0], res.output
    # a torn last line (a run killed mid-write) is left out; the rows before it plot
    good = tmp_path / "good"
    good.mkdir()
    (good / "probes.jsonl").write_text(json.dumps(row) + "\n" + '{"step": 4, "tok')
    res = CliRunner().invoke(app, ["train", "curves", str(good), "--out", str(tmp_path / "c.png")])
    assert res.exit_code == 0 and (tmp_path / "c.png").stat().st_size > 0, res.output
    (tmp_path / "a-file").write_text("keep")
    for out, phrase in ((tmp_path, "is a directory"), (tmp_path / "a-file" / "c.png", "is not a directory")):
        res = CliRunner().invoke(app, ["train", "curves", str(good), "--out", str(out)])
        assert res.exit_code == 2 and phrase in res.output, res.output
    assert (tmp_path / "a-file").read_text() == "keep"
