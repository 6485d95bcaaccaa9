"""A live server on 127.0.0.1 over a tiny random Llama, driven by the official `openai` client (and raw HTTP where
the client cannot send what is tested): streaming, n, stop, seed, logprobs, echo, every 400, 401, 429, disconnects,
/health, /metrics, the access log, and longkit's openai backend against it."""

from __future__ import annotations

import json
import logging
import time

import httpx
import openai
import pytest

from longkit.backends.base import GenerationRequest
from longkit.backends.openai import OpenAIBackend
from longkit.errors import BackendError
from longkit.serve.app import create_app

KEY = "test-secret"
LIMIT = 4000  # max_tokens limit: the disconnect test needs a generation that is still running when it hangs up


@pytest.fixture(scope="module")
def server(tiny_backend, live_server):
    # two generations at a time and two waiting: the 429 test fills the server with one request (2 prompts, n=2)
    app = create_app(
        tiny_backend,
        model_id="tiny",
        api_key=KEY,
        max_tokens_limit=LIMIT,
        max_request_bytes=30_000,
        max_batch=2,
        max_queue=2,
        kv_cache_tokens=16384,
    )
    with live_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key=KEY, max_retries=0, timeout=120)


def _post(url, path, body=None, key=KEY, content=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if content is not None:
        return httpx.post(
            url + path, content=content, headers={**headers, "content-type": "application/json"}, timeout=60
        )
    return httpx.post(url + path, json=body, headers=headers, timeout=60)


def _running(server) -> int:
    text = httpx.get(server + "/metrics", timeout=10).text
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith("longkit_requests_running ")))


CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name three colours."}]


def test_auth(server, client):
    assert client.models.list().data[0].id == "tiny"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server + "/v1", api_key="wrong", max_retries=0).models.list()
    r = httpx.get(server + "/v1/models", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    health = httpx.get(server + "/health", timeout=10)  # probes need no key
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_streamed_text_equals_non_streamed_text(client):
    whole = client.completions.create(model="tiny", prompt="The colour of the sky is", max_tokens=12, temperature=0)
    parts = list(
        client.completions.create(
            model="tiny",
            prompt="The colour of the sky is",
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(p.choices[0].text for p in parts if p.choices) == whole.choices[0].text
    assert parts[-1].choices == [] and parts[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert [p.choices[0].finish_reason for p in parts if p.choices and p.choices[0].finish_reason] == [
        whole.choices[0].finish_reason
    ]

    chat = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=10, temperature=0)
    chunks = list(
        client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=10, temperature=0, stream=True)
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == chat.choices[0].message.content
    assert chat.usage.completion_tokens == 10 and chat.choices[0].finish_reason == "length"


def test_stream_is_server_sent_events_ending_with_done(server):
    with httpx.stream(
        "POST",
        server + "/v1/completions",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
        json={"prompt": "one two", "max_tokens": 4, "stream": True},
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "text_completion"


def test_n_choices(client):
    chat = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=5, n=2)
    assert [c.index for c in chat.choices] == [0, 1]
    assert chat.choices[0].message.content == chat.choices[1].message.content  # temperature 0: the same answer
    comp = client.completions.create(model="tiny", prompt=["alpha beta", "gamma delta epsilon"], max_tokens=3, n=2)
    assert [c.index for c in comp.choices] == [0, 1, 2, 3]
    one = client.completions.create(model="tiny", prompt="gamma delta epsilon", max_tokens=3)
    assert comp.choices[2].text == one.choices[0].text and comp.usage.completion_tokens == 12


def test_stop_strings_end_the_text_and_are_not_in_it(client):
    full = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=16).choices[0].text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    assert stop.strip(), full  # the tiny model's text has some non-space in the middle
    want = full[: full.index(stop)]
    got = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=16, stop=[stop, "\x00"])
    assert got.choices[0].text == want and got.choices[0].finish_reason == "stop"
    streamed = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=16, stop=stop, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == want


def test_seed_makes_sampling_reproducible(client):
    def sample(seed):
        return (
            client.completions.create(model="tiny", prompt="Pick a word:", max_tokens=12, temperature=1.5, seed=seed)
            .choices[0]
            .text
        )

    first = sample(11)
    assert sample(11) == first
    assert len({first, sample(12), sample(13)}) > 1  # a random model at temperature 1.5 does not repeat itself


def test_logprobs_and_echo(client, tiny_backend):
    r = client.completions.create(model="tiny", prompt="red green blue", max_tokens=5, logprobs=3, echo=True)
    c = r.choices[0]
    n_prompt = r.usage.prompt_tokens
    assert c.text.startswith("red green blue")
    lp = c.logprobs
    assert len(lp.tokens) == n_prompt + r.usage.completion_tokens and lp.token_logprobs[0] is None
    assert "".join(lp.tokens) == c.text and lp.text_offset[1] == len(lp.tokens[0])
    for chosen, top in zip(lp.token_logprobs[n_prompt:], lp.top_logprobs[n_prompt:]):
        assert len(top) == 3 and chosen == pytest.approx(max(top.values()), abs=1e-4)  # greedy picks the top token
    assert all(v <= 0 for v in lp.token_logprobs[1:])

    chat = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=4, logprobs=True, top_logprobs=2)
    content = chat.choices[0].logprobs.content
    assert len(content) == 4 and "".join(t.token for t in content) == chat.choices[0].message.content
    assert all(
        len(t.top_logprobs) == 2 and t.logprob == pytest.approx(t.top_logprobs[0].logprob, abs=1e-4) for t in content
    )


@pytest.mark.parametrize(
    "body,param",
    [
        ({"messages": CHAT, "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"messages": CHAT, "functions": [{"name": "f"}]}, "functions"),
        ({"messages": CHAT, "response_format": {"type": "json_object"}}, "response_format"),
        ({"messages": CHAT, "logit_bias": {"42": 5}}, "logit_bias"),
        ({"messages": CHAT, "top_p": 0.5}, "top_p"),
        ({"messages": CHAT, "frobnicate": 1}, "frobnicate"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "tool", "content": "hi"}]}, "messages.0.role"),
        ({"messages": []}, "messages"),
        ({"messages": CHAT, "max_tokens": LIMIT + 1}, "max_tokens"),
        ({"messages": CHAT, "max_completion_tokens": 0}, "max_completion_tokens"),
        ({"messages": CHAT, "top_logprobs": 2}, "top_logprobs"),
        ({"messages": CHAT, "logprobs": True, "stream": True}, "logprobs"),
    ],
)
def test_chat_400s_name_the_parameter(client, body, param):
    with pytest.raises(openai.BadRequestError) as err:
        # extra_body: the client sends the fields as they are (it would refuse an unknown keyword itself)
        client.chat.completions.create(
            model="tiny", messages=body["messages"], extra_body={k: v for k, v in body.items() if k != "messages"}
        )
    assert err.value.body["param"] == param and param.split(".")[-1] in err.value.body["message"]


@pytest.mark.parametrize(
    "body,param",
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": "hi", "suffix": "!"}, "suffix"),
        ({"prompt": "hi", "best_of": 3}, "best_of"),
        ({"prompt": "hi", "logprobs": 9}, "logprobs"),
        ({"prompt": "hi", "n": 0}, "n"),
    ],
)
def test_completion_400s_name_the_parameter(client, body, param):
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(
            model="tiny",
            max_tokens=2,
            prompt=body["prompt"],
            extra_body={k: v for k, v in body.items() if k != "prompt"},
        )
    assert err.value.body["param"] == param


def test_prompt_longer_than_the_window_is_a_400_with_token_counts(server, tiny_backend):
    words = tiny_backend.max_context - 100
    r = _post(server, "/v1/completions", {"prompt": "word " * words, "max_tokens": 200})
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "prompt"
    assert f"{tiny_backend.max_context}" in err["message"] and "200 tokens to generate" in err["message"]


def test_bad_bodies_get_openai_error_json(server):
    for raw in (
        b"{not json",
        b'{"prompt": "caf\xe9"}',
        b"[1, 2]",
        b'{"prompt": "hi", "temperature": NaN}',
        b'{"prompt": "\\ud800"}',
        b'{"prompt": "hi", "seed": 100000000000000000000000}',
        b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}',
    ):
        r = _post(server, "/v1/completions", content=raw)
        assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert _post(server, "/v1/completions", {"prompt": "x" * 40_000, "max_tokens": 2}).status_code == 413
    r = _post(server, "/v1/completions", {"prompt": "hi", "model": "other", "max_tokens": 2})
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"
    assert _post(server, "/v1/completions", {"prompt": "hello", "max_tokens": 3}).status_code == 200


def test_full_queue_is_429_and_a_disconnect_frees_the_slot(server, client):
    body = {"prompt": ["count with me:", "and again:"], "max_tokens": LIMIT - 100, "stream": True, "n": 2}
    with httpx.stream(
        "POST", server + "/v1/completions", json=body, timeout=60, headers={"Authorization": f"Bearer {KEY}"}
    ) as r:
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")  # generating now
        assert _running(server) == 4  # every slot: 2 generating, 2 queued
        with pytest.raises(openai.RateLimitError) as err:
            client.completions.create(model="tiny", prompt="hi", max_tokens=2)
        assert int(err.value.response.headers["retry-after"]) >= 1
    # the client hung up: both generations are cancelled and their slots come back
    deadline = time.time() + 30
    while _running(server) and time.time() < deadline:
        time.sleep(0.05)
    assert _running(server) == 0
    assert client.completions.create(model="tiny", prompt="hi", max_tokens=2).usage.completion_tokens == 2


def test_metrics_and_access_log(server, client, caplog):
    with caplog.at_level(logging.INFO, logger="longkit.serve.access"):
        r = client.completions.create(model="tiny", prompt="metrics please", max_tokens=3)
        mine = '"POST /v1/completions" 200 '
        tokens = f"prompt_tokens={r.usage.prompt_tokens} completion_tokens=3"
        deadline = time.time() + 5
        while not any(mine in m.getMessage() for m in caplog.records) and time.time() < deadline:
            time.sleep(0.02)
    # (an earlier test's cancelled stream may log its own line meanwhile)
    lines = [m.getMessage() for m in caplog.records if m.name == "longkit.serve.access" and mine in m.getMessage()]
    assert len(lines) == 1 and lines[0].endswith(tokens)
    text = httpx.get(server + "/metrics", timeout=10).text
    assert 'longkit_requests_total{endpoint="/v1/completions",status="200"}' in text
    assert 'longkit_requests_total{endpoint="/v1/completions",status="429"}' in text
    assert "# TYPE longkit_request_duration_seconds histogram" in text and "longkit_queue_depth 0" in text
    assert int(text.split("\nlongkit_completion_tokens_total ")[1].split()[0]) >= 3


def test_openai_backend_matches_local_generation(server, tiny_backend):
    remote = OpenAIBackend(server, api_key=KEY, tokenizer=tiny_backend.tokenizer, concurrency=3)
    assert remote.model == "tiny" and remote.max_context == tiny_backend.max_context
    reqs = [GenerationRequest(prompt="alpha beta gamma " * k, max_new_tokens=5) for k in (1, 2, 3)]
    reqs.append(GenerationRequest(messages=[{"role": "user", "content": "Name a colour."}], max_new_tokens=6))
    got = remote.generate(reqs)
    want = tiny_backend.generate(reqs)
    assert [c.text for c in got] == [c.text for c in want]
    assert [c.completion_tokens for c in got] == [c.completion_tokens for c in want]


def test_openai_backend_errors_are_clear(server, tiny_backend, free_port):
    with pytest.raises(BackendError, match="HTTP 401"):
        OpenAIBackend(server, api_key="nope", tokenizer=tiny_backend.tokenizer, max_retries=0)
    with pytest.raises(BackendError, match="does not serve model 'other'"):
        OpenAIBackend(server, model="other", api_key=KEY, tokenizer=tiny_backend.tokenizer)
    with pytest.raises(BackendError, match="cannot reach"):
        OpenAIBackend(f"http://127.0.0.1:{free_port()}", tokenizer=tiny_backend.tokenizer, max_retries=1, backoff=0.01)


def test_request_timeout_cancels_and_answers_408(tiny_backend):
    from fastapi.testclient import TestClient

    app = create_app(tiny_backend, model_id="tiny", max_tokens_limit=LIMIT, request_timeout=0.2, kv_cache_tokens=8192)
    with TestClient(app) as http:
        r = http.post("/v1/completions", json={"prompt": "go on", "max_tokens": LIMIT - 100})
        assert r.status_code == 408 and "request timeout of 0.2 s" in r.json()["error"]["message"]
        streamed = http.post("/v1/completions", json={"prompt": "go on", "max_tokens": LIMIT - 100, "stream": True})
        events = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
        assert events[-1]["error"]["code"] == 408 and streamed.text.rstrip().endswith("data: [DONE]")
        assert http.get("/metrics").text.count("longkit_requests_running 0") == 1  # both cancelled, slots free


def test_window_is_bounded_by_the_kv_cache(tiny_backend):
    from fastapi.testclient import TestClient

    with TestClient(create_app(tiny_backend, model_id="tiny", kv_cache_tokens=512)) as http:
        assert http.get("/v1/models").json()["data"][0]["max_model_len"] == 512
        r = http.post("/v1/completions", json={"prompt": "word " * 600, "max_tokens": 4})
        assert r.status_code == 400 and "512-token context" in r.json()["error"]["message"]
        assert http.post("/v1/completions", json={"prompt": "word " * 400, "max_tokens": 4}).status_code == 200
        assert http.get("/health").json()["status"] == "ok"


def test_openapi_schema_documents_the_endpoints_and_response_models(server):
    schema = httpx.get(server + "/openapi.json", timeout=10).json()  # outside /v1: no key needed
    assert {"/v1/models", "/v1/completions", "/v1/chat/completions", "/health", "/metrics"} <= set(schema["paths"])
    assert {"CompletionResponse", "ChatCompletionResponse", "ModelList"} <= set(schema["components"]["schemas"])
