"""`longkit serve --index`: the chat endpoint retrieves, prompts in the ChatQA format and cites chunks, streamed too."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from longkit.rag.build import chunking_record, index_documents, open_or_create
from longkit.rag.chunk import ChunkConfig
from longkit.rag.pipeline import RagPipeline
from longkit.serve.app import create_app

BODY = {
    "messages": [
        {"role": "user", "content": "Tell me about the del statement."},
        {"role": "assistant", "content": "It deletes things."},
        {"role": "user", "content": "What happens if the name is unbound?"},
    ],
    "max_tokens": 3,
}


def test_chat_with_retrieval_returns_citations(tmp_path, minilm, topics, tiny_backend):
    cfg = ChunkConfig(size=50)
    index = open_or_create(tmp_path / "ix", minilm, chunking_record(cfg, "embedder", "error"))
    index_documents(index, list(topics.items()), minilm, cfg)
    rag = RagPipeline.from_index(tmp_path / "ix", tiny_backend, embedder=minilm, top_k=2)
    with TestClient(create_app(tiny_backend, model_id="tiny", rag=rag, kv_cache_tokens=4096)) as client:
        r = client.post("/v1/chat/completions", json=BODY)
        assert r.status_code == 200, r.text
        data = r.json()
        cites = data["citations"]
        assert len(cites) == 2 and cites[0]["doc_id"] == "del" and cites[0]["rank"] == 0
        assert {"text", "start", "end", "position", "score"} <= set(cites[0])
        assert topics["del"][cites[0]["start"] : cites[0]["end"]] == cites[0]["text"]

        streamed = client.post("/v1/chat/completions", json={**BODY, "stream": True})
        events = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
        assert events[0]["citations"] == cites  # the first event carries the citations
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
        assert text == data["choices"][0]["message"]["content"]
        assert streamed.text.rstrip().endswith("data: [DONE]")

        assert data["retrieval"] == {
            "query_truncated": False,
            "query_tokens": data["retrieval"]["query_tokens"],
            "full_query_tokens": data["retrieval"]["query_tokens"],
            "max_query_tokens": 256,
            "history_turns": 2,
        }
        assert events[0]["retrieval"] == data["retrieval"]

        # an earlier user turn longer than the embedder reads: the query is cut to its window, and the answer says so
        long_history = {
            "messages": [
                {"role": "user", "content": "Tell me about statements. " + "why " * 400},
                {"role": "assistant", "content": "Which one?"},
                {"role": "user", "content": "The del statement."},
            ],
            "max_tokens": 3,
        }
        r = client.post("/v1/chat/completions", json=long_history)
        assert r.status_code == 200, r.text
        retrieval = r.json()["retrieval"]
        assert retrieval["query_truncated"] and retrieval["query_tokens"] <= 256 < retrieval["full_query_tokens"]
        assert len(r.json()["citations"]) == 2

        refused = client.post(
            "/v1/chat/completions", json={**BODY, "continue_final_message": True, "add_generation_prompt": False}
        )
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "continue_final_message"
    with TestClient(create_app(tiny_backend, model_id="tiny", kv_cache_tokens=4096)) as plain:
        without = plain.post("/v1/chat/completions", json=BODY).json()
    assert "citations" not in without and "retrieval" not in without
    assert data["usage"]["prompt_tokens"] > without["usage"]["prompt_tokens"] + 50  # the chunks are in the prompt


def test_a_query_longer_than_the_embedder_reads_is_cut_to_its_last_tokens(minilm):
    from longkit.serve.rag import fit_query

    question = "why " * 600 + "is the sky blue?"
    fitted = fit_query(minilm, question)
    assert fitted.truncated and fitted.tokens <= minilm.max_tokens < fitted.full_tokens
    assert question.endswith(fitted.text) and fitted.text.endswith("why is the sky blue?")
    assert minilm.token_counts([fitted.text]) == [fitted.tokens]
    short = fit_query(minilm, "is the sky blue?")
    assert not short.truncated and short.text == "is the sky blue?" and short.tokens == short.full_tokens
