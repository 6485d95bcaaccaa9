"""What the endpoints share: the server's parts (on app.state, reached through a FastAPI dependency) and turning an
API's result into the HTTP response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response

from longkit.serve.batching import ServingEngine
from longkit.serve.chat import ChatCompletions
from longkit.serve.completions import TextCompletions
from longkit.serve.metrics import Metrics
from longkit.serve.settings import ServerSettings
from longkit.serve.streaming import EventStream
from longkit.serve.wire import WireModel


@dataclass
class ServerState:
    """The parts of one server the endpoints use (app.state.longkit)."""

    settings: ServerSettings
    engine: ServingEngine
    metrics: Metrics
    completions: TextCompletions
    chat: ChatCompletions


def server_state(request: Request) -> ServerState:
    """The server's parts, as create_app put them on the app."""
    state = request.app.state.longkit
    if not isinstance(state, ServerState):
        raise TypeError("app.state.longkit is not a ServerState: build the app with longkit.serve.app.create_app")
    return state


State = Annotated[ServerState, Depends(server_state)]


def answer(result: WireModel | EventStream, status: int = 200) -> Response:
    """A response object as JSON; a stream as it is."""
    if isinstance(result, EventStream):
        return result
    return JSONResponse(result.dump(), status_code=status)
