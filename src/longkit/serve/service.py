"""The completion service both completion APIs share: the checks every request passes (model, token budget, context
window), admission to the bounded queue, and the two ways to answer (one JSON body, or server-sent events), both
fed by the one generation path in generation.py. The APIs themselves (completions.py, chat.py) only turn requests
into prompts and choices into their response objects."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from typing import TypeVar

from starlette.requests import Request

from longkit.serve.admission import Admission, Ticket
from longkit.serve.batching import Sampling, ServingEngine
from longkit.serve.generation import (
    Choice,
    Event,
    Failed,
    Job,
    Plan,
    Progress,
    Started,
    collect,
    generate,
    unless_disconnected,
)
from longkit.serve.protocol import ApiError, GenerationBody
from longkit.serve.record import RequestRecord, record_of
from longkit.serve.settings import ServerSettings
from longkit.serve.streaming import EventStream, sse
from longkit.serve.wire import ChatCompletionChunk, CompletionChunk, FinishReason, ResponseHeader, Usage, WireModel

Chunk = TypeVar("Chunk", CompletionChunk, ChatCompletionChunk)


class StreamWriter(ABC):
    """Writes one API's stream chunks for the events of a generation."""

    def __init__(self, header: ResponseHeader, include_usage: bool):
        self.header, self.include_usage = header, include_usage

    def opening(self) -> WireModel | None:
        """A chunk sent before any choice's (none by default)."""
        return None

    @abstractmethod
    def started(self, index: int, job: Job) -> WireModel | None:
        """The chunk, if any, that opens a choice."""

    @abstractmethod
    def text(self, index: int, text: str) -> WireModel:
        """A chunk carrying a choice's new text."""

    @abstractmethod
    def finished(self, index: int, reason: FinishReason) -> WireModel:
        """The chunk that ends a choice."""

    @abstractmethod
    def usage(self, usage: Usage) -> WireModel:
        """The last chunk, with the request's usage (stream_options.include_usage)."""

    def with_usage_field(self, chunk: Chunk) -> Chunk:
        """The chunk; with include_usage it says `usage: null`, as every chunk but the last does."""
        if self.include_usage:
            chunk.usage = None  # (assigning marks the field as given, so it is sent)
        return chunk

    def chunks(self, event: Event) -> list[WireModel]:
        """The chunks an event becomes."""
        if isinstance(event, Started):
            opening = self.started(event.index, event.job)
            return [] if opening is None else [opening]
        if isinstance(event, Failed):
            return [event.error.response()]
        d = event.delta
        out = [self.text(event.index, d.text)] if d.text else []
        if d.finish_reason is not None:
            out.append(self.finished(event.index, d.finish_reason))
        return out


class CompletionService:
    """Checks, admits and generates completion requests; answers as JSON choices or as an event stream."""

    def __init__(self, engine: ServingEngine, settings: ServerSettings, admission: Admission):
        self.engine, self.settings, self.admission = engine, settings, admission

    def header(self, prefix: str) -> ResponseHeader:
        """A new response's id, time and model."""
        return ResponseHeader.new(prefix, self.settings.model_id)

    def check_model(self, model: str | None) -> None:
        """Refuse a model this server does not serve (404); none named means the served one."""
        if model is not None and model != self.settings.model_id:
            raise ApiError(
                404,
                f"model '{model}' is not served here (this server serves '{self.settings.model_id}')",
                param="model",
            )

    def check_budget(self, max_tokens: int, param: str) -> None:
        """Refuse a max_tokens above the server's limit (400 naming the parameter)."""
        limit = self.settings.max_tokens_limit
        if max_tokens > limit:
            raise ApiError(400, f"{param}={max_tokens} exceeds this server's limit of {limit}", param=param)

    def encode(self, text: str, param: str, max_tokens: int) -> list[int]:
        """Token ids of a prompt that fits the window with max_tokens to generate; else a 400 with the counts."""
        return self.check_window(self.engine.tokenizer.encode(text), param, max_tokens)

    def check_tokens(self, ids: list[int], param: str, max_tokens: int) -> list[int]:
        """A tokenized prompt's ids, once each is known to the model and the prompt fits the window."""
        vocab = self.engine.vocab_size
        bad = next((t for t in ids if not 0 <= t < vocab), None)
        if bad is not None:
            raise ApiError(
                400, f"{param}: token id {bad} is outside this model's vocabulary (0 to {vocab - 1})", param=param
            )
        return self.check_window(ids, param, max_tokens)

    def check_window(self, ids: list[int], param: str, max_tokens: int) -> list[int]:
        """The ids of a prompt that is not empty and fits the window with max_tokens to generate; else a 400."""
        window = self.engine.max_context
        if not ids:
            raise ApiError(400, f"{param}: must not be empty", param=param)
        if len(ids) + max_tokens > window:
            raise ApiError(
                400,
                f"{param}: the prompt has {len(ids)} tokens; with {max_tokens} tokens to generate that "
                f"is {len(ids) + max_tokens}, more than the {window}-token context this server serves "
                f"(shorten the prompt or lower max_tokens)",
                param=param,
            )
        return ids

    def plan(self, jobs: list[Job], body: GenerationBody, max_tokens: int, stops: list[str]) -> Plan:
        """What to generate for a request."""
        # token-by-token delivery costs the batch loop and the event loop work per token: only when it is used
        sampling = Sampling(
            max_new_tokens=max_tokens,
            temperature=float(body.temperature or 0.0),
            seed=body.seed,
            incremental=bool(body.stream or stops),
        )
        return Plan(jobs, body.n, sampling, stops)

    async def complete(self, request: Request, plan: Plan) -> list[Choice]:
        """Generate every choice (the JSON answer); a disconnect or the timeout cancels them all."""
        with self.admission.admit(plan.slots):
            work = collect(self.engine, plan, self.settings.request_timeout)
            choices = await unless_disconnected(request, work)
        record_of(request.scope).tokens(plan.prompt_tokens, sum(len(c.token_ids) for c in choices))
        return choices

    def prompts_only(self, request: Request, plan: Plan) -> list[Choice]:
        """The choices of a request that generates nothing (max_tokens 0 with echo: the prompt is returned and, with
        logprobs, scored); nothing is queued, as no generation runs."""
        record_of(request.scope).tokens(plan.prompt_tokens, 0)
        return [Choice(index, job, finish_reason="length") for index, job in plan.choices()]

    def stream(self, request: Request, plan: Plan, writer: StreamWriter) -> EventStream:
        """The streamed answer: admitted now, so that a full queue is a 429 rather than an error inside a 200."""
        ticket = self.admission.admit(plan.slots)
        record = record_of(request.scope)

        def gone() -> None:
            record.disconnected = True

        return EventStream(self._events(plan, writer, ticket, record), on_disconnect=gone)

    async def _events(
        self, plan: Plan, writer: StreamWriter, ticket: Ticket, record: RequestRecord
    ) -> AsyncGenerator[bytes, None]:
        completion_tokens = 0
        try:
            opening = writer.opening()
            if opening is not None:
                yield sse(opening)
            try:
                async with contextlib.aclosing(generate(self.engine, plan, self.settings.request_timeout)) as events:
                    async for event in events:
                        if isinstance(event, Progress) and event.delta.finish_reason is not None:
                            completion_tokens += len(event.delta.token_ids)
                        for chunk in writer.chunks(event):
                            yield sse(chunk)
            except ApiError as exc:  # the timeout: the answer is a 200 already, so the error is an event in it
                yield sse(exc.response())
            if writer.include_usage:
                yield sse(writer.usage(Usage.of(plan.prompt_tokens, completion_tokens)))
            yield sse("[DONE]")
        finally:
            record.tokens(plan.prompt_tokens, completion_tokens)
            ticket.release()
