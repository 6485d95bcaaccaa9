"""`longkit train plan`: parameter count, memory terms, context-parallel choice, RoPE verdict, the CLI end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from longkit.cli import app
from longkit.errors import ConfigError
from longkit.train.plan import parse_memory
from longkit.train.plan_memory import GIB, MemorySetting, ModelShape, memory_breakdown, smallest_cp

ROOT = Path(__file__).resolve().parents[2]
# Llama-3-8B / Llama-3.1-8B's published shape (config.json of meta-llama/Meta-Llama-3-8B)
LLAMA3_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
    "rms_norm_eps": 1e-05,
}
SHAPE = ModelShape.from_config(LLAMA3_8B)


def _setting(**kw: object) -> MemorySetting:
    base = dict(seq_len=8192, precision="bf16", loss_chunk_size=4096, sharding="fsdp", gpus=8)
    return MemorySetting(**{**base, **kw})  # type: ignore[arg-type]


def test_parameter_count_matches_real_models(tiny_llama_dir):
    from transformers import AutoConfig, AutoModelForCausalLM, Qwen2Config

    for cfg in (
        AutoConfig.from_pretrained(tiny_llama_dir),
        # untied, GQA, biases on q/k/v (Qwen2 has them without an attention_bias key)
        Qwen2Config(
            vocab_size=300,
            hidden_size=64,
            intermediate_size=160,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            tie_word_embeddings=False,
        ),
    ):
        model = AutoModelForCausalLM.from_config(cfg)
        assert ModelShape.from_config(cfg.to_dict()).parameters() == sum(p.numel() for p in model.parameters())


def test_llama3_8b_parameter_count():
    assert SHAPE.parameters() == 8_030_261_248  # the published 8.03B


def test_bundled_smollm2_parameter_count():
    from longkit.models.load import load_model
    from longkit.train.plan import read_model_config

    cfg, _ = read_model_config("smollm2-135m-instruct")
    model, _ = load_model("smollm2-135m-instruct")
    assert ModelShape.from_config(cfg).parameters() == sum(p.numel() for p in model.parameters())


def test_state_shards_under_fsdp_and_zero3_not_ddp():
    one = memory_breakdown(SHAPE, _setting(gpus=1))
    for sharding in ("fsdp", "zero3"):
        eight = memory_breakdown(SHAPE, _setting(gpus=8, sharding=sharding))
        for k in ("gradients", "optimizer"):
            assert eight[k] == pytest.approx(one[k] / 8, rel=1e-6)
    fsdp8 = memory_breakdown(SHAPE, _setting(gpus=8, sharding="fsdp"))
    assert fsdp8["parameters"] == pytest.approx(one["parameters"] / 8, rel=1e-6)
    ddp8 = memory_breakdown(SHAPE, _setting(gpus=8, sharding="ddp"))
    for k in ("parameters", "gradients", "optimizer"):
        assert ddp8[k] == one[k]
    assert ddp8["ddp_buckets"] == one["gradients"]  # a second float32 copy of the gradients
    zero2 = memory_breakdown(SHAPE, _setting(gpus=8, sharding="zero2"))
    assert zero2["optimizer"] == fsdp8["optimizer"] and zero2["parameters"] > fsdp8["parameters"]


def test_master_weights_and_adam_are_16_bytes_per_parameter():
    t = memory_breakdown(SHAPE, _setting(gpus=1))
    assert t["parameters"] + t["gradients"] + t["optimizer"] == 16 * SHAPE.parameters()


def test_activations_linear_in_seq_len_and_smaller_with_checkpointing():
    a = memory_breakdown(SHAPE, _setting(seq_len=8192))
    b = memory_breakdown(SHAPE, _setting(seq_len=16384))
    for k in ("activations_no_checkpointing", "activations_checkpointing"):
        assert b[k] == 2 * a[k]
    assert a["activations_checkpointing"] < a["activations_no_checkpointing"] / 5
    on = memory_breakdown(SHAPE, _setting(gradient_checkpointing=True))
    assert on["activations"] == on["activations_checkpointing"] and on["total"] < a["total"]


def test_logits_bounded_by_loss_chunk():
    short = memory_breakdown(SHAPE, _setting(seq_len=2048))
    long = memory_breakdown(SHAPE, _setting(seq_len=131072))
    assert long["logits_chunked"] == memory_breakdown(SHAPE, _setting(seq_len=65536))["logits_chunked"]
    assert short["logits_chunked"] == short["logits_unchunked"]  # the chunk is longer than the sequence
    assert long["logits_unchunked"] == 32 * long["logits_chunked"]
    half = memory_breakdown(SHAPE, _setting(seq_len=131072, loss_chunk_size=2048))
    assert half["logits_chunked"] * 2 == long["logits_chunked"]


def test_smallest_cp_constructed_case():
    s = _setting(seq_len=131072, gradient_checkpointing=True)
    totals = {cp: memory_breakdown(SHAPE, replace(s, cp=cp))["total"] for cp in (1, 2, 4, 8)}
    assert totals[1] > totals[2] > totals[4] > totals[8]
    budget = (totals[2] + totals[4]) // 2  # between cp 2 and cp 4: the answer is 4
    cp, tried = smallest_cp(SHAPE, s, budget)
    assert cp == 4 and list(tried) == [1, 2, 4]
    assert smallest_cp(SHAPE, s, totals[1])[0] == 1
    assert smallest_cp(SHAPE, s, totals[8] - 1)[0] is None
    assert smallest_cp(SHAPE, replace(s, gpus=6), budget)[1].keys() == {1, 2}  # 4 does not divide 6


def test_parse_memory():
    assert parse_memory("80GiB") == 80 * GIB
    assert parse_memory("80GB") == 80 * 10**9
    assert parse_memory("141G") == 141 * GIB
    assert parse_memory("81920MiB") == 80 * GIB
    assert parse_memory("80") == 80 * GIB
    for bad in ("abc", "-1GiB", "0", "1e9TiB", "80XB", ""):
        with pytest.raises(ConfigError):
            parse_memory(bad)


# ------------------------------------------------------------------------------------------------------------
# The CLI
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama8b_cpt(tmp_path_factory) -> Path:
    """chatqa2-cpt.yaml with its model pointed at a local directory holding Llama-3-8B's config.json."""
    tmp = tmp_path_factory.mktemp("plan-cpt")
    (tmp / "llama3-8b").mkdir()
    (tmp / "llama3-8b" / "config.json").write_text(json.dumps(LLAMA3_8B))
    cfg = yaml.safe_load((ROOT / "configs" / "recipes" / "chatqa2-cpt.yaml").read_text())
    cfg["model"] = str(tmp / "llama3-8b")
    cfg["out"] = str(tmp / "run")
    cfg["data"]["tokenizer"] = "smollm2-135m-instruct"
    cfg["data"]["sources"] = [{"path": str(tmp / "docs.jsonl")}]
    cfg["data"]["out"] = str(tmp / "data")
    with open(tmp / "docs.jsonl", "w") as fh:  # two sources, one with a document past 32K tokens
        fh.write(json.dumps({"text": "word " * 40000, "source": "books"}) + "\n")
        for i in range(30):
            fh.write(json.dumps({"text": f"short document {i} " * 50, "source": "web"}) + "\n")
    path = tmp / "cpt.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(*args: str):
    return CliRunner().invoke(app, ["train", "plan", *args])


def test_cli_cpt_plan_writes_all_sections(llama8b_cpt):
    res = _run(str(llama8b_cpt), "--gpus", "8", "--gpu-memory", "80GiB")
    assert res.exit_code == 0, res.output
    plan = json.loads((llama8b_cpt.parent / "run" / "plan.json").read_text())
    assert {"model", "rope", "data", "phases", "totals", "commands", "hardware"} <= set(plan)
    assert plan["model"]["parameters"] == 8_030_261_248
    assert plan["rope"]["verdict"] == "clears" and plan["rope"]["target_length"] == 131072
    data = plan["data"]
    assert data["method"] == "sample" and set(data["sources"]) == {"books", "web"}
    assert 0 < data["long_token_share"] < 1
    ph = plan["phases"][0]
    assert ph["memory"]["context_parallel"] in (2, 4, 8)
    assert ph["tokens"]["per_step"] == 131072 * 4 * (8 // ph["memory"]["context_parallel"])
    assert ph["time"]["seconds"] > 0
    run = plan["commands"]["run"]
    assert run[0].startswith("longkit data build") and "--num_processes 8" in run[-1]
    assert "fsdp-context-parallel.yaml" in plan["commands"]["accelerate_config"]
    assert "rope" in res.output and "fits at context parallel" in res.output


def test_cli_reuses_built_corpus(llama8b_cpt, tmp_path):
    """With a corpus store present, the mix comes from its metadata (not a sample)."""
    import numpy as np

    cfg = yaml.safe_load(llama8b_cpt.read_text())
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    np.save(corpus / "offsets.npy", np.array([0, 40000, 40100, 40200], dtype=np.int64))
    np.save(corpus / "doc_source.npy", np.array([0, 1, 1], dtype=np.int32))
    (corpus / "sources.json").write_text(json.dumps(["books", "web"]))
    cfg["corpus"] = str(corpus)
    path = tmp_path / "cpt.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "p.json"
    assert _run(str(path), "--gpus", "8", "--gpu-memory", "80GiB", "--json", str(out)).exit_code == 0
    data = json.loads(out.read_text())["data"]
    assert data["method"] == "corpus" and data["corpus_built"] and data["docs"] > 0
    assert "longkit data build" not in " ".join(json.loads(out.read_text())["commands"]["run"])


def test_cli_smoke_recipe_with_bundled_model(tmp_path):
    out = tmp_path / "smoke.json"
    res = _run(
        str(ROOT / "configs" / "recipes" / "smoke.yaml"), "--gpus", "1", "--gpu-memory", "24GB", "--json", str(out)
    )
    assert res.exit_code == 0, res.output
    plan = json.loads(out.read_text())
    assert plan["kind"] == "recipe" and [p["name"] for p in plan["phases"]][0] == "cpt"
    assert len(plan["phases"]) == 4  # cpt + 3 SFT stages (their model, the CPT output, takes the CPT shape)
    assert plan["rope"]["verdict"] == "clears" and plan["rope"]["min_base"] == pytest.approx(1.36e6, rel=0.01)
    assert plan["data"]["method"] == "sample"  # from the recipe's prepare step, in a temporary directory
    assert plan["commands"]["run"][-1] == f"longkit train recipe {ROOT / 'configs' / 'recipes' / 'smoke.yaml'}"


def test_rope_verdict_below(llama8b_cpt, tmp_path):
    cfg = yaml.safe_load(llama8b_cpt.read_text())
    cfg["extend"]["base"] = 1.0e6  # min-base for 128K at head dim 128 is ~8.2e6
    path = tmp_path / "low.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "p.json"
    assert _run(str(path), "--gpus", "8", "--gpu-memory", "80GiB", "--json", str(out)).exit_code == 0
    rope = json.loads(out.read_text())["rope"]
    assert rope["verdict"] == "below" and rope["base"] < rope["min_base"]


def test_cli_hub_source_not_cached_is_reported(llama8b_cpt, tmp_path):
    cfg = yaml.safe_load(llama8b_cpt.read_text())
    cfg["data"]["sources"] = [{"path": "someorg/not-a-cached-dataset", "type": "hf"}]
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "p.json"
    assert _run(str(path), "--gpus", "8", "--gpu-memory", "80GiB", "--json", str(out)).exit_code == 0
    data = json.loads(out.read_text())["data"]
    assert data["method"] == "unavailable" and "someorg/not-a-cached-dataset" in data["reason"]


@pytest.mark.parametrize(
    "args",
    [
        ["--gpus", "0", "--gpu-memory", "80GiB"],
        ["--gpus", "-2", "--gpu-memory", "80GiB"],
        ["--gpus", "200000", "--gpu-memory", "80GiB"],
        ["--gpus", "8", "--gpu-memory", "0"],
        ["--gpus", "8", "--gpu-memory", "abc"],
        ["--gpus", "8", "--gpu-memory", "-1GiB"],
        ["--gpus", "8", "--gpu-memory", "1e9TiB"],
        ["--gpus", "8", "--gpu-memory", "80GiB", "--mfu", "0"],
        ["--gpus", "8", "--gpu-memory", "80GiB", "--mfu", "1.5"],
        ["--gpus", "8", "--gpu-memory", "80GiB", "--sharding", "zero1"],
    ],
)
def test_cli_bad_options(llama8b_cpt, tmp_path, args):
    out = tmp_path / "sub" / "p.json"
    res = _run(str(llama8b_cpt), *args, "--json", str(out))
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not out.parent.exists()


def test_cli_unreadable_model_config(tmp_path, llama8b_cpt):
    cfg = yaml.safe_load(llama8b_cpt.read_text())
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    out = tmp_path / "p.json"
    for model in (str(broken), str(tmp_path / "missing-model"), "meta-llama/Not-Cached-Model"):
        cfg["model"] = model
        path = tmp_path / "m.yaml"
        path.write_text(yaml.safe_dump(cfg))
        res = _run(str(path), "--gpus", "8", "--gpu-memory", "80GiB", "--json", str(out))
        assert res.exit_code == 2, res.output
        assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
        assert not out.exists()
