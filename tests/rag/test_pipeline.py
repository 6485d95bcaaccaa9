"""Indexing (resume, overflow policies, bad files), retrieval (budget, order, turns), prompts, the
pipeline on a tiny real model. (The RAG-versus-long-context sweep is tested in tests/eval/test_rag_vs_long.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from longkit.errors import InputError
from longkit.rag.build import chunking_record, index_documents, open_or_create
from longkit.rag.chunk import ChunkConfig
from longkit.rag.embed import TextTooLong
from longkit.rag.retrieve import Retriever, query_from_messages
from longkit.rag.sources import iter_documents

CFG = ChunkConfig(size=60, overlap=0)


def _build(path, minilm, docs, cfg=CFG, on_overflow="error", commit_every=1):
    index = open_or_create(path, minilm, chunking_record(cfg, "embedder", on_overflow))
    stats = index_documents(index, docs, minilm, cfg, on_overflow=on_overflow, commit_every=commit_every)
    return index, stats


def test_index_resumes_after_interruption_and_reopens_without_embedding(tmp_path, minilm, topics):
    docs = list(topics.items())

    def interrupted():
        for i, d in enumerate(docs):
            if i == 4:
                raise KeyboardInterrupt
            yield d

    with pytest.raises(KeyboardInterrupt):
        _build(tmp_path / "ix", minilm, interrupted())
    partial = Retriever.open(tmp_path / "ix", minilm).index
    assert set(partial.doc_rows()) == {d for d, _ in docs[:4]}

    index, stats = _build(tmp_path / "ix", minilm, docs)
    assert (stats.skipped, stats.added, stats.replaced) == (4, 3, 0)
    assert set(index.doc_rows()) == set(topics)
    # a fresh build gives the same vectors (nothing was embedded twice or lost)
    fresh, _ = _build(tmp_path / "fresh", minilm, docs, commit_every=100)

    def order(ix):
        return np.lexsort((ix.n_tokens(), [ix.chunk(r).doc_id + f"{ix.chunk(r).position:04d}" for r in range(len(ix))]))

    assert np.allclose(index._vectors[order(index)], fresh._vectors[order(fresh)], atol=1e-5)

    changed = dict(docs)
    changed["pass"] = "The pass statement was rewritten for this test. It does nothing at all."
    _, stats = _build(tmp_path / "ix", minilm, changed.items())
    assert (stats.skipped, stats.replaced) == (6, 1)

    r = Retriever.open(tmp_path / "ix")  # the embedder named in the manifest
    hits = r.search("Which statement was rewritten for this test?", k=3)
    assert hits[0].chunk.doc_id == "pass" and "rewritten" in hits[0].chunk.text


def test_overflow_policies_never_truncate(tmp_path, minilm, topics):
    text = "\n\n".join(topics.values())
    big = ChunkConfig(size=400, overlap=0)
    with pytest.raises(TextTooLong, match="chunk 0 is .* tokens .* reads at most 256"):
        _build(tmp_path / "e", minilm, [("all", text)], cfg=big)
    index, stats = _build(tmp_path / "s", minilm, [("all", text)], cfg=big, on_overflow="split")
    assert stats.resplit >= 1
    chunks = [index.chunk(i) for i in range(len(index))]
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert max(minilm.token_counts([c.text for c in chunks])) <= minilm.max_tokens
    assert "".join("".join(c.text for c in chunks).split()) == "".join(text.split())
    index, stats = _build(tmp_path / "p", minilm, [("all", text)], cfg=big, on_overflow="pool")
    assert stats.pooled >= 1 and max(index.n_tokens()) > 256


def test_bad_documents_are_named(tmp_path, minilm):
    (tmp_path / "bin.txt").write_bytes(b"abc\x00def")
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(InputError, match="bin.txt: binary file"):
        list(iter_documents([tmp_path / "bin.txt"]))
    with pytest.raises(InputError, match=r"latin.txt:1: not valid UTF-8 \(byte 0xe9\)"):
        list(iter_documents([tmp_path / "latin.txt"]))
    index, stats = _build(tmp_path / "ix", minilm, iter_documents([tmp_path / "empty.txt"]))
    assert (stats.empty, stats.added, len(index)) == (1, 0, 0)  # counted, not indexed (the CLI refuses it)
    with pytest.raises(InputError, match="appears twice"):
        _build(tmp_path / "ix2", minilm, [("a", "one"), ("a", "two")])
    with pytest.raises(InputError, match="--chunk-size: this index was built with 60, not 30"):
        _build(tmp_path / "ix2", minilm, [("b", "three")], cfg=ChunkConfig(size=30))


def test_budget_order_and_turns(tmp_path, minilm, topics):
    index, _ = _build(tmp_path / "ix", minilm, list(topics.items()), cfg=ChunkConfig(size=40))
    r = Retriever(index, minilm)
    q = "How does the while loop work with break and continue?"
    by_score = r.search(q, k=6)
    assert [h.rank for h in by_score] == list(range(6))
    assert all(a.score >= b.score for a, b in zip(by_score, by_score[1:]))
    by_pos = r.search(q, k=6, order="position")
    assert sorted(by_pos, key=lambda h: h.rank) == by_score
    docs_seen = []
    for h in by_pos:  # grouped by document in order of best hit, positions ascending inside
        if not docs_seen or docs_seen[-1] != h.chunk.doc_id:
            assert h.chunk.doc_id not in docs_seen
            docs_seen.append(h.chunk.doc_id)
    for a, b in zip(by_pos, by_pos[1:]):
        if a.chunk.doc_id == b.chunk.doc_id:
            assert a.chunk.position < b.chunk.position
    budget = r.search(q, token_budget=100)
    assert sum(h.chunk.n_tokens for h in budget) <= 100
    assert [h.row for h in budget] == [h.row for h in by_score[: len(budget)]]
    assert len(budget) < len(r.search(q, token_budget=200))

    turns = [
        {"role": "user", "content": "Tell me about the global statement."},
        {"role": "assistant", "content": "It declares names global."},
        {"role": "user", "content": "Can it appear after the name is used?"},
    ]
    assert query_from_messages(turns) == "Tell me about the global statement.\nCan it appear after the name is used?"
    assert query_from_messages(turns, turns=1) == "Can it appear after the name is used?"
    assert r.search(turns, k=1)[0].chunk.doc_id == "global"
    with pytest.raises(TextTooLong, match="query 0"):
        r.search("why " * 400, k=1)


def test_pipeline_prompt_window_and_answer(tmp_path, minilm, topics, tiny_backend):
    from longkit.backends.hf import HFBackend
    from longkit.rag.pipeline import RagPipeline, RagSettings
    from longkit.rag.prompt import CHATQA_SYSTEM

    _build(tmp_path / "ix", minilm, list(topics.items()), cfg=ChunkConfig(size=40))
    assert RagPipeline.from_index(tmp_path / "ix", tiny_backend, top_k=3).settings.style == "chat"  # auto: chat model
    pipe = RagPipeline.from_index(tmp_path / "ix", tiny_backend, top_k=3, max_new_tokens=4, style="chatqa")
    prep = pipe.prepare("What does the del statement do?")
    prompt = prep.request.prompt
    assert prompt.startswith(f"System: {CHATQA_SYSTEM}\n\n")
    assert prompt.endswith("What does the del statement do?\n\nAssistant:")
    assert [h.chunk.text in prompt for h in prep.hits] == [True] * 3
    assert "User: Answer the following question with a short span. What does" in prompt
    ans = pipe.answer("What does the del statement do?")
    assert isinstance(ans.text, str) and len(ans.hits) == 3
    assert ans.to_dict()["citations"][0]["doc_id"] == ans.hits[0].chunk.doc_id

    small = HFBackend(tiny_backend.model, tiny_backend.hf_tokenizer, max_context=200)
    tight = RagPipeline(pipe.retriever, small, RagSettings(top_k=7, max_new_tokens=8, style="chatqa"))
    prep = tight.prepare("What does the del statement do?")
    assert prep.dropped > 0 and len(prep.hits) + prep.dropped == 7
    assert small.tokenizer.count(small.tokenizer.render(prep.request)) <= 200 - 8
    with pytest.raises(InputError, match="leave no room for context"):
        tight.prepare("Why? " * 300)
    chat = RagPipeline(pipe.retriever, tiny_backend, RagSettings(top_k=2, style="chat", max_new_tokens=4))
    msgs = chat.prepare(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "What does del do?"},
        ]
    ).request.messages
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"] and "Context:" in msgs[-1]["content"]
