"""Prefix KV reuse in the hf backend: identical answers to running without reuse, and real reuse."""

from __future__ import annotations

import pytest

from longkit.backends.base import GenerationRequest, TextTokenizer
from longkit.eval.tasks.niah import NIAHConfig, NIAHTask


@pytest.fixture(scope="module")
def model_dir(trained_tokenizer, tmp_path_factory):
    from longkit.testing import build_tiny_llama

    return build_tiny_llama(trained_tokenizer, tmp_path_factory.mktemp("tiny-prefix"), max_positions=2048, seed=3)


def _backends(model_dir):
    from longkit.backends.hf import HFBackend

    plain = HFBackend.from_name(str(model_dir), batch_size=1)
    reuse = HFBackend(plain.model, plain.hf_tokenizer, batch_size=1, prefix_reuse=True, min_prefix=16)
    return plain, reuse


def test_niah_depths_reuse_the_prefix_with_identical_answers(model_dir, trained_tokenizer):
    plain, reuse = _backends(model_dir)
    task = NIAHTask(NIAHConfig(lengths=[768], depths=[25, 50, 75, 100], chat=False, answer_budget=12))
    tok = TextTokenizer(trained_tokenizer)
    reqs = [task.build(s, tok, 2048).request() for s in task.plan()]
    a = plain.generate(reqs)
    b = reuse.generate(reqs)
    assert [c.text for c in a] == [c.text for c in b]
    assert [c.completion_tokens for c in a] == [c.completion_tokens for c in b]
    assert reuse.reused_tokens > 0.3 * sum(c.prompt_tokens for c in b)


def test_questions_about_one_document_and_stop_strings(model_dir, trained_tokenizer):
    from pydoc_data.topics import topics

    plain, reuse = _backends(model_dir)
    doc = topics["assert"] + topics["with"]
    qs = ["What does assert do?", "What is a context manager?", "When is __exit__ called?"]
    reqs = [GenerationRequest(prompt=f"{doc}\n\nQuestion: {q}\nAnswer:", max_new_tokens=10, stop=["\n"]) for q in qs]
    reqs.append(GenerationRequest(prompt="A short unrelated prompt.", max_new_tokens=10))
    a, b = plain.generate(reqs), reuse.generate(reqs)
    assert [c.text for c in a] == [c.text for c in b]
    assert [c.finish_reason for c in a] == [c.finish_reason for c in b]
    doc_tokens = len(trained_tokenizer(doc, add_special_tokens=False)["input_ids"])
    assert reuse.reused_tokens >= 2 * (doc_tokens - 2)
    # one request per call (the runner's batch_size=1) still reuses the previous call's prefill
    _, single = _backends(model_dir)
    assert [single.generate([r])[0].text for r in reqs[:3]] == [c.text for c in a[:3]]
    assert single.reused_tokens >= 2 * (doc_tokens - 2)


def test_sampling_requests_bypass_reuse(model_dir):
    _, reuse = _backends(model_dir)
    out = reuse.generate([GenerationRequest(prompt="Hello there", max_new_tokens=3, temperature=0.8, seed=1)])
    assert len(out) == 1 and reuse.reused_tokens == 0
