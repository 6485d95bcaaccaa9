"""Scoring through the OpenAI API: `longkit serve` answers /v1/completions with echo, logprobs and max_tokens 0 (the
prompt's tokens and their log-probabilities, nothing generated), and longkit's openai backend, scoring through it,
gives the hf backend's per-token log-probabilities on the same tiny model and texts."""

from __future__ import annotations

import json

import httpx
import pytest

from longkit.backends.base import ScoreRequest
from longkit.backends.hf import HFBackend
from longkit.backends.openai import OpenAIBackend
from longkit.serve.app import create_app

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def server(tiny_llama_dir, live_server):
    """A server over its own copy of the tiny model, so the session's tiny_backend can score while it runs."""
    backend = HFBackend.from_name(str(tiny_llama_dir))
    with live_server(create_app(backend, model_id="tiny", max_tokens_limit=64, kv_cache_tokens=4096)) as url:
        yield url


def _post(url, body):
    return httpx.post(url + "/v1/completions", json=body, timeout=60)


def _requests(tok):
    return [
        ScoreRequest(text="The quick brown fox jumps over the lazy dog."),
        ScoreRequest(text=" Paris, of course.", context="The capital of France is"),
        ScoreRequest(token_ids=tok.encode(" and so on " * 20), context=tok.encode("Repeat:")),
        ScoreRequest(text="x"),
    ]


def _max_difference(hf_scores, other_scores):
    worst = 0.0
    for a, b in zip(hf_scores, other_scores, strict=True):
        assert a.token_ids == b.token_ids and a.context_tokens == b.context_tokens
        worst = max([worst, *(abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True))])
    return worst


def test_max_tokens_zero_with_echo_scores_the_prompt(server, tiny_backend):
    ids = tiny_backend.tokenizer.encode("The capital of France is Paris")
    zero = _post(server, {"prompt": ids, "max_tokens": 0, "echo": True, "logprobs": 1})
    assert zero.status_code == 200, zero.text
    choice, usage = zero.json()["choices"][0], zero.json()["usage"]
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(ids) and lp["token_logprobs"][0] is None
    assert choice["text"] == tiny_backend.tokenizer.decode(ids) and choice["finish_reason"] == "length"
    assert usage == {"prompt_tokens": len(ids), "completion_tokens": 0, "total_tokens": len(ids)}
    # the same prompt logprobs as an echo that generates one token (lm-evaluation-harness's request)
    one = _post(server, {"prompt": [ids], "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0}).json()
    assert one["choices"][0]["logprobs"]["token_logprobs"][: len(ids)] == pytest.approx(lp["token_logprobs"])
    text = _post(server, {"prompt": "Hello", "max_tokens": 0, "echo": True, "n": 2}).json()
    assert [c["text"] for c in text["choices"]] == ["Hello", "Hello"]


@pytest.mark.parametrize(
    "body,says",
    [
        ({"prompt": "Hello", "max_tokens": 0}, "allowed only with echo=true"),
        ({"prompt": "Hello", "max_tokens": 0, "echo": True, "stream": True}, "not supported with stream=true"),
        ({"prompt": "Hello", "max_tokens": -1, "echo": True}, "greater than or equal to 0"),
    ],
)
def test_max_tokens_zero_is_refused_where_it_means_nothing(server, body, says):
    r = _post(server, body)
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "max_tokens" and says in err["message"], err


def test_chat_still_needs_a_token_to_generate(server):
    r = httpx.post(
        server + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
        timeout=60,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"


def test_openai_backend_through_serve_equals_hf(server, tiny_backend, tiny_llama_dir):
    requests = _requests(tiny_backend.tokenizer)
    want = tiny_backend.score(requests)
    client = OpenAIBackend(server, model="tiny", tokenizer=str(tiny_llama_dir), concurrency=2)
    try:
        got = client.score(requests)
        assert client.score_max_tokens == 0  # longkit serve takes max_tokens 0 with echo
        client.score_max_tokens = 1  # as for a server that wants one token: it is generated and dropped
        got_one = client.score(requests)
    finally:
        client.close()
    worst = max(_max_difference(want, got), _max_difference(want, got_one))
    print(f"max per-token |hf - openai through serve| = {worst:.3g}")
    assert worst < TOLERANCE


class RefusesZeroTokens:
    """An ASGI wrapper that answers max_tokens 0 with a 400, as OpenAI and some servers do, and passes the rest on."""

    def __init__(self, app):
        self.app = app
        self.refused = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/v1/completions":
            return await self.app(scope, receive, send)
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        if json.loads(raw).get("max_tokens") == 0:
            self.refused += 1
            body = json.dumps(
                {
                    "error": {
                        "message": "max_tokens must be at least 1",
                        "type": "invalid_request_error",
                        "param": "max_tokens",
                        "code": None,
                    }
                }
            ).encode()
            await send(
                {"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]}
            )
            return await send({"type": "http.response.body", "body": body})

        sent = False

        async def replay():  # the body once, then the client's own messages (a disconnect)
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        return await self.app(scope, replay, send)


def test_a_server_that_refuses_max_tokens_zero_is_asked_for_one(tiny_backend, tiny_llama_dir, live_server):
    app = RefusesZeroTokens(create_app(tiny_backend, model_id="tiny", max_tokens_limit=8, kv_cache_tokens=4096))
    requests = _requests(tiny_backend.tokenizer)[:2]
    want = tiny_backend.score(requests)
    with live_server(app) as url:
        client = OpenAIBackend(url, model="tiny", tokenizer=str(tiny_llama_dir), concurrency=1)
        try:
            got = client.score(requests)
        finally:
            client.close()
    assert app.refused == 1 and client.score_max_tokens == 1
    assert _max_difference(want, got) < TOLERANCE
