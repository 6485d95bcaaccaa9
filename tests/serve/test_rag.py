"""`longkit serve --index`: the chat endpoint retrieves, prompts in the ChatQA format and cites chunks, streamed too."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from longkit.rag.build import chunking_record, index_documents, open_or_create
from longkit.rag.chunk import ChunkConfig
from longkit.rag.pipeline import RagPipeline
from longkit.serve.app import create_app

BODY = {"messages": [{"role": "user", "content": "Tell me about the del statement."},
                     {"role": "assistant", "content": "It deletes things."},
                     {"role": "user", "content": "What happens if the name is unbound?"}], "max_tokens": 3}


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
        assert topics["del"][cites[0]["start"]:cites[0]["end"]] == cites[0]["text"]

        streamed = client.post("/v1/chat/completions", json={**BODY, "stream": True})
        events = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
        assert events[0]["citations"] == cites  # the first event carries the citations
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
        assert text == data["choices"][0]["message"]["content"]
        assert streamed.text.rstrip().endswith("data: [DONE]")

        too_long = client.post("/v1/chat/completions",
                               json={"messages": [{"role": "user", "content": "why " * 300}], "max_tokens": 3})
        assert too_long.status_code == 400 and "shorten the question" in too_long.json()["error"]["message"]
    with TestClient(create_app(tiny_backend, model_id="tiny", kv_cache_tokens=4096)) as plain:
        without = plain.post("/v1/chat/completions", json=BODY).json()
    assert "citations" not in without
    assert data["usage"]["prompt_tokens"] > without["usage"]["prompt_tokens"] + 50  # the chunks are in the prompt
