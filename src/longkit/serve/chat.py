"""POST /v1/chat/completions: messages rendered with the model's chat template (a new assistant turn, or with
continue_final_message the final assistant message continued), n choices, logprobs; with a RAG pipeline
(`serve --index`) the request retrieves first and the answer cites the chunks it was given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jinja2 import TemplateError
from starlette.requests import Request

from longkit.backends.base import TextTokenizer
from longkit.serve.generation import Choice, Job
from longkit.serve.logprobs import chat_logprobs
from longkit.serve.protocol import ApiError, ChatBody
from longkit.serve.rag import rag_prompt
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
    Retrieval,
    Usage,
)

if TYPE_CHECKING:
    from longkit.rag.pipeline import RagPipeline

DEFAULT_MAX_TOKENS = 256  # (or the server's limit, if lower)


@dataclass
class ChatPrompt:
    """A chat request's prompt text, its stop strings and, under RAG, the chunks it carries and how it retrieved."""

    text: str
    stops: list[str]
    citations: list[Citation] | None = None
    retrieval: Retrieval | None = None


def render_chat(tok: TextTokenizer, messages: list[dict[str, str]], body: ChatBody) -> str:
    """The prompt of the messages under the request's template flags: by default a new assistant turn is opened;
    with continue_final_message the final (assistant) message is left open for the model to continue."""
    if body.add_generation_prompt and not body.continue_final_message:
        return tok.render_messages(messages)
    if not tok.has_chat_template:  # the plain fallback: "Role: content" blocks; the last one stays open
        return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages) + (
            "\n\nAssistant:" if body.add_generation_prompt else ""
        )
    try:
        return str(
            tok.hf.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=body.add_generation_prompt,
                continue_final_message=body.continue_final_message,
            )
        )
    except (ValueError, TemplateError) as exc:  # e.g. a template that drops the final message's text, or raises
        raise ApiError(
            400, f"messages: the model's chat template cannot render them so: {exc}", param="messages"
        ) from None


class ChatChunks(StreamWriter):
    """The chat API's stream chunks: each choice opens with the assistant role; citations come first."""

    def __init__(self, header: ResponseHeader, include_usage: bool, prompt: ChatPrompt):
        super().__init__(header, include_usage)
        self.prompt = prompt

    def opening(self) -> ChatCompletionChunk | None:
        """The citations and the retrieval, before any choice (only under RAG)."""
        if self.prompt.citations is None:
            return None
        chunk = ChatCompletionChunk(
            **self.header.dump(), choices=[], citations=self.prompt.citations, retrieval=self.prompt.retrieval
        )
        return self.with_usage_field(chunk)

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
            return svc.stream(request, plan, ChatChunks(header, include_usage, prompt))
        choices = await svc.complete(request, plan)
        out = ChatCompletionResponse(
            **header.dump(),
            choices=[await self._choice(c, body) for c in choices],
            usage=Usage.of(plan.prompt_tokens, sum(len(c.token_ids) for c in choices)),
        )
        if prompt.citations is not None:  # (only under RAG: a plain answer has no `citations` or `retrieval` key)
            out.citations, out.retrieval = prompt.citations, prompt.retrieval
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
        body.check_template_flags()
        if self.rag is None:
            return ChatPrompt(render_chat(tok, messages, body), stops)
        if body.continue_final_message or not body.add_generation_prompt:
            param = "continue_final_message" if body.continue_final_message else "add_generation_prompt"
            raise ApiError(
                400,
                f"{param}: not supported with retrieval (this server runs with --index): the answer "
                f"is always a new assistant turn",
                param=param,
            )
        prep = await rag_prompt(self.rag, messages, max_tokens)  # retrieve, build the ChatQA prompt, cite the chunks
        stops += [s for s in prep.request.stop if s and s not in stops]
        return ChatPrompt(tok.render(prep.request), stops, prep.citations, prep.retrieval)

    async def _choice(self, choice: Choice, body: ChatBody) -> ChatChoice:
        logprobs = await chat_logprobs(self.service.engine, choice, body.top_logprobs or 0) if body.logprobs else None
        return ChatChoice(
            index=choice.index,
            message=ChatMessage(content=choice.text),
            logprobs=logprobs,
            finish_reason=choice.finish_reason,
        )
