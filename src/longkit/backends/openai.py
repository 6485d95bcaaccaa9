"""A backend for any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, TGI, `longkit serve`)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from longkit.backends.base import Completion, GenerationRequest, TextTokenizer, apply_stop, fit_request
from longkit.backends.registry import CHAT, GENERATE, BackendInfo
from longkit.backends.spec import BackendSpec
from longkit.errors import BackendError, ConfigError

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend:
    """Talks to /v1/completions (prompt requests) and /v1/chat/completions (message requests).

    Prompts are measured and middle-truncated with a local tokenizer of the served model, so lengths
    are exact; pass `tokenizer` (a model name or directory) when the server's model id is not loadable.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        tokenizer: Any = None,
        max_context: int | None = None,
        api_key: str | None = None,
        api_key_env: str | tuple[str, ...] = ("LONGKIT_API_KEY", "OPENAI_API_KEY"),
        concurrency: int = 4,
        timeout: float = 600.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        check: bool = True,
    ):
        import httpx

        self.base_url = _check_url(base_url).rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        key = resolve_api_key(api_key, api_key_env)
        self.has_key = bool(key)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.backoff = backoff
        served = self._models() if check else []
        self.model = model or (served[0]["id"] if served else None)
        if self.model is None:
            raise BackendError(f"{self.base_url}: no model given and the server lists none")
        if check and served and self.model not in {m["id"] for m in served}:
            raise BackendError(f"{self.base_url} does not serve model '{self.model}' "
                               f"(it serves: {', '.join(m['id'] for m in served)})")
        if tokenizer is None or isinstance(tokenizer, str):
            from longkit.models.load import load_tokenizer

            tokenizer = load_tokenizer(tokenizer or self.model)
        self.tokenizer = tokenizer if isinstance(tokenizer, TextTokenizer) else TextTokenizer(tokenizer)
        meta = next((m for m in served if m["id"] == self.model), {})
        self.max_context = int(max_context or meta.get("max_model_len") or meta.get("context_length") or 8192)

    def _models(self) -> list[dict[str, Any]]:
        data = self._request("GET", "/models")
        return list(data.get("data", []))

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                resp = self.client.request(method, path, json=payload)
            except httpx.TransportError as exc:
                last = f"cannot reach {self.base_url}{path}: {exc.__class__.__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    return resp.json()
                last = f"{self.base_url}{path} answered HTTP {resp.status_code}: {_error_text(resp)}"
                if resp.status_code in (401, 403):
                    last += ("; pass --api-key or set LONGKIT_API_KEY" if not self.has_key else
                             "; the API key was refused (check --api-key / LONGKIT_API_KEY)")
                if resp.status_code not in _RETRY_STATUS:
                    break
            if attempt < self.max_retries:
                time.sleep(self.backoff * (2**attempt) * (1 + random.random() * 0.25))
        raise BackendError(last)

    def _one(self, request: GenerationRequest) -> Completion:
        text, truncated = fit_request(self.tokenizer, request, self.max_context)
        body: dict[str, Any] = {"model": self.model, "max_tokens": request.max_new_tokens,
                                "temperature": request.temperature}
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.messages is not None and not truncated:
            data = self._request("POST", "/chat/completions", {**body, "messages": request.messages})
            choice = data["choices"][0]
            out = choice["message"].get("content") or ""
        else:
            # Truncated chats are sent as the rendered prompt so the cut the tokenizer made is kept.
            data = self._request("POST", "/completions", {**body, "prompt": text})
            choice = data["choices"][0]
            out = choice.get("text", "")
        out, _ = apply_stop(out, request.stop)
        usage = data.get("usage") or {}
        return Completion(text=out, prompt_tokens=int(usage.get("prompt_tokens", self.tokenizer.count(text))),
                          completion_tokens=int(usage.get("completion_tokens", 0)),
                          finish_reason=choice.get("finish_reason") or "stop", truncated=truncated)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Send requests with bounded concurrency; results keep the input order."""
        if len(requests) <= 1 or self.concurrency == 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()


def resolve_api_key(api_key: str | None, env: str | tuple[str, ...] = ("LONGKIT_API_KEY", "OPENAI_API_KEY")) -> str | None:
    """The key to send: the explicit one, else the first set environment variable (LONGKIT_API_KEY first).

    No key is fine: a local server (`longkit serve`, vLLM on 127.0.0.1) usually needs none, and a remote
    one that does answers 401, which the error message turns into a hint."""
    if api_key:
        return api_key
    for name in (env,) if isinstance(env, str) else env:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _check_url(url: str) -> str:
    from urllib.parse import urlparse

    from longkit.errors import ConfigError

    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"--base-url: expected an http(s) URL such as http://127.0.0.1:8000/v1, got '{url}'")
    try:
        parsed.port
    except ValueError:
        raise ConfigError(f"--base-url: bad port in '{url}'") from None
    return url


def _error_text(resp: Any) -> str:
    try:
        err = resp.json().get("error", {})
        return err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except Exception:
        return resp.text[:200]


def _from_spec(spec: BackendSpec, **extra: Any) -> OpenAIBackend:
    if not spec.base_url:
        raise ConfigError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
    return OpenAIBackend(spec.base_url, model=spec.model, tokenizer=spec.tokenizer, max_context=spec.max_context,
                         concurrency=spec.batch_size, api_key=spec.api_key, **extra)


BACKEND = BackendInfo("openai", "any OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI, longkit serve)",
                      frozenset({GENERATE, CHAT}), _from_spec)
