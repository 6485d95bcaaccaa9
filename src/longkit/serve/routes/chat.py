"""POST /v1/chat/completions (the API itself is longkit.serve.chat)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from longkit.serve.protocol import ChatBody, parse_body
from longkit.serve.routes.common import State, answer
from longkit.serve.wire import ChatCompletionResponse

router = APIRouter(tags=["openai"])


@router.post("/v1/chat/completions", response_model=None, responses={200: {"model": ChatCompletionResponse}})
async def create_chat_completion(request: Request, state: State) -> Response:
    """OpenAI's Chat Completions API (JSON, or server-sent events with stream=true)."""
    # the body is parsed here rather than by FastAPI, so that every failure is OpenAI's error JSON naming the field
    body = parse_body(await request.body(), ChatBody)
    return answer(await state.chat.create(request, body))
