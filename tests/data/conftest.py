"""Fixtures for the data tests: private copies of the real tokenizers (UtK adds tokens to them)."""

from __future__ import annotations

import copy

import numpy as np
import pytest


@pytest.fixture(scope="session")
def prose_docs(smol_tokenizer) -> list[np.ndarray]:
    """Python's documentation topics tokenized with SmolLM2: real documents of varied length."""
    from pydoc_data.topics import topics

    keys = sorted(topics)[:120]
    ids = smol_tokenizer([topics[k] for k in keys], add_special_tokens=False)["input_ids"]
    return [np.asarray(x, dtype=np.int32) for x in ids]


@pytest.fixture()
def smol_copy(smol_tokenizer):
    """A private copy of the SmolLM2 tokenizer that a test may add special tokens to."""
    return copy.deepcopy(smol_tokenizer)


@pytest.fixture()
def bpe_copy(trained_tokenizer):
    """A private copy of the BPE tokenizer trained in the test session."""
    return copy.deepcopy(trained_tokenizer)


@pytest.fixture(scope="session")
def topics_jsonl(tmp_path_factory):
    """Python's documentation topics as a JSONL corpus with two sources (reference / other)."""
    import json
    from pydoc_data.topics import topics

    path = tmp_path_factory.mktemp("corpus") / "topics.jsonl"
    with path.open("w") as fh:
        for k in sorted(topics):
            src = "reference" if k[:1] in "abcdefghijklm" else "other"
            fh.write(json.dumps({"text": topics[k], "source": src, "id": k}) + "\n")
    return path


@pytest.fixture(scope="session")
def topics_corpus(topics_jsonl, smol_tokenizer, tmp_path_factory):
    """The topics JSONL tokenized once with SmolLM2 into a corpus store."""
    from longkit.data.sources import SourceSpec
    from longkit.data.tokenize import tokenize_corpus

    out = tmp_path_factory.mktemp("tok") / "corpus"
    return tokenize_corpus([SourceSpec(str(topics_jsonl))], smol_tokenizer, out, tokenizer_name="smollm2")
