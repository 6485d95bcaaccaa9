"""A backend for any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, TGI, `longkit serve`)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from longkit.backends.base import (
    Completion,
    GenerationRequest,
    ScoreRequest,
    TextTokenizer,
    TokenScores,
    apply_stop,
    fit_request,
    prepare_scores,
)
from longkit.backends.registry import CHAT, GENERATE, SCORE, BackendInfo
from longkit.backends.spec import BackendSpec
from longkit.errors import BackendError, ConfigError

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class HTTPStatusError(BackendError):
    """The server answered an HTTP error (kept apart so that a caller can try another request shape)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class OpenAIBackend:
    """Talks to /v1/completions (prompt requests, and scoring through echo with logprobs) and /v1/chat/completions
    (message requests).

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
            raise BackendError(
                f"{self.base_url} does not serve model '{self.model}' (it serves: {', '.join(m['id'] for m in served)})"
            )
        if tokenizer is None or isinstance(tokenizer, str):
            from longkit.models.load import load_tokenizer

            tokenizer = load_tokenizer(tokenizer or self.model)
        self.tokenizer = tokenizer if isinstance(tokenizer, TextTokenizer) else TextTokenizer(tokenizer)
        meta = next((m for m in served if m["id"] == self.model), {})
        self.max_context = int(max_context or meta.get("max_model_len") or meta.get("context_length") or 8192)
        self.score_max_tokens = 0  # becomes 1 once the server refuses max_tokens 0 (the one token is dropped)

    def _models(self) -> list[dict[str, Any]]:
        data = self._request("GET", "/models")
        return list(data.get("data", []))

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        last, status = "", 0
        for attempt in range(self.max_retries + 1):
            try:
                resp = self.client.request(method, path, json=payload)
            except httpx.TransportError as exc:
                last = f"cannot reach {self.base_url}{path}: {exc.__class__.__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    return dict(resp.json())
                status = resp.status_code
                last = f"{self.base_url}{path} answered HTTP {resp.status_code}: {_error_text(resp)}"
                if resp.status_code in (401, 403):
                    last += (
                        "; pass --api-key or set LONGKIT_API_KEY"
                        if not self.has_key
                        else "; the API key was refused (check --api-key / LONGKIT_API_KEY)"
                    )
                if resp.status_code not in _RETRY_STATUS:
                    break
            if attempt < self.max_retries:
                time.sleep(self.backoff * (2**attempt) * (1 + random.random() * 0.25))
        raise HTTPStatusError(last, status) if status else BackendError(last)

    def _one(self, request: GenerationRequest) -> Completion:
        text, truncated = fit_request(self.tokenizer, request, self.max_context)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
        }
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
        return Completion(
            text=out,
            prompt_tokens=int(usage.get("prompt_tokens", self.tokenizer.count(text))),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason") or "stop",
            truncated=truncated,
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Send requests with bounded concurrency; results keep the input order."""
        if len(requests) <= 1 or self.concurrency == 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))

    def score(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        """Per-token log-probabilities of each continuation (see ScoreRequest): the context and continuation are
        tokenized here and sent as token ids to /v1/completions with echo, so the server scores exactly these tokens
        and the continuation is the last of them; requests go out with bounded concurrency, in order."""
        prepared = prepare_scores(self.tokenizer, requests, self.max_context)
        if len(prepared) <= 1 or self.concurrency == 1:
            return [self._score_one(p) for p in prepared]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._score_one, prepared))

    def _score_one(self, prepared: tuple[list[int], int]) -> TokenScores:
        ids, n_ctx = prepared
        logprobs = echoed_logprobs(self._echo(ids), len(ids), f"{self.base_url}/completions")
        scored = logprobs[n_ctx:]
        if any(lp is None for lp in scored):
            raise BackendError(
                f"{self.base_url}/completions returned no log-probability for a prompt token past the first"
            )
        return TokenScores(ids[n_ctx:], [float(lp) for lp in scored if lp is not None], n_ctx)

    def _echo(self, ids: list[int]) -> dict[str, Any]:
        """The server's echo of a token-id prompt with its logprobs, generating nothing; a server that requires
        max_tokens >= 1 (OpenAI, some llama.cpp builds) is asked for one token, which the caller drops."""
        body: dict[str, Any] = {"model": self.model, "prompt": ids, "echo": True, "logprobs": 1, "temperature": 0}
        try:
            return self._request("POST", "/completions", {**body, "max_tokens": self.score_max_tokens})
        except HTTPStatusError as exc:
            if self.score_max_tokens != 0 or exc.status not in (400, 422):
                raise
        self.score_max_tokens = 1
        return self._request("POST", "/completions", {**body, "max_tokens": 1})

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()


def echoed_logprobs(data: dict[str, Any], n_prompt: int, where: str) -> list[float | None]:
    """The log-probabilities of the n_prompt prompt tokens in an echo answer of /v1/completions (the first is null:
    nothing precedes it; a generated token after them is dropped). A server that tokenized the prompt into other
    tokens, or sent no logprobs, is a BackendError: the scores would belong to other tokens."""
    try:
        logprobs = data["choices"][0]["logprobs"]["token_logprobs"]
    except (KeyError, IndexError, TypeError):
        raise BackendError(
            f"{where} returned no logprobs for the echoed prompt (does it support echo with logprobs?)"
        ) from None
    counted = (data.get("usage") or {}).get("prompt_tokens", n_prompt)
    if not isinstance(logprobs, list) or len(logprobs) < n_prompt or counted != n_prompt:
        got = len(logprobs) if isinstance(logprobs, list) else 0
        raise BackendError(
            f"{where} echoed {got} logprobs for a {n_prompt}-token prompt ({counted} prompt tokens "
            f"counted): it does not score the token ids it was sent"
        )
    return [None if lp is None else float(lp) for lp in logprobs[:n_prompt]]


def resolve_api_key(
    api_key: str | None, env: str | tuple[str, ...] = ("LONGKIT_API_KEY", "OPENAI_API_KEY")
) -> str | None:
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
        _ = parsed.port  # reading it validates it
    except ValueError:
        raise ConfigError(f"--base-url: bad port in '{url}'") from None
    return url


def _error_text(resp: Any) -> str:
    try:
        err = resp.json().get("error", {})
        return str(err.get("message", err)) if isinstance(err, dict) else str(err)
    except Exception:
        return str(resp.text)[:200]


def _from_spec(spec: BackendSpec, **extra: Any) -> OpenAIBackend:
    if not spec.base_url:
        raise ConfigError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
    return OpenAIBackend(
        spec.base_url,
        model=spec.model,
        tokenizer=spec.tokenizer,
        max_context=spec.max_context,
        concurrency=spec.batch_size,
        api_key=spec.api_key,
        **extra,
    )


BACKEND = BackendInfo(
    "openai",
    "any OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI, longkit serve)",
    frozenset({GENERATE, CHAT, SCORE}),
    _from_spec,
)
