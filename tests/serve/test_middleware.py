"""Each middleware on its own, around a tiny Starlette or FastAPI app: auth, the body limit (declared and chunked),
OpenAI-format errors (raised, crashed, and after a stream started), metrics and the access log."""

from __future__ import annotations

import contextlib
import logging

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from longkit.serve.metrics import Metrics
from longkit.serve.middleware import (
    AccessLogMiddleware,
    AuthMiddleware,
    BodyLimitMiddleware,
    ErrorMiddleware,
    MetricsMiddleware,
)
from longkit.serve.protocol import ApiError
from longkit.serve.record import record_of


async def echo_length(request: Request) -> Response:
    return JSONResponse({"bytes": len(await request.body())})


async def with_tokens(request: Request) -> Response:
    record_of(request.scope).tokens(7, 3)
    return PlainTextResponse("ok")


async def too_many(request: Request) -> Response:
    raise ApiError(429, "busy", headers={"Retry-After": "5"})


async def crash(request: Request) -> Response:
    raise RuntimeError("boom")


async def crash_mid_stream(request: Request) -> Response:
    async def body():
        yield b"data: 1\n\n"
        raise RuntimeError("boom inside the stream")

    return StreamingResponse(body(), media_type="text/event-stream")


ROUTES = [
    Route("/v1/echo", echo_length, methods=["POST"]),
    Route("/health", echo_length),
    Route("/v1/tokens", with_tokens),
    Route("/v1/busy", too_many),
    Route("/v1/crash", crash),
    Route("/v1/stream", crash_mid_stream),
]


def client(*middleware: Middleware) -> TestClient:
    """A client of a tiny app with the middleware installed as create_app installs it (inside Starlette's own
    ServerErrorMiddleware, which would otherwise answer a crash with text/plain first)."""
    return TestClient(Starlette(routes=ROUTES, middleware=list(middleware)), raise_server_exceptions=False)


def assert_openai_error(r, status: int, kind: str) -> dict:
    body = r.json()
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == kind and body["error"]["code"] == status
    return body["error"]


def test_auth_needs_the_bearer_key_under_v1_only():
    http = client(Middleware(AuthMiddleware, api_key="sesame"))
    assert_openai_error(http.post("/v1/echo", content=b"x"), 401, "authentication_error")
    assert_openai_error(
        http.post("/v1/echo", content=b"x", headers={"Authorization": "Bearer nope"}), 401, "authentication_error"
    )
    assert_openai_error(
        http.post("/v1/echo", content=b"x", headers={"Authorization": "sesame"}), 401, "authentication_error"
    )  # the scheme is required
    assert http.post("/v1/echo", content=b"x", headers={"Authorization": "bearer sesame"}).json() == {"bytes": 1}
    assert http.get("/health").status_code == 200  # probes need no key
    assert client(Middleware(AuthMiddleware, api_key=None)).post("/v1/echo", content=b"xy").json() == {"bytes": 2}


def test_body_limit_refuses_declared_and_chunked_bodies():
    http = client(Middleware(BodyLimitMiddleware, max_bytes=1000))
    assert http.post("/v1/echo", content=b"x" * 1000).json() == {"bytes": 1000}
    err = assert_openai_error(http.post("/v1/echo", content=b"x" * 1001), 413, "invalid_request_error")
    assert err["message"] == "request body of 1001 bytes exceeds the limit of 1000"

    def chunks():  # no Content-Length: the limit is found while reading
        yield b"x" * 600
        yield b"y" * 600

    r = http.post("/v1/echo", content=chunks())
    assert "content-length" not in r.request.headers
    assert (
        assert_openai_error(r, 413, "invalid_request_error")["message"]
        == "request body exceeds the limit of 1000 bytes"
    )


def test_errors_become_openai_json_and_a_crash_is_logged(caplog):
    http = client(Middleware(ErrorMiddleware))
    r = http.get("/v1/busy")
    assert assert_openai_error(r, 429, "rate_limit_error")["message"] == "busy" and r.headers["retry-after"] == "5"
    with caplog.at_level(logging.ERROR, logger="longkit.serve"):
        err = assert_openai_error(http.get("/v1/crash"), 500, "server_error")
    assert err["message"] == "internal error: RuntimeError: boom"
    assert any(rec.exc_info and "/v1/crash" in rec.getMessage() for rec in caplog.records)


def test_an_error_after_the_stream_started_is_only_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="longkit.serve"):
        r = client(Middleware(ErrorMiddleware)).get("/v1/stream")
    assert r.status_code == 200 and r.text.startswith("data: 1")  # the stream as sent, no second response
    assert any("/v1/stream" in rec.getMessage() for rec in caplog.records)


def test_a_fastapi_route_that_crashes_gets_openai_json():
    """Without it FastAPI would answer `Internal Server Error` in text/plain."""
    api = FastAPI(middleware=[Middleware(ErrorMiddleware)])

    @api.get("/v1/bug")
    async def bug() -> None:
        raise KeyError("missing")

    err = assert_openai_error(TestClient(api, raise_server_exceptions=False).get("/v1/bug"), 500, "server_error")
    assert err["message"] == "internal error: KeyError: 'missing'"


def test_metrics_count_endpoints_statuses_and_tokens():
    metrics = Metrics()
    http = client(
        Middleware(MetricsMiddleware, metrics=metrics, endpoints={"/v1/tokens", "/v1/busy"}),
        Middleware(ErrorMiddleware),
    )
    http.get("/v1/tokens")
    http.get("/v1/tokens")
    http.get("/v1/busy")
    http.get("/somewhere/else")
    assert metrics.requests == {("/v1/tokens", 200): 2, ("/v1/busy", 429): 1, ("other", 404): 1}
    assert (metrics.prompt_tokens, metrics.completion_tokens, metrics.latency_count) == (14, 6, 4)
    assert len(metrics.recent) == 2  # only successful generations inform Retry-After


def test_access_log_has_one_line_per_request(caplog):
    logger = logging.getLogger("test.access")
    http = client(Middleware(AccessLogMiddleware, logger=logger), Middleware(ErrorMiddleware))
    with caplog.at_level(logging.INFO, logger="test.access"):
        http.get("/v1/tokens")
        http.get("/v1/crash")
    lines = [r.getMessage() for r in caplog.records if r.name == "test.access"]
    assert len(lines) == 2
    assert '"GET /v1/tokens" 200 ' in lines[0] and lines[0].endswith("prompt_tokens=7 completion_tokens=3")
    assert '"GET /v1/crash" 500 ' in lines[1] and lines[1].endswith("prompt_tokens=- completion_tokens=-")


@pytest.mark.parametrize(
    "middleware",
    [
        lambda app: AuthMiddleware(app, api_key="k"),
        lambda app: BodyLimitMiddleware(app, max_bytes=1),
        ErrorMiddleware,
        lambda app: MetricsMiddleware(app, Metrics()),
        AccessLogMiddleware,
    ],
)
def test_lifespan_passes_through(middleware):
    events = []

    @contextlib.asynccontextmanager
    async def lifespan(app):
        events.append("up")
        yield
        events.append("down")

    with TestClient(middleware(Starlette(lifespan=lifespan))):
        assert events == ["up"]
    assert events == ["up", "down"]
