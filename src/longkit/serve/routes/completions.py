"""POST /v1/completions (the API itself is longkit.serve.completions)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from longkit.serve.protocol import CompletionBody, parse_body
from longkit.serve.routes.common import State, answer
from longkit.serve.wire import CompletionResponse

router = APIRouter(tags=["openai"])


@router.post("/v1/completions", response_model=None, responses={200: {"model": CompletionResponse}})
async def create_completion(request: Request, state: State) -> Response:
    """OpenAI's Completions API (JSON, or server-sent events with stream=true)."""
    # the body is parsed here rather than by FastAPI, so that every failure is OpenAI's error JSON naming the field
    body = parse_body(await request.body(), CompletionBody)
    return answer(await state.completions.create(request, body))
