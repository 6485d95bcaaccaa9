"""Embedders: the bundled sentence-transformers model and an E5-style decoder embedder on a tiny Llama."""

from __future__ import annotations

import numpy as np
import pytest

from longkit.rag.embed import DecoderEmbedder, TextTooLong, load_embedder


def test_minilm_ranks_the_relevant_topic_first(minilm, topics):
    names = list(topics)
    docs = minilm.embed_documents([topics[n] for n in names])
    assert docs.shape == (len(names), 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    q = minilm.embed_queries(
        [
            "Which statement is a null operation that does nothing?",
            "How can I remove a variable binding?",
            "How do I insert debugging assertions into a program?",
        ]
    )
    best = [names[i] for i in np.argmax(q @ docs.T, axis=1)]
    assert best == ["pass", "del", "assert"]
    assert minilm.describe()["name"] == "all-minilm-l6-v2"


def test_minilm_never_truncates_silently(minilm, topics):
    long_text = " ".join(topics.values())
    assert minilm.token_counts([long_text])[0] > minilm.max_tokens
    with pytest.raises(TextTooLong, match="reads at most 256"):
        minilm.embed_documents([long_text])
    with pytest.raises(TextTooLong, match="query 0"):
        minilm.embed_queries([long_text])
    pooled = minilm.embed_documents([long_text], pool_long=True)[0]
    windows = minilm._windows(long_text)
    assert len(windows) >= 2 and "".join("".join(windows).split()) == "".join(long_text.split())
    assert all(n <= minilm.max_tokens for n in minilm.token_counts(windows))
    manual = minilm.embed_documents(windows).sum(axis=0)
    manual /= np.linalg.norm(manual)
    assert np.allclose(pooled, manual, atol=1e-5)


def test_decoder_embedder_last_token_pooling_and_instruction(tiny_llama_dir):
    import torch

    emb = DecoderEmbedder(tiny_llama_dir, task="Find the passage", max_tokens=64, batch_size=3)
    assert emb.query_text("why?") == "Instruct: Find the passage\nQuery: why?"
    texts = ["short one", "a somewhat longer text about loops and breaks", "x", "medium length text here"]
    batched = emb.embed_documents(texts)
    assert batched.shape == (4, emb.dim)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    for text, row in zip(texts, batched):  # padding and length sorting do not change any embedding
        ids = emb.tokenizer(text, add_special_tokens=False)["input_ids"]
        seq = ([emb.bos_id] if emb.bos_id is not None else []) + ids + [emb.eos_id]
        with torch.inference_mode():
            h = emb.model(input_ids=torch.tensor([seq])).last_hidden_state[0, -1].numpy()
        assert np.allclose(row, h / np.linalg.norm(h), atol=1e-4)
    q = emb.embed_queries(["short one"])[0]
    assert not np.allclose(q, batched[0], atol=1e-3)  # the instruction is part of the query only
    with pytest.raises(TextTooLong, match="reads at most 64"):
        emb.embed_documents(["word " * 100])
    assert emb.embed_documents(["word " * 100], pool_long=True).shape == (1, emb.dim)


def test_load_embedder_specs(tiny_llama_dir):
    emb = load_embedder(f"decoder:{tiny_llama_dir}", max_tokens=32)
    assert emb.kind == "decoder" and emb.max_tokens == 32 and emb.name == f"decoder:{tiny_llama_dir}"
    assert load_embedder(str(tiny_llama_dir)).kind == "decoder"
