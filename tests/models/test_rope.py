"""RoPE extension methods on a tiny real Llama, and the minimum base against Men et al. 2024."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from longkit.errors import ConfigError
from longkit.models import rope
from longkit.testing import build_tiny_llama

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
    assert (
        cfg.rope_parameters["rope_type"]
        == {
            "abf": "default",
            "ntk": "default",
            "pi": "linear",
            "yarn": "yarn",
            "llama3": "llama3",
            "dynamic": "dynamic",
        }[method]
    )
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

    r = CliRunner().invoke(
        app,
        [
            "model",
            "extend",
            str(short_llama),
            str(tmp_path / "x"),
            "--method",
            "yarn",
            "--max-length",
            "2048",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rope_parameters"]["factor"] == 8.0
    r = CliRunner().invoke(
        app, ["model", "extend", str(short_llama), str(tmp_path / "y"), "--method", "nope", "--max-length", "2048"]
    )
    assert r.exit_code == 2 and "unknown RoPE extension method" in r.output
    r = CliRunner().invoke(app, ["model", "min-base", "--head-dim", "128", "--length", "8192", "--json"])
    assert r.exit_code == 0, r.output
    assert abs(json.loads(r.stdout)["min_base"] - 8.4e4) / 8.4e4 < 0.1


# ---------------------------------------------------------------------------------------------
# The frequencies transformers computes from the written config equal each method's own formula
# ---------------------------------------------------------------------------------------------

SMOL_BASE, SMOL_LEN, HEAD = 1e5, 8192, 64  # SmolLM2-135M: rope_theta 1e5, 8K positions, head dim 64


def _smol_like_config():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=32,
        hidden_size=HEAD * 2,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=SMOL_LEN,
        rope_theta=SMOL_BASE,
    )


def _default_inv(base: float, d: int = HEAD) -> np.ndarray:
    return 1.0 / base ** (np.arange(0, d, 2, dtype=np.float64) / d)


def _yarn_formula(base, d, factor, orig, beta_fast=32.0, beta_slow=1.0):
    """YaRN as in the authors' code (jquesnelle/yarn, scaled_rope/LlamaYaRNScaledRotaryEmbedding.py:
    _yarn_find_correction_range / _yarn_linear_ramp_mask / _yarn_get_mscale), written out here."""

    def corr_dim(rot):
        return d * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(corr_dim(beta_fast)), 0)
    high = min(math.ceil(corr_dim(beta_slow)), d - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(d // 2) - low) / (high - low), 0, 1)
    extrap = _default_inv(base, d)
    interp = extrap / factor
    keep = 1 - ramp  # 1: extrapolate (high frequencies kept), 0: interpolate
    return interp * (1 - keep) + extrap * keep, 0.1 * math.log(factor) + 1.0


def _llama3_formula(base, d, factor, orig, low_ff=1.0, high_ff=4.0):
    """Llama 3.1 scaling as in meta-llama/llama-models (models/llama3/reference_impl/model.py apply_scaling)."""
    out = []
    for f in _default_inv(base, d):
        wavelen = 2 * math.pi / f
        if wavelen < orig / high_ff:
            out.append(f)
        elif wavelen > orig / low_ff:
            out.append(f / factor)
        else:
            smooth = (orig / wavelen - low_ff) / (high_ff - low_ff)
            out.append((1 - smooth) * f / factor + smooth * f)
    return np.asarray(out)


@pytest.mark.parametrize("method", ["abf", "pi", "ntk", "dynamic", "yarn", "llama3"])
@pytest.mark.parametrize("target", [16384, 32768])
def test_transformers_frequencies_from_written_config_match_the_method(method, target):
    cfg = _smol_like_config()
    s = target / SMOL_LEN
    plan = rope.plan_extension(cfg, method, target, base=2e6 if method == "abf" else None, check_min_base=False)
    rope.apply_extension(cfg, plan)
    got, scale = rope.inv_freq_for(cfg, seq_len=target)
    if method == "abf":
        want, want_scale = _default_inv(2e6), 1.0
    elif method == "pi":  # Chen et al. 2023: positions / s  ==  frequencies / s
        want, want_scale = _default_inv(SMOL_BASE) / s, 1.0
    elif method == "ntk":  # NTK-aware: base * s^(d/(d-2))
        want, want_scale = _default_inv(SMOL_BASE * s ** (HEAD / (HEAD - 2))), 1.0
    elif method == "dynamic":  # dynamic NTK at running length L: base * (L / L0)^(d/(d-2))
        want, want_scale = _default_inv(SMOL_BASE * s ** (HEAD / (HEAD - 2))), 1.0
    elif method == "yarn":
        want, want_scale = _yarn_formula(SMOL_BASE, HEAD, s, SMOL_LEN)
    else:
        want, want_scale = _llama3_formula(SMOL_BASE, HEAD, s, SMOL_LEN), 1.0
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert scale == pytest.approx(want_scale, rel=1e-9)


def test_dynamic_ntk_base_at_32k_is_the_method_not_the_factor_squared():
    # Issue 12 item 7: writing factor = length ratio made transformers use 1.41e6 at 32K; the method gives 4.18e5.
    cfg = _smol_like_config()
    rope.apply_extension(cfg, rope.plan_extension(cfg, "dynamic", 32768))
    assert cfg.rope_parameters["factor"] == 1.0 and cfg.max_position_embeddings == SMOL_LEN
    inv, _ = rope.inv_freq_for(cfg, seq_len=32768)
    base = inv[1] ** (-HEAD / 2)
    assert base == pytest.approx(SMOL_BASE * 4 ** (64 / 62), rel=1e-6) and round(base, -3) == 418000
    # Inside the original window dynamic NTK leaves RoPE alone, and the model's rotary module grows the base
    # the same way when a sequence passes the window (transformers' own runtime update).
    np.testing.assert_allclose(rope.inv_freq_for(cfg, seq_len=4096)[0], _default_inv(SMOL_BASE), rtol=1e-6)
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    emb = LlamaRotaryEmbedding(cfg)
    x = torch.zeros(1, 1, HEAD)
    emb(x, torch.arange(32768)[None])
    np.testing.assert_allclose(emb.inv_freq.double().numpy(), _default_inv(SMOL_BASE * 4 ** (64 / 62)), rtol=1e-5)


def test_min_base_report_gives_both_criteria_and_refuses_absurd_lengths():
    r = rope.min_base_report(128, 4096)
    assert r.smallest_feasible == rope.min_base(128, 4096) <= r.stable
    # Feasible at both answers; the grid step below the smallest feasible one fails.
    assert rope.first_negative(r.smallest_feasible, 128, 4096) >= 4096
    assert rope.first_negative(r.stable, 128, 4096) >= 4096
    assert rope.first_negative(r.smallest_feasible * (1 - 0.002), 128, 4096) < 4096
    # Every grid base from the stable answer up to 4x is feasible, and the one just below it is not.
    for k in range(0, int(math.log(4) / 0.002), 37):
        assert rope.first_negative(r.stable * math.exp(k * 0.002), 128, 4096) >= 4096
    assert rope.first_negative(r.stable * (1 - 0.002), 128, 4096) < 4096
    d = r.as_dict()
    assert d["min_base"] == r.smallest_feasible and d["stable_min_base"] == r.stable and "criterion" in d
    for bad in (10**15, rope.MAX_MIN_BASE_LENGTH + 1):
        with pytest.raises(ConfigError, match="--length must be <="):
            rope.min_base(128, bad)


def test_cli_min_base_reports_both_values_and_refuses_1e15_at_once():
    from typer.testing import CliRunner

    from longkit.cli import app

    r = CliRunner().invoke(app, ["model", "min-base", "--head-dim", "128", "--length", "1e15"])
    assert r.exit_code == 2 and r.output.count("error:") == 1 and "--length must be <=" in r.output
    r = CliRunner().invoke(app, ["model", "min-base", "--head-dim", "64", "--length", "4096"])
    assert r.exit_code == 0 and "smallest feasible" in r.output and "stable" in r.output
