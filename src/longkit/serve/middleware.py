"""ASGI middleware for what every endpoint shares, each usable on its own around any ASGI app: bearer-token auth,
the request-body limit, OpenAI-format errors, Prometheus metrics and the access log.

They are plain ASGI classes rather than Starlette's BaseHTTPMiddleware, so that a streamed answer passes through
unbuffered and a client's disconnect still reaches the handler (which cancels its generations)."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longkit.serve.metrics import Metrics
from longkit.serve.protocol import ApiError
from longkit.serve.record import RequestRecord, record_of

access_log = logging.getLogger("longkit.serve.access")
server_log = logging.getLogger("longkit.serve")

# endpoints counted under their own path in /metrics; any other path is counted as "other" (bounded label values)
ENDPOINTS = frozenset({"/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics"})


async def send_error(send: Send, exc: ApiError) -> None:
    """Send an ApiError as a complete JSON response with its status and headers (e.g. Retry-After)."""
    body = json.dumps(exc.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: str) -> str:
    """A request header's value ('' when absent); `name` in lower case."""
    key = name.encode("latin-1")
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == key), "")


def recording_status(send: Send, record: RequestRecord) -> Send:
    """`send` that notes the response's status in the request's record when the response starts."""

    async def send_and_record(message: Message) -> None:
        if message["type"] == "http.response.start":
            record.status, record.started = message["status"], True
        await send(message)

    return send_and_record


class AuthMiddleware:
    """Requires `Authorization: Bearer <api_key>` on paths under `prefix`; health probes and metrics need no key."""

    def __init__(self, app: ASGIApp, api_key: str | None, prefix: str = "/v1"):
        self.app, self.api_key, self.prefix = app, api_key, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401 to a request under the prefix without the key; pass the rest on."""
        if scope["type"] == "http" and self.api_key is not None and scope["path"].startswith(self.prefix):
            auth = header(scope, "authorization")
            token = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not secrets.compare_digest(token.encode(), self.api_key.encode()):  # constant time: no timing oracle
                await send_error(send, ApiError(401, "invalid or missing API key (send 'Authorization: Bearer <key>')"))
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses a request body over max_bytes with a 413: up front from its Content-Length, and for a chunked body
    (which has none) as soon as the bytes received pass the limit, so a huge body is never held in memory."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 to a body over the limit; pass the rest on with a counting `receive`."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = header(scope, "content-length")
        if length.isdigit() and int(length) > self.max_bytes:
            limit = self.max_bytes
            await send_error(send, ApiError(413, f"request body of {length} bytes exceeds the limit of {limit}"))
            return
        too_large = ApiError(413, f"request body exceeds the limit of {self.max_bytes} bytes")
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        record = RequestRecord()
        try:
            await self.app(scope, limited, recording_status(send, record))
        except ApiError as exc:
            if exc is not too_large or record.started:
                raise
            await send_error(send, exc)


class ErrorMiddleware:
    """Answers an ApiError that escapes the app with OpenAI's error JSON, and any other exception (a bug of this
    server) with a 500 in the same format, logged, so the server keeps serving. Once a response has started (a
    stream), an error can only be logged."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app and answer what escapes it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord()
        send = recording_status(send, record)
        try:
            await self.app(scope, receive, send)
        except ApiError as exc:
            if record.started:
                server_log.warning("%s on %s after the response started: %s", exc.status, scope["path"], exc.message)
            else:
                await send_error(send, exc)
        except Exception as exc:
            server_log.exception("internal error on %s", scope["path"])
            if not record.started:
                await send_error(send, ApiError(500, f"internal error: {exc.__class__.__name__}: {exc}"))


class MetricsMiddleware:
    """Counts every request in `metrics`: by endpoint and status, with its latency and the tokens its handler noted."""

    def __init__(self, app: ASGIApp, metrics: Metrics, endpoints: Collection[str] = ENDPOINTS):
        self.app, self.metrics, self.endpoints = app, metrics, endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app and count the request once it is answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        record = record_of(scope)
        try:
            await self.app(scope, receive, recording_status(send, record))
        finally:
            path = scope["path"]
            self.metrics.observe(
                path if path in self.endpoints else "other",
                record.status,
                time.perf_counter() - start,
                record.prompt_tokens or 0,
                record.completion_tokens or 0,
            )


class AccessLogMiddleware:
    """One line per request: client, method, path, status, seconds, the tokens its handler noted, and whether the
    client disconnected."""

    def __init__(self, app: ASGIApp, logger: logging.Logger = access_log):
        self.app, self.logger = app, logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app and log the request once it is answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        record = record_of(scope)
        try:
            await self.app(scope, receive, recording_status(send, record))
        finally:
            client = scope.get("client") or ("-", 0)
            tokens = ["-" if n is None else n for n in (record.prompt_tokens, record.completion_tokens)]
            self.logger.info(
                '%s "%s %s" %s %.3fs prompt_tokens=%s completion_tokens=%s%s',
                client[0],
                scope["method"],
                scope["path"],
                record.status,
                time.perf_counter() - start,
                *tokens,
                " client_disconnected" if record.disconnected else "",
            )
