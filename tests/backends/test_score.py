"""Scoring (the SCORE capability): the hf backend's per-token log-probabilities equal a direct full-logits computation,
chunked or not, batched or not; what is scored with and without a context; one-line errors for bad inputs; vLLM's
prompt_logprobs structure; the registry's refusal of a backend without SCORE. (The openai backend against `longkit
serve` is compared with the hf backend in tests/serve/test_score_echo.py.)"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch

from longkit.backends import registry
from longkit.backends.base import ScoreRequest, TextTokenizer, TokenScores, score_ids
from longkit.backends.hf import HFBackend
from longkit.backends.openai import echoed_logprobs
from longkit.backends.vllm import scores_from_prompt_logprobs
from longkit.errors import BackendError, ConfigError, InputError

TEXTS = ["The quick brown fox jumps over the lazy dog.", "A short one", "word " * 40]


def _direct(backend: HFBackend, ids: list[int], n_ctx: int) -> list[float]:
    """log p(ids[i] | ids[:i]) for i >= n_ctx from the model's own full logits."""
    with torch.inference_mode():
        logp = backend.model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    return [logp[i - 1, ids[i]].item() for i in range(n_ctx, len(ids))]


def _requests(tok: TextTokenizer) -> list[ScoreRequest]:
    return [
        ScoreRequest(text=TEXTS[0]),
        ScoreRequest(text=" Paris.", context="The capital of France is"),
        ScoreRequest(token_ids=tok.encode(TEXTS[2]), context=tok.encode("Count: ")),
        ScoreRequest(text=TEXTS[1], context=tok.encode("Here is")),
        ScoreRequest(token_ids=tok.encode(" again"), context="Once more and"),
    ]


def test_hf_scores_equal_the_full_logits(tiny_backend):
    requests = _requests(tiny_backend.tokenizer)
    scores = tiny_backend.score(requests)  # batch_size 4: rows of different lengths share a padded pass
    for request, got in zip(requests, scores):
        ids, n_ctx = score_ids(tiny_backend.tokenizer, request)
        assert got.token_ids == ids[n_ctx:] and got.context_tokens == n_ctx
        assert got.logprobs == pytest.approx(_direct(tiny_backend, ids, n_ctx), abs=1e-5)
        assert all(lp < 0 for lp in got.logprobs) and got.total == pytest.approx(sum(got.logprobs))


def test_chunked_equals_unchunked(tiny_backend):
    model, tok = tiny_backend.model, tiny_backend.hf_tokenizer
    requests = _requests(tiny_backend.tokenizer)
    whole = HFBackend(model, tok, batch_size=8, score_chunk=1_000_000).score(requests)
    chunked = HFBackend(model, tok, batch_size=1, score_chunk=3).score(requests)
    for a, b in zip(whole, chunked):
        assert a.token_ids == b.token_ids and a.logprobs == pytest.approx(b.logprobs, abs=1e-5)
    ids = tiny_backend.tokenizer.encode(TEXTS[0])
    one = HFBackend(model, tok, score_chunk=1_000_000).token_logprobs(ids, 2, top_n=3)
    three = HFBackend(model, tok, score_chunk=3).token_logprobs(ids, 2, top_n=3)
    assert [lp for lp, _ in one] == pytest.approx([lp for lp, _ in three], abs=1e-5)
    assert [[t for t, _ in top] for _, top in one] == [[t for t, _ in top] for _, top in three]


def test_what_is_scored_with_and_without_context(tiny_backend):
    tok = tiny_backend.tokenizer
    bos = tiny_backend.hf_tokenizer.bos_token_id
    # no context: the BOS token is the context, so every token of the text is scored
    assert score_ids(tok, ScoreRequest(text=TEXTS[0])) == ([bos, *tok.encode(TEXTS[0])], 1)
    assert score_ids(tok, ScoreRequest(text=TEXTS[0], context="")) == score_ids(tok, ScoreRequest(text=TEXTS[0]))
    # lm-eval's _encode_pair: the context's trailing space moves to the continuation
    moved = score_ids(tok, ScoreRequest(text="blue", context="The sky is "))
    assert moved == score_ids(tok, ScoreRequest(text=" blue", context="The sky is"))
    assert moved == (tok.encode("The sky is blue"), len(tok.encode("The sky is")))
    # the chain rule: scoring a sequence in two parts gives the scores of the whole
    ids = tok.encode(TEXTS[0])
    whole, head, tail = tiny_backend.score(
        [
            ScoreRequest(token_ids=ids),
            ScoreRequest(token_ids=ids[:4]),
            ScoreRequest(token_ids=ids[4:], context=[bos, *ids[:4]]),
        ]
    )
    assert whole.logprobs == pytest.approx(head.logprobs + tail.logprobs, abs=1e-5)
    assert tail.context_tokens == 5 and whole.token_ids == ids


def test_a_tokenizer_without_bos_or_eos_conditions_on_the_first_token(smol_tokenizer):
    hf = copy.deepcopy(smol_tokenizer)
    hf.bos_token = hf.eos_token = None
    tok = TextTokenizer(hf)
    ids = tok.encode(TEXTS[0])
    assert score_ids(tok, ScoreRequest(token_ids=ids)) == (ids, 1)
    with pytest.raises(InputError, match="one-token continuation without context"):
        score_ids(tok, ScoreRequest(token_ids=ids[:1]))


@pytest.mark.parametrize(
    "kwargs,says",
    [
        ({"text": ""}, "non-empty continuation"),
        ({"token_ids": []}, "non-empty continuation"),
        ({}, "exactly one of text or token_ids"),
        ({"text": "a", "token_ids": [1]}, "exactly one of text or token_ids"),
    ],
)
def test_bad_requests_are_one_line_input_errors(kwargs, says):
    with pytest.raises(InputError, match=says) as err:
        ScoreRequest(**kwargs)
    assert "\n" not in str(err.value)


def test_too_long_and_unknown_tokens_are_refused(tiny_backend):
    small = HFBackend(tiny_backend.model, tiny_backend.hf_tokenizer, max_context=32)
    with pytest.raises(InputError, match=r"score request 1: \d+ tokens \(1 of context\) exceed .* 32-token") as err:
        small.score([ScoreRequest(text="hi"), ScoreRequest(text="word " * 40)])
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="token id 99999999 is outside"):
        tiny_backend.score([ScoreRequest(token_ids=[5, 99999999])])


def test_the_registry_refuses_a_backend_without_score(tiny_backend, monkeypatch):
    assert registry.scorer(tiny_backend, "a log-likelihood task") is tiny_backend
    assert {"hf", "openai", "vllm"} <= set(registry.names_with(registry.SCORE))
    registry.backend_names()  # discover the real ones first
    gen_only = registry.BackendInfo("genonly", "test", frozenset({registry.GENERATE}), lambda spec: None)
    monkeypatch.setitem(registry._registry, "genonly", gen_only)
    other = copy.copy(tiny_backend)
    other.name = "genonly"
    with pytest.raises(ConfigError, match="a log-likelihood task needs a backend that can score; 'genonly' cannot"):
        registry.scorer(other, "a log-likelihood task")


@dataclass
class Logprob:
    """vLLM's Logprob, as vllm.sequence defines it."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


def test_vllm_prompt_logprobs_become_token_scores():
    ids = [1, 10, 11, 12]
    prompt_logprobs = [
        None,
        {10: Logprob(-1.5, 3, "a"), 7: Logprob(-0.2, 1, "b")},
        {11: Logprob(-0.25, 1, "c")},
        {12: Logprob(-3.0, 9, "d"), 4: Logprob(-0.1, 1, "e")},
    ]
    assert scores_from_prompt_logprobs(prompt_logprobs, ids, 1) == TokenScores([10, 11, 12], [-1.5, -0.25, -3.0], 1)
    assert scores_from_prompt_logprobs(prompt_logprobs, ids, 2) == TokenScores([11, 12], [-0.25, -3.0], 2)
    with pytest.raises(BackendError, match="no log-probability for prompt token 3"):
        scores_from_prompt_logprobs(prompt_logprobs[:3], ids, 1)
    with pytest.raises(BackendError, match="prompt token 1"):
        scores_from_prompt_logprobs([None, {7: Logprob(-0.2)}, *prompt_logprobs[2:]], ids, 1)


def test_echoed_logprobs_must_cover_the_tokens_sent():
    answer = {
        "choices": [{"logprobs": {"tokens": ["a", "b", "c"], "token_logprobs": [None, -1.0, -2.0]}}],
        "usage": {"prompt_tokens": 2},
    }
    assert echoed_logprobs(answer, 2, "srv") == [None, -1.0]  # the generated third token is dropped
    with pytest.raises(BackendError, match="echoed 3 logprobs for a 4-token prompt"):
        echoed_logprobs({**answer, "usage": {"prompt_tokens": 4}}, 4, "srv")
    with pytest.raises(BackendError, match="2 prompt tokens counted"):
        echoed_logprobs(answer, 3, "srv")
    with pytest.raises(BackendError, match="no logprobs for the echoed prompt"):
        echoed_logprobs({"choices": [{"text": "x", "logprobs": None}]}, 2, "srv")
