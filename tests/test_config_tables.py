"""Tables defined once and read everywhere: the token limit, the RoPE methods, the backend options."""

from __future__ import annotations

import re

import pytest

from longkit.backends.registry import backend_names
from longkit.errors import ConfigError
from longkit.limits import MAX_TOKENS
from longkit.models.rope import METHODS


def _error_line(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    """Exit status and the one stderr line of `longkit ARGV`, run in-process."""
    from longkit.cli import run

    monkeypatch.delenv("LONGKIT_DEBUG", raising=False)
    code = run(argv)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return code, lines[0]


def test_train_config_refuses_an_unknown_rope_method_listing_exactly_the_table():
    from longkit.train.config import ExtendSpec

    for method in METHODS:
        assert ExtendSpec(method=method, max_length=1024).method == method
    assert ExtendSpec(method="linear", max_length=1024).method == "pi"  # rope's aliases are accepted too
    with pytest.raises(ConfigError) as info:
        from longkit.config import validate

        validate(ExtendSpec, {"method": "stretch", "max_length": 1024}, source="cpt.yaml")
    listed = re.search(r"expected one of: ([^)]*)\)", str(info.value)).group(1)
    assert listed.split(", ") == list(METHODS)
    assert str(info.value).startswith("cpt.yaml: field 'method': unknown RoPE extension method 'stretch'")


def test_model_extend_help_lists_the_rope_methods(capsys, monkeypatch):
    from longkit.cli import run

    monkeypatch.setenv("COLUMNS", "300")
    run(["model", "extend", "--help"])
    assert " | ".join(METHODS) in " ".join(capsys.readouterr().out.split())


def test_one_token_limit_everywhere(tmp_path):
    from longkit.config import validate
    from longkit.eval.needle_run import NeedleRunConfig
    from longkit.sft.synth import SynthOptions, validate_options
    from longkit.train.config import ExtendSpec, SFTConfig

    assert MAX_TOKENS == 1 << 24
    validate_options(SynthOptions(lengths=(MAX_TOKENS,)))
    with pytest.raises(ConfigError, match=str(MAX_TOKENS)):
        validate_options(SynthOptions(lengths=(MAX_TOKENS + 1,)))
    assert NeedleRunConfig(lengths=[MAX_TOKENS]).lengths == [MAX_TOKENS]
    with pytest.raises(ConfigError, match=f"{MAX_TOKENS:,}"):
        NeedleRunConfig(lengths=[MAX_TOKENS + 1])
    assert ExtendSpec(max_length=MAX_TOKENS).max_length == MAX_TOKENS
    base = {"model": "m", "out": str(tmp_path / "o"), "stages": [{"name": "a", "blend": [{"path": "x", "weight": 1}]}]}
    with pytest.raises(ConfigError, match=f"field 'seq_len': Input should be less than or equal to {MAX_TOKENS}"):
        validate(SFTConfig, {**base, "seq_len": MAX_TOKENS + 1}, source="sft.yaml")


def test_model_extend_refuses_lengths_past_the_limit(capsys, monkeypatch):
    code, line = _error_line(
        ["model", "extend", "smollm2-135m-instruct", "out", "--max-length", str(MAX_TOKENS + 1), "--base", "1e6"],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "--max-length" in line and str(MAX_TOKENS) in line


@pytest.mark.parametrize("command", [["eval", "passkey"], ["eval", "niah"], ["rag", "ask", "ix", "q"]])
def test_shared_backend_option_refuses_an_unknown_backend_in_one_line(command, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, line = _error_line([*command, "--backend", "nope"], capsys, monkeypatch)
    assert code == 2
    assert line == f"error: unknown backend 'nope' for --backend (expected one of: {', '.join(backend_names())})"


@pytest.mark.parametrize("command", [["eval", "passkey"], ["rag", "ask"], ["rag", "tune"], ["eval", "rag-vs-long"]])
def test_backend_option_help_is_shared_and_lists_the_registry(command, capsys, monkeypatch):
    from longkit.cli import run
    from longkit.cli_backend import API_KEY_HELP, BACKEND_HELP, BASE_URL_HELP

    monkeypatch.setenv("COLUMNS", "400")
    run([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert " | ".join(backend_names()) in BACKEND_HELP
    for phrase in (BACKEND_HELP, BASE_URL_HELP, API_KEY_HELP):
        assert " ".join(phrase.split()) in text


def test_backend_spec_from_options():
    from longkit.backends.spec import BackendSpec
    from longkit.cli_backend import backend_spec

    spec = backend_spec("openai", None, "http://127.0.0.1:1/v1", batch_size=4)
    assert isinstance(spec, BackendSpec) and spec.model is None and spec.batch_size == 4
    with pytest.raises(ConfigError, match=r"^--max-context: Input should be greater than or equal to 16$"):
        backend_spec("hf", "m", max_context=3)
    with pytest.raises(ConfigError, match=r"for --backend \(expected one of"):
        backend_spec("tgi", "m")


def test_needle_run_config_is_a_backend_spec(tmp_path):
    from longkit.backends.spec import BackendSpec
    from longkit.config import load_config
    from longkit.eval.needle_run import NeedleRunConfig
    from longkit.models.defaults import DEFAULT_GENERATOR

    cfg = NeedleRunConfig()
    assert isinstance(cfg, BackendSpec) and cfg.model == DEFAULT_GENERATOR and cfg.backend == "hf"
    path = tmp_path / "n.yaml"
    path.write_text(
        "backend: openai\nbase_url: http://127.0.0.1:9/v1\ntokenizer: t\nbatch_size: 0\njudge_backend: tgi\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(NeedleRunConfig, path)
    msg = str(info.value)
    assert "field 'batch_size' (line 4): Input should be greater than or equal to 1" in msg
    assert "field 'judge_backend' (line 5): unknown backend 'tgi'" in msg
