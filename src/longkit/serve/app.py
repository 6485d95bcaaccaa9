"""The OpenAI-compatible HTTP app: /v1/models, /v1/completions, /v1/chat/completions (streaming or not, n choices,
stop strings, seed, logprobs, echo), /health and /metrics; bearer-token auth, a bounded queue (429 with Retry-After),
a per-request timeout, one access-log line per request, and RAG with citations when given a pipeline.

Where things are: routes/ (one router per endpoint) → completions.py, chat.py (the two APIs) → service.py (checks,
admission, JSON and streamed answers) → generation.py (the one generation path) → batching.py (serving engines).
Request bodies are in protocol.py, response objects in wire.py, cross-cutting concerns in middleware.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.middleware import Middleware

from longkit.backends.base import Backend
from longkit.serve.admission import Admission
from longkit.serve.batching import ServingEngine, make_engine
from longkit.serve.chat import ChatCompletions
from longkit.serve.completions import TextCompletions
from longkit.serve.metrics import Metrics
from longkit.serve.middleware import (
    AccessLogMiddleware,
    AuthMiddleware,
    BodyLimitMiddleware,
    ErrorMiddleware,
    MetricsMiddleware,
)
from longkit.serve.routes import ROUTERS
from longkit.serve.routes.common import ServerState
from longkit.serve.service import CompletionService
from longkit.serve.settings import ServerSettings

if TYPE_CHECKING:
    from longkit.rag.pipeline import RagPipeline


def create_app(
    backend: ServingEngine | Backend,
    model_id: str,
    api_key: str | None = None,
    max_tokens_limit: int = 1024,
    max_request_bytes: int = 8 * 1024 * 1024,
    rag: RagPipeline | None = None,
    max_batch: int = 16,
    max_queue: int = 64,
    request_timeout: float = 600.0,
    kv_cache_tokens: int | None = None,
) -> FastAPI:
    """Build the app over a backend (an HFBackend is served with continuous batching) or a serving engine.

    At most max_batch generations run together and max_queue more wait; beyond that a request gets 429. With `rag`
    (a longkit.rag.pipeline.RagPipeline) chat requests retrieve first and the answer carries `citations`."""
    settings = ServerSettings(
        model_id=model_id,
        api_key=api_key,
        max_tokens_limit=max_tokens_limit,
        max_request_bytes=max_request_bytes,
        max_batch=max_batch,
        max_queue=max_queue,
        request_timeout=request_timeout,
        kv_cache_tokens=kv_cache_tokens,
    )
    return build_app(make_engine(backend, max_batch=max_batch, kv_cache_tokens=kv_cache_tokens), settings, rag)


def build_app(engine: ServingEngine, settings: ServerSettings, rag: RagPipeline | None = None) -> FastAPI:
    """Assemble the app: the engine's lifespan, the middleware stack, the routers and the services they call."""
    metrics = Metrics()
    service = CompletionService(engine, settings, Admission(metrics, settings.max_batch, settings.max_queue))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            engine.stop()

    # outermost first: the access log and the metrics see every answer, errors included
    middleware = [
        Middleware(AccessLogMiddleware),
        Middleware(MetricsMiddleware, metrics=metrics),
        Middleware(ErrorMiddleware),
        Middleware(AuthMiddleware, api_key=settings.api_key),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes),
    ]
    app = FastAPI(title="longkit OpenAI-compatible server", lifespan=lifespan, middleware=middleware)
    for router in ROUTERS:
        app.include_router(router)
    app.state.longkit = ServerState(settings, engine, metrics, TextCompletions(service), ChatCompletions(service, rag))
    app.state.engine, app.state.metrics, app.state.model_id = engine, metrics, settings.model_id  # for tools
    return app
