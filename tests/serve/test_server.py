"""The OpenAI-compatible server on 127.0.0.1, and the openai backend talking to it."""

import socket
import threading
import time

import httpx
import pytest

from longkit.backends.base import GenerationRequest
from longkit.backends.openai import OpenAIBackend
from longkit.backends.server import create_app
from longkit.errors import BackendError

KEY = "test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_backend):
    import uvicorn

    app = create_app(tiny_backend, model_id="tiny", api_key=KEY, max_tokens_limit=64, max_request_bytes=20_000)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def _post(url, path, body, key=KEY):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(url + path, json=body, headers=headers, timeout=60)


def test_auth_is_required(server):
    assert httpx.get(server + "/v1/models").status_code == 401
    r = httpx.get(server + "/v1/models", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = httpx.get(server + "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.json()["data"][0]["id"] == "tiny"


def test_bad_requests_get_json_4xx(server):
    r = _post(server, "/v1/completions", {"prompt": "hi", "max_tokens": 500})
    assert r.status_code == 400 and "limit of 64" in r.json()["error"]["message"]
    r = _post(server, "/v1/completions", {"max_tokens": 5})
    assert r.status_code == 400 and "prompt" in r.json()["error"]["message"]
    r = _post(server, "/v1/chat/completions", {"messages": [{"role": "user"}]})
    assert r.status_code == 400
    r = _post(server, "/v1/completions", {"prompt": "x" * 30_000, "max_tokens": 5})
    assert r.status_code == 413
    r = _post(server, "/v1/completions", {"prompt": "hi", "model": "other", "max_tokens": 5})
    assert r.status_code == 404
    r = _post(server, "/v1/completions", {"prompt": "hi", "stream": True})
    assert r.status_code == 400
    r = httpx.post(server + "/v1/completions", content=b"{not json", timeout=10,
                   headers={"Authorization": f"Bearer {KEY}", "content-type": "application/json"})
    assert r.status_code == 400
    # still serving after all of that
    ok = _post(server, "/v1/completions", {"prompt": "hello", "max_tokens": 3})
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] <= 3


def test_prompt_longer_than_context_is_rejected(server, tiny_backend):
    text = "word " * (tiny_backend.max_context + 10)
    r = _post(server, "/v1/completions", {"prompt": text, "max_tokens": 5})
    # the body limit would catch it first if smaller; both are clean 4xx
    assert r.status_code in (400, 413)


def test_openai_backend_matches_local_generation(server, tiny_backend):
    remote = OpenAIBackend(server, api_key=KEY, tokenizer=tiny_backend.tokenizer, concurrency=3)
    assert remote.model == "tiny" and remote.max_context == tiny_backend.max_context
    reqs = [GenerationRequest(prompt="alpha beta gamma " * k, max_new_tokens=5) for k in (1, 2, 3)]
    reqs.append(GenerationRequest(messages=[{"role": "user", "content": "Name a colour."}], max_new_tokens=6))
    got = remote.generate(reqs)
    want = tiny_backend.generate(reqs)
    assert [c.text for c in got] == [c.text for c in want]
    assert [c.completion_tokens for c in got] == [c.completion_tokens for c in want]


def test_openai_backend_errors_are_clear(server, tiny_backend):
    with pytest.raises(BackendError, match="HTTP 401"):
        OpenAIBackend(server, api_key="nope", tokenizer=tiny_backend.tokenizer, max_retries=0)
    with pytest.raises(BackendError, match="does not serve model 'other'"):
        OpenAIBackend(server, model="other", api_key=KEY, tokenizer=tiny_backend.tokenizer)
    with pytest.raises(BackendError, match="cannot reach"):
        OpenAIBackend(f"http://127.0.0.1:{_free_port()}", tokenizer=tiny_backend.tokenizer, max_retries=1,
                      backoff=0.01)
