"""POST /v1/chat/completions: messages rendered with the model's chat template, n choices, logprobs; with a RAG
pipeline (`serve --index`) the request retrieves first and the answer cites the chunks it was given."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from longkit.errors import LongkitError
from longkit.serve.generation import Choice, Job
from longkit.serve.logprobs import chat_logprobs
from longkit.serve.protocol import ApiError, ChatBody
from longkit.serve.service import CompletionService, StreamWriter
from longkit.serve.streaming import EventStream
from longkit.serve.wire import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    ChatDelta,
    ChatMessage,
    Citation,
    FinishReason,
    ResponseHeader,
    Usage,
)

if TYPE_CHECKING:
    from longkit.rag.pipeline import RagPipeline

DEFAULT_MAX_TOKENS = 256  # (or the server's limit, if lower)


@dataclass
class ChatPrompt:
    """A chat request's prompt text, its stop strings and, under RAG, the chunks it carries."""

    text: str
    stops: list[str]
    citations: list[Citation] | None = None


class ChatChunks(StreamWriter):
    """The chat API's stream chunks: each choice opens with the assistant role; citations come first."""

    def __init__(self, header: ResponseHeader, include_usage: bool, citations: list[Citation] | None):
        super().__init__(header, include_usage)
        self.citations = citations

    def opening(self) -> ChatCompletionChunk | None:
        """The citations, before any choice (only under RAG)."""
        if self.citations is None:
            return None
        return self.with_usage_field(ChatCompletionChunk(**self.header.dump(), choices=[], citations=self.citations))

    def started(self, index: int, job: Job) -> ChatCompletionChunk:
        """The assistant role."""
        return self._chunk(ChatChunkChoice(index=index, delta=ChatDelta(role="assistant", content="")))

    def text(self, index: int, text: str) -> ChatCompletionChunk:
        """New content of a choice."""
        return self._chunk(ChatChunkChoice(index=index, delta=ChatDelta(content=text)))

    def finished(self, index: int, reason: FinishReason) -> ChatCompletionChunk:
        """A choice's finish reason (empty delta)."""
        return self._chunk(ChatChunkChoice(index=index, delta=ChatDelta(), finish_reason=reason))

    def usage(self, usage: Usage) -> ChatCompletionChunk:
        """The usage chunk (no choices)."""
        return ChatCompletionChunk(**self.header.dump(), choices=[], usage=usage)

    def _chunk(self, choice: ChatChunkChoice) -> ChatCompletionChunk:
        return self.with_usage_field(ChatCompletionChunk(**self.header.dump(), choices=[choice]))


class ChatCompletions:
    """Serves the chat completions API on the shared completion service."""

    def __init__(self, service: CompletionService, rag: RagPipeline | None = None):
        self.service, self.rag = service, rag

    async def create(self, request: Request, body: ChatBody) -> ChatCompletionResponse | EventStream:
        """Answer a chat request, as one response or as a stream."""
        svc = self.service
        svc.check_model(body.model)
        if body.top_logprobs is not None and not body.logprobs:
            raise ApiError(400, "top_logprobs: needs logprobs=true", param="top_logprobs")
        max_tokens, param = self._max_tokens(body)
        svc.check_budget(max_tokens, param)
        prompt = await self._prompt(body, max_tokens)
        jobs = [Job(svc.encode(prompt.text, "messages", max_tokens), prompt.text, 0)]
        plan = svc.plan(jobs, body, max_tokens, prompt.stops)
        header = svc.header("chatcmpl")
        if body.stream:
            if body.logprobs:
                raise ApiError(400, "logprobs: not supported with stream=true on this server", param="logprobs")
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return svc.stream(request, plan, ChatChunks(header, include_usage, prompt.citations))
        choices = await svc.complete(request, plan)
        out = ChatCompletionResponse(**header.dump(), choices=[await self._choice(c, body) for c in choices],
                                     usage=Usage.of(plan.prompt_tokens, sum(len(c.token_ids) for c in choices)))
        if prompt.citations is not None:
            out.citations = prompt.citations  # (only under RAG: a plain answer has no `citations` key)
        return out

    def _max_tokens(self, body: ChatBody) -> tuple[int, str]:
        """The generation budget and the parameter that set it (max_completion_tokens wins, as at OpenAI)."""
        if body.max_completion_tokens is not None:
            return body.max_completion_tokens, "max_completion_tokens"
        if body.max_tokens is not None:
            return body.max_tokens, "max_tokens"
        return min(DEFAULT_MAX_TOKENS, self.service.settings.max_tokens_limit), "max_tokens"

    async def _prompt(self, body: ChatBody, max_tokens: int) -> ChatPrompt:
        tok = self.service.engine.tokenizer
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        stops = body.stops()
        if self.rag is None:
            return ChatPrompt(tok.render_messages(messages), stops)
        rag = self.rag  # retrieve, build the ChatQA prompt, cite the chunks (retrieval blocks: a worker thread)
        try:
            prep = await asyncio.get_running_loop().run_in_executor(
                None, lambda: rag.prepare(messages, max_new_tokens=max_tokens))
        except LongkitError as exc:
            raise ApiError(400, str(exc), param="messages") from None
        stops += [s for s in prep.request.stop if s and s not in stops]
        citations = [Citation.model_validate(h.to_dict()) for h in prep.hits]
        return ChatPrompt(tok.render(prep.request), stops, citations)

    async def _choice(self, choice: Choice, body: ChatBody) -> ChatChoice:
        logprobs = await chat_logprobs(self.service.engine, choice, body.top_logprobs or 0) if body.logprobs else None
        return ChatChoice(index=choice.index, message=ChatMessage(content=choice.text), logprobs=logprobs,
                          finish_reason=choice.finish_reason)
