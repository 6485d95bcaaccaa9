"""Every option a writing command's --help lists does what it says: its value reaches what the output records
(the training record, the build's stats.json, the index manifest), or it sits in a commented allow-list of
options that only change speed, where output goes, or how a rerun treats an existing output.

The eval commands have the same test in tests/eval/test_cli_options.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from longkit.testing import build_tiny_llama


def _params(*path: str) -> set[str]:
    """The options and arguments `longkit <path> --help` lists, by their first long name (or argument name)."""
    import typer

    from longkit.cli import app

    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {next((o for o in p.opts if o.startswith("--")), p.name) for p in command.params if p.name != "help"}


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    from longkit.cli import run

    monkeypatch.delenv("LONGKIT_DEBUG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def invoke(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_rag_index_options_reach_the_manifest(tmp_path, topics, cli):
    doc = tmp_path / "doc.txt"
    doc.write_text("\n\n".join(list(topics.values())[:2]))
    given = {
        "--chunk-size": "40",
        "--overlap": "5",
        "--unit": "word",
        "--tolerance": "0.2",
        "--on-overflow": "split",
        "--kind": "hnsw",
        "--max-tokens": "128",
        "--embedder": "all-minilm-l6-v2",
    }
    recorded = {
        "--chunk-size": ("chunking.size", 40),
        "--overlap": ("chunking.overlap", 5),
        "--unit": ("chunking.unit", "word"),
        "--tolerance": ("chunking.tolerance", 0.2),
        "--on-overflow": ("chunking.on_overflow", "split"),
        "--kind": ("kind", "hnsw"),
        "--max-tokens": ("embedder.max_tokens", 128),
        "--embedder": ("embedder.name", "all-minilm-l6-v2"),
    }
    free = {
        "docs": "the input documents, each recorded by resolved path and content hash in the index itself",
        "--out": "where the index goes",
        "--batch-size": "throughput only: texts per embedding call",
        "--commit-every": "how often progress is committed; the index's rows are the same",
        "--verify": "checks the existing segments before adding to them; changes nothing it writes",
    }
    assert _params("rag", "index") == set(recorded) | set(free)
    code, _, err = cli("rag", "index", doc, "--out", tmp_path / "ix", *[a for kv in given.items() for a in kv])
    assert code == 0, err
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    for option, (field, value) in recorded.items():
        got: Any = manifest
        for part in field.split("."):
            got = got[part]
        assert got == value, option


def test_data_build_options_reach_stats_json(tmp_path, cli):
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": f"Document {i} says hello. " * 30}) + "\n" for i in range(6)))
    cfg = tmp_path / "d.yaml"
    cfg.write_text(f"out: {tmp_path / 'elsewhere'}\nsources: [{src}]\nseq_len: 64\ntransform: plain\n")
    recorded = {"--max-sequences": ("max_sequences", 3), "--out": ("out", str(tmp_path / "b"))}
    free = {
        "config": "the data config itself: every field is recorded under stats.json's config",
        "--num-proc": "tokenization processes: the same tokens either way (speed only, so not compared on rerun)",
        "--verify": "checks a reused corpus's SHA-256s; what it writes is the same",
        "--overwrite": "how a rerun treats an output built with other settings (rebuild in place)",
    }
    assert _params("data", "build") == set(recorded) | set(free)
    code, _, err = cli("data", "build", cfg, "--max-sequences", 3, "--num-proc", 1, "--out", tmp_path / "b")
    assert code == 0, err
    stats = json.loads((tmp_path / "b" / "stats.json").read_text())
    for option, (field, value) in recorded.items():
        assert stats["config"][field] == value, option
    assert stats["packing"]["sequences"] == 3


@pytest.fixture(scope="module")
def train_inputs(trained_tokenizer, tmp_path_factory):
    """A tiny Llama, a corpus it tokenized, and an SFT file."""
    from longkit.data.sources import SourceSpec
    from longkit.data.tokenize import tokenize_corpus

    root = tmp_path_factory.mktemp("train-options")
    model = build_tiny_llama(trained_tokenizer, root / "m", max_positions=128)
    docs = root / "docs.jsonl"
    docs.write_text(
        "".join(json.dumps({"text": f"Paragraph {i} of plain prose for training. " * 8}) + "\n" for i in range(20))
    )
    tokenize_corpus([SourceSpec(path=str(docs))], trained_tokenizer, root / "data" / "corpus")
    sft = root / "sft.jsonl"
    sft.write_text(
        "".join(json.dumps({"question": f"What is {i}?", "answer": f"It is {i}."}) + "\n" for i in range(12))
    )
    return model, root, sft


_TRAIN = (
    "{learning_rate: 1.0e-3, warmup_steps: 0, max_steps: 9, per_device_batch_size: 2, save_steps: 1, "
    "report_to: none, logging_steps: 1}"
)


def test_train_cpt_options_reach_the_training_record(train_inputs, tmp_path, cli):
    model, root, _ = train_inputs
    cfg = tmp_path / "cpt.yaml"
    cfg.write_text(
        f"model: {model}\nout: {tmp_path / 'cpt'}\ndata: {{out: {root / 'data'}, seq_len: 64, "
        f"transform: plain, separator: eos}}\ntrain: {_TRAIN}\n"
    )
    free = {
        "config": "the CPT config: the fields that change the weights are recorded (train.*, data.*, model, extend)",
        "--no-resume": "starts over: the output then records this run (checked below: no continuation left)",
    }
    recorded = {"--max-steps": "train.max_steps", "--continue": "continued"}
    assert _params("train", "cpt") == set(recorded) | set(free)
    record = tmp_path / "cpt" / "train_run.json"

    code, _, err = cli("train", "cpt", cfg, "--max-steps", 2)
    assert code == 0, err
    assert json.loads(record.read_text())["train"]["max_steps"] == 2
    code, _, err = cli("train", "cpt", cfg, "--max-steps", 3, "--continue")
    assert code == 0, err
    rec = json.loads(record.read_text())
    assert rec["train"]["max_steps"] == 3 and rec["continued"] == [
        {"from_step": 2, "to_step": 3, "segment": "continue-2"}
    ]
    code, _, err = cli("train", "cpt", cfg, "--max-steps", 3)
    assert code == 0 and "already complete" in err
    code, _, err = cli("train", "cpt", cfg, "--max-steps", 2, "--no-resume")
    assert code == 0, err
    rec = json.loads(record.read_text())
    assert rec["train"]["max_steps"] == 2 and "continued" not in rec
    assert sorted(p.name for p in (tmp_path / "cpt").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]


def test_train_sft_options_reach_the_stage_records(train_inputs, tmp_path, cli):
    model, _, sft = train_inputs
    cfg = tmp_path / "sft.yaml"
    cfg.write_text(
        f"model: {model}\nout: {tmp_path / 'sft'}\nseq_len: 128\ntrain: {_TRAIN}\nstages: "
        f"[{{name: a, blend: [{{path: {sft}, weight: 1}}]}}, "
        f"{{name: b, blend: [{{path: {sft}, epochs: 1}}]}}]\n"
    )
    free = {"config": "the SFT config: each stage's settings, data (by content) and starting model are recorded"}
    recorded = {"--max-steps": "train.max_steps", "--stage": "which stage output holds a record"}
    assert _params("train", "sft") == set(recorded) | set(free)
    code, _, err = cli("train", "sft", cfg, "--max-steps", 2, "--stage", "a")
    assert code == 0, err
    assert json.loads((tmp_path / "sft" / "a" / "train_run.json").read_text())["train"]["max_steps"] == 2
    assert not (tmp_path / "sft" / "b").exists()
    code, _, err = cli("train", "sft", cfg, "--max-steps", 2, "--stage", "b")
    assert code == 0, err
    rec_b = json.loads((tmp_path / "sft" / "b" / "train_run.json").read_text())
    assert rec_b["train"]["max_steps"] == 2 and rec_b["model"]["trained"].endswith("sft/a/final")
