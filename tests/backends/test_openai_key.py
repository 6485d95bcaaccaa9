"""The openai backend's API key: --api-key, then $LONGKIT_API_KEY, then $OPENAI_API_KEY; none needed by a server
that asks for none; a 401 says how to pass one. Against a real (tiny) HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from longkit.backends.openai import OpenAIBackend, resolve_api_key
from longkit.errors import BackendError, ConfigError


class _Server:
    """Serves /v1/models; requires `Bearer {key}` when key is set."""

    def __init__(self, key: str | None):
        seen: list[str | None] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                auth = self.headers.get("Authorization")
                seen.append(auth)
                ok = key is None or auth == f"Bearer {key}"
                body = json.dumps(
                    {"data": [{"id": "m", "max_model_len": 512}]} if ok else {"error": {"message": "invalid api key"}}
                ).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def no_keys(monkeypatch):
    monkeypatch.delenv("LONGKIT_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return monkeypatch


def test_key_precedence(no_keys):
    assert resolve_api_key(None) is None
    no_keys.setenv("OPENAI_API_KEY", "o")
    assert resolve_api_key(None) == "o"
    no_keys.setenv("LONGKIT_API_KEY", "l")
    assert resolve_api_key(None) == "l" and resolve_api_key("cli") == "cli"


def test_local_server_without_a_key_needs_none(no_keys, smol_tokenizer):
    srv = _Server(key=None)
    try:
        backend = OpenAIBackend(srv.url, tokenizer=smol_tokenizer, max_retries=0)
        assert backend.model == "m" and backend.max_context == 512 and srv.seen == [None]
    finally:
        srv.close()


def test_key_from_env_or_option_and_a_clear_401(no_keys, smol_tokenizer):
    srv = _Server(key="s3cret")
    try:
        with pytest.raises(BackendError, match="HTTP 401.*pass --api-key or set LONGKIT_API_KEY"):
            OpenAIBackend(srv.url, tokenizer=smol_tokenizer, max_retries=0)
        with pytest.raises(BackendError, match="the API key was refused"):
            OpenAIBackend(srv.url, tokenizer=smol_tokenizer, max_retries=0, api_key="wrong")
        no_keys.setenv("LONGKIT_API_KEY", "s3cret")
        assert OpenAIBackend(srv.url, tokenizer=smol_tokenizer, max_retries=0).model == "m"
        no_keys.delenv("LONGKIT_API_KEY")
        assert OpenAIBackend(srv.url, tokenizer=smol_tokenizer, max_retries=0, api_key="s3cret").model == "m"
    finally:
        srv.close()


@pytest.mark.parametrize("url", ["", "127.0.0.1:8000", "ftp://host/v1", "http://", "http://host:99999999/v1"])
def test_bad_base_url_is_a_config_error(url, smol_tokenizer):
    with pytest.raises(ConfigError, match="--base-url"):
        OpenAIBackend(url, tokenizer=smol_tokenizer)
