"""GET /v1/models: the one model this server serves, with its context window."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from longkit.serve.routes.common import State, answer
from longkit.serve.wire import ModelCard, ModelList

router = APIRouter(tags=["openai"])


@router.get("/v1/models", response_model=None, responses={200: {"model": ModelList}})
async def list_models(state: State) -> Response:
    """OpenAI's model list."""
    return answer(ModelList(data=[ModelCard(id=state.settings.model_id, max_model_len=state.engine.max_context)]))
