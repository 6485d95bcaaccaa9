"""GET /health (a load balancer's probe: 503 while the generation loop is down) and GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from longkit.serve.routes.common import State, answer
from longkit.serve.wire import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=None, responses={200: {"model": Health}, 503: {"model": Health}})
async def health(state: State) -> Response:
    """Whether the server can generate."""
    if not state.engine.healthy():
        return answer(Health(status="generation loop not running"), status=503)
    return answer(Health(status="ok", model=state.settings.model_id, running=state.metrics.running))


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: State) -> PlainTextResponse:
    """Counters in Prometheus' text format."""
    return PlainTextResponse(state.metrics.render(state.settings.max_batch), media_type="text/plain; version=0.0.4")
