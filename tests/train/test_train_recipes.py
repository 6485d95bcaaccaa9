"""Shipped recipes and accelerate configs validate; a recipe chains extend -> cpt -> sft on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from longkit.config import validate
from longkit.errors import ConfigError
from longkit.testing import build_tiny_llama
from longkit.train.config import CPTConfig, SFTConfig, load_train_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name,kind",
    [
        ("chatqa2-cpt.yaml", CPTConfig),
        ("utk-cpt.yaml", CPTConfig),
        ("chatqa2-sft-3stage.yaml", SFTConfig),
        ("smoke.yaml", CPTConfig),
        ("smoke.yaml", SFTConfig),
    ],
)
def test_recipes_validate(name, kind):
    data = yaml.safe_load((ROOT / "configs" / "recipes" / name).read_text())
    if name == "smoke.yaml":
        section = dict(data["cpt" if kind is CPTConfig else "sft"])
        section.setdefault("model", "m")
        section.setdefault("out", "o")
        cfg = validate(kind, section)
    else:
        cfg = load_train_config(kind, ROOT / "configs" / "recipes" / name)
    assert cfg.train.learning_rate > 0


def test_published_hyperparameters_in_recipes():
    c = load_train_config(CPTConfig, ROOT / "configs/recipes/chatqa2-cpt.yaml")
    assert (c.extend.base, c.extend.max_length, c.train.learning_rate, c.train.max_steps) == (1.5e8, 131072, 3e-5, 2000)
    u = load_train_config(CPTConfig, ROOT / "configs/recipes/utk-cpt.yaml")
    assert (u.data["utk"]["probability"], u.train.learning_rate, u.train.min_lr, u.train.warmup_steps) == (
        0.8,
        1e-5,
        1e-6,
        200,
    )
    s = load_train_config(SFTConfig, ROOT / "configs/recipes/chatqa2-sft-3stage.yaml")
    assert [st.name for st in s.stages] == ["stage1-sft", "stage2-convqa", "stage3-long"]
    gpus = 8  # the recipes' comments size grad_accum for 8 GPUs
    # ChatQA 2 Section 3.1: batch 32 x 128K = 4M tokens per step; Section 3.2: SFT lr 3e-5, batch 32
    assert gpus * c.train.per_device_batch_size * c.train.grad_accum == 32
    assert (s.train.learning_rate, gpus * s.train.per_device_batch_size * s.train.grad_accum) == (3e-5, 32)
    assert s.stages[-1].seq_len == 131072
    # UtK: 4M-token batches for 20B tokens
    per_step = gpus * u.train.per_device_batch_size * u.train.grad_accum * u.data["seq_len"]
    assert per_step == 32 * 131072
    assert 19.9e9 < per_step * u.train.max_steps <= 20e9


@pytest.mark.parametrize("name", ["fsdp.yaml", "fsdp-context-parallel.yaml", "deepspeed-zero3.yaml"])
def test_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(ROOT / "configs" / "accelerate" / name))
    assert cfg.distributed_type.value in ("FSDP", "DEEPSPEED")


def test_recipe_runs_extend_cpt_sft_on_tiny_model(trained_tokenizer, tmp_path, monkeypatch):
    from longkit.train.recipe import run_recipe

    model = build_tiny_llama(trained_tokenizer, tmp_path / "m", max_positions=128)
    monkeypatch.chdir(tmp_path)
    recipe = {
        "out": "runs/r",
        "prepare": "python-docs",
        "cpt": {
            "model": str(model),
            "extend": {"method": "abf", "base": 1e5, "max_length": 256},
            "data": {
                "tokenizer": str(model),
                "out": "runs/r/data",
                "sources": [{"path": "runs/r/inputs/corpus.jsonl"}],
                "seq_len": 256,
                "transform": "utk",
                "separator": "eos",
            },
            "train": {"max_steps": 3, "learning_rate": 1e-3, "report_to": "none", "save_steps": 0},
        },
        "sft": {
            "seq_len": 256,
            "train": {"max_steps": 2, "report_to": "none", "save_steps": 100},
            "stages": [
                {"name": "s1", "blend": [{"path": "runs/r/inputs/sft-inst.jsonl", "weight": 1}], "num_samples": 16}
            ],
        },
    }
    # A typo in the sft section is reported before the cpt section runs (nothing is written).
    typo = {**recipe, "sft": {**recipe["sft"], "trian": {"max_steps": 2}}}
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(typo))
    with pytest.raises(ConfigError, match=r"typo.yaml: sft: field 'trian'"):
        run_recipe(tmp_path / "typo.yaml")
    assert not (tmp_path / "runs").exists()
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    rep = run_recipe(tmp_path / "r.yaml")
    ext = json.loads((tmp_path / "runs/r/cpt/extended/config.json").read_text())
    assert ext["max_position_embeddings"] == 256 and ext["rope_parameters"]["rope_theta"] == 1e5
    assert rep["cpt"]["steps"] == 3 and rep["sft"][0]["steps"] == 2
    assert not list((tmp_path / "runs/r/cpt").glob("checkpoint-*"))  # save_steps 0: only final/
    assert list((tmp_path / "runs/r/sft/s1").glob("checkpoint-*"))
    assert rep["sft"][0]["model"].endswith("cpt/final")
    assert set(rep["timings_s"]) == {"cpt", "sft", "total"}
    from typer.testing import CliRunner

    from longkit.cli import app

    r = CliRunner().invoke(app, ["train", "sft", str(tmp_path / "r.yaml")])  # recipe section; stage already done
    assert r.exit_code == 0 and "nothing to train: every stage asked for is complete" in r.output, r.output
    # A lone SFT config (as configs/recipes/chatqa2-sft-3stage.yaml is) runs through `train recipe` too.
    lone = {**recipe["sft"], "model": "runs/r/cpt/final", "out": "runs/lone", "train": {**recipe["sft"]["train"]}}
    lone["train"]["max_steps"] = 1
    (tmp_path / "lone.yaml").write_text(yaml.safe_dump(lone))
    r = CliRunner().invoke(app, ["train", "recipe", str(tmp_path / "lone.yaml")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "runs/lone/recipe_report.json").read_text())["sft"][0]["steps"] == 1
    _check_recipe_reruns(tmp_path, recipe)
    r = CliRunner().invoke(app, ["train", "cpt", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "config file not found" in r.output
    (tmp_path / "bad.yaml").write_text("out: x\nprepare: nope\ncpt: {}\n")
    with pytest.raises(ConfigError, match="field 'prepare'"):
        run_recipe(tmp_path / "bad.yaml")


def _check_recipe_reruns(tmp_path, recipe):
    """Rerun unchanged: nothing trains; change the CPT section: CPT and every SFT stage after it train again."""
    from longkit.train.recipe import run_recipe

    final = tmp_path / "runs/r/sft/s1/final/model.safetensors"
    before = final.read_bytes()
    rep = run_recipe(tmp_path / "r.yaml")
    assert rep["cpt"]["already_complete"] and [s["already_complete"] for s in rep["sft"]] == [True]
    assert final.read_bytes() == before
    changed = {**recipe, "cpt": {**recipe["cpt"], "train": {**recipe["cpt"]["train"], "learning_rate": 5e-4}}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(changed))
    rep = run_recipe(tmp_path / "r.yaml")
    assert "already_complete" not in rep["cpt"] and rep["cpt"]["steps"] == 3
    assert [s.get("already_complete", False) for s in rep["sft"]] == [False]  # downstream of the change
    assert final.read_bytes() != before


def test_recipe_refuses_a_corpus_or_data_tokenizer_that_is_not_the_models(
    trained_tokenizer, smol_tokenizer, tmp_path, monkeypatch
):
    from longkit.data.sources import SourceSpec
    from longkit.data.tokenize import tokenize_corpus
    from longkit.train.recipe import run_recipe

    model = build_tiny_llama(trained_tokenizer, tmp_path / "m", max_positions=128)
    monkeypatch.chdir(tmp_path)
    data = {
        "tokenizer": "smollm2-135m-instruct",
        "out": "runs/r/data",
        "seq_len": 128,
        "transform": "plain",
        "separator": "eos",
        "sources": [{"path": "runs/r/inputs/corpus.jsonl"}],
    }
    recipe = {
        "out": "runs/r",
        "prepare": "python-docs",
        "cpt": {"model": str(model), "data": data, "train": {"max_steps": 1, "report_to": "none"}},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(
        ConfigError,
        match=r"field 'cpt.data.tokenizer': 'smollm2-135m-instruct' \(vocabulary 49152\) "
        r"is not the tokenizer of cpt.model",
    ):
        run_recipe(tmp_path / "r.yaml")
    assert not (tmp_path / "runs").exists()  # refused before the inputs are prepared or anything is tokenized

    # a corpus already there, tokenized with another tokenizer than the model's: refused, not trained on
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"text": "Some text to tokenize. " * 20}) + "\n")
    tokenize_corpus(
        [SourceSpec(str(docs))],
        smol_tokenizer,
        tmp_path / "runs/r2/data/corpus",
        tokenizer_name="smollm2-135m-instruct",
    )
    data2 = {**data, "tokenizer": str(model), "out": "runs/r2/data", "sources": [{"path": str(docs)}]}
    (tmp_path / "r2.yaml").write_text(yaml.safe_dump({"out": "runs/r2", "cpt": {**recipe["cpt"], "data": data2}}))
    with pytest.raises(ConfigError) as e:
        run_recipe(tmp_path / "r2.yaml")
    assert "\n" not in str(e.value) and "'smollm2-135m-instruct' (vocabulary 49152" in str(e.value)
    assert f"not with '{model}' (vocabulary 2000" in str(e.value) and not (tmp_path / "runs/r2/cpt").exists()
