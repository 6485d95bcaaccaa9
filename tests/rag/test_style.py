"""The default prompt style follows the model: on the bundled chat model (SmolLM2-135M-Instruct, ChatML) it is the
model's own chat template, which answers the bundled Python-reference questions (the raw ChatQA format often gets
an empty answer from it)."""

from __future__ import annotations

import json
from pathlib import Path

from longkit.rag.prompt import is_chatqa_model, resolved_style

QA = Path(__file__).resolve().parents[2] / "configs" / "rag" / "python-reference-qa.jsonl"


def test_style_follows_the_model(tiny_backend):
    assert resolved_style("auto", tiny_backend) == "chat"  # a tokenizer with a chat template
    assert resolved_style("auto", tiny_backend, "nvidia/Llama3-ChatQA-2-8B") == "chatqa"
    assert resolved_style("chatqa", tiny_backend) == "chatqa" and resolved_style("chat", tiny_backend) == "chat"
    assert is_chatqa_model("/models/llama3_chatqa_1.5") and not is_chatqa_model("smollm2-135m-instruct")


def test_default_style_answers_the_bundled_questions_on_the_bundled_model(tmp_path, minilm):
    from pydoc_data.topics import topics

    from longkit.backends.hf import HFBackend
    from longkit.rag.build import chunking_record, index_documents, open_or_create
    from longkit.rag.chunk import ChunkConfig
    from longkit.rag.pipeline import RagPipeline

    rows = {r["id"]: r for r in map(json.loads, QA.read_text().splitlines())}
    questions = [rows[i]["question"] for i in ("assert-exc", "pass", "del-unbound")]
    cfg = ChunkConfig(size=120)
    index = open_or_create(tmp_path / "ix", minilm, chunking_record(cfg, "embedder", "split"))
    index_documents(index, [(k, topics[k]) for k in ("assert", "pass", "del")], minilm, cfg, on_overflow="split")

    backend = HFBackend.from_name("smollm2-135m-instruct", batch_size=3)
    pipe = RagPipeline.from_index(tmp_path / "ix", backend, embedder=minilm, top_k=1, max_new_tokens=4)
    assert pipe.settings.style == "chat"
    answers = pipe.answer_many(questions)
    assert [a.completion.completion_tokens > 0 and bool(a.text.strip()) for a in answers] == [True] * 3, [
        a.text for a in answers
    ]
