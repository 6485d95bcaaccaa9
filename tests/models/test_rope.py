"""RoPE extension methods on a tiny real Llama, and the minimum base against Men et al. 2024."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from longkit.testing import build_tiny_llama
from longkit.errors import ConfigError
from longkit.models import rope

# Men et al. 2024, Figure 1 / Table: head dim 128.
PAPER_MIN_BASE = {4096: 2.7e4, 8192: 8.4e4, 32768: 6.4e5, 65536: 2.1e6, 131072: 7.8e6}


@pytest.mark.parametrize("length", sorted(PAPER_MIN_BASE))
def test_min_base_matches_paper(length):
    got = rope.min_base(128, length)
    assert abs(got - PAPER_MIN_BASE[length]) / PAPER_MIN_BASE[length] < 0.10, got
    # The answer is feasible and the grid step just below it is not.
    assert rope.first_negative(got, 128, length) >= length
    assert rope.first_negative(got * (1 - 0.002), 128, length) < length


def test_first_negative_agrees_with_direct_sum():
    for base in (1e4, 6.4e5, 2.0e6):
        direct = rope.long_term_decay(base, 128, 40000)
        neg = np.nonzero(direct < 0)[0]
        expect = int(neg[0]) if neg.size else 40000
        assert rope.first_negative(base, 128, 40000) == expect


def test_feasibility_is_not_monotonic_in_base():
    # The reason min_base scans instead of bisecting: a larger base can fail earlier.
    assert rope.first_negative(5.0e6, 128, 131072) < rope.first_negative(4.9e6, 128, 131072)


def test_min_base_rejects_bad_input():
    with pytest.raises(ConfigError, match="head-dim"):
        rope.min_base(127, 4096)
    with pytest.raises(ConfigError, match="length"):
        rope.min_base(128, 1)


@pytest.fixture(scope="module")
def short_llama(smol_tokenizer, tmp_path_factory):
    return build_tiny_llama(smol_tokenizer, tmp_path_factory.mktemp("rope-llama"), max_positions=256)


def _reload(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path)


@pytest.mark.parametrize("method", ["abf", "pi", "ntk", "yarn", "llama3", "dynamic"])
def test_extend_each_method_saves_a_loadable_checkpoint(method, short_llama, tmp_path):
    base = 2e5 if method == "abf" else None
    plan = rope.extend_model(str(short_llama), tmp_path / method, method, 1024, base=base)
    model = _reload(tmp_path / method)
    cfg = model.config
    assert cfg.max_position_embeddings == (256 if method == "dynamic" else 1024)
    assert cfg.rope_parameters["rope_type"] == {"abf": "default", "ntk": "default", "pi": "linear",
                                                "yarn": "yarn", "llama3": "llama3", "dynamic": "dynamic"}[method]
    d = rope.head_dim_of(cfg)
    orig = 1.0 / (1e4 ** (np.arange(0, d, 2) / d))
    inv = model.model.rotary_emb.inv_freq.double().numpy()
    if method == "abf":
        np.testing.assert_allclose(inv, 1.0 / (2e5 ** (np.arange(0, d, 2) / d)), rtol=1e-5)
    elif method == "pi":
        np.testing.assert_allclose(inv, orig / 4, rtol=1e-5)
    elif method == "ntk":
        np.testing.assert_allclose(plan.effective_base, 1e4 * 4 ** (d / (d - 2)))
        assert inv[0] == pytest.approx(1.0) and inv[-1] == pytest.approx(orig[-1] / 4, rel=1e-4)
    elif method in ("yarn", "llama3"):
        # Highest frequency kept, lowest interpolated by the factor.
        assert inv[0] == pytest.approx(orig[0], rel=1e-4)
        assert inv[-1] == pytest.approx(orig[-1] / 4, rel=1e-3)
    # Runs a forward pass past the original length.
    ids = torch.randint(0, 1000, (1, 600))
    with torch.no_grad():
        out = model(input_ids=ids)
    assert torch.isfinite(out.logits).all()


def test_extend_rejects_bad_requests(short_llama, tmp_path):
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(short_llama)
    with pytest.raises(ConfigError, match="unknown RoPE extension method 'rope9'"):
        rope.plan_extension(cfg, "rope9", 1024)
    with pytest.raises(ConfigError, match="below the model's current length 256"):
        rope.plan_extension(cfg, "pi", 128)
    with pytest.raises(ConfigError, match="needs --base"):
        rope.plan_extension(cfg, "abf", 1024)
    plan = rope.plan_extension(cfg, "abf", 4096, base=2e3)
    assert plan.min_base and plan.warnings and "below the minimum base" in plan.warnings[0]
    assert rope.plan_extension(cfg, "abf", 1024, base=plan.min_base * 10).warnings == []


def test_cli_extend_and_min_base(short_llama, tmp_path):
    from typer.testing import CliRunner

    from longkit.cli import app

    r = CliRunner().invoke(app, ["model", "extend", str(short_llama), str(tmp_path / "x"), "--method", "yarn",
                                 "--max-length", "2048", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rope_parameters"]["factor"] == 8.0
    r = CliRunner().invoke(app, ["model", "extend", str(short_llama), str(tmp_path / "y"), "--method", "nope",
                                 "--max-length", "2048"])
    assert r.exit_code == 2 and "unknown RoPE extension method" in r.output
    r = CliRunner().invoke(app, ["model", "min-base", "--head-dim", "128", "--length", "8192", "--json"])
    assert r.exit_code == 0, r.output
    assert abs(json.loads(r.stdout)["min_base"] - 8.4e4) / 8.4e4 < 0.1
