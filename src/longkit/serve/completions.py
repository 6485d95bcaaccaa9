"""POST /v1/completions: one or more raw prompts (text or token ids), n choices each, with echo and legacy logprobs;
max_tokens 0 with echo scores the prompt without generating (what a log-likelihood client such as longkit's openai
backend sends)."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request

from longkit.serve.generation import Choice, Job, Plan
from longkit.serve.logprobs import completion_logprobs
from longkit.serve.protocol import ApiError, CompletionBody, Prompt
from longkit.serve.service import CompletionService, StreamWriter
from longkit.serve.streaming import EventStream
from longkit.serve.wire import (
    CompletionChoice,
    CompletionChunk,
    CompletionChunkChoice,
    CompletionResponse,
    FinishReason,
    ResponseHeader,
    Usage,
)

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for this endpoint


class TextChunks(StreamWriter):
    """The completions API's stream chunks; with echo, each choice opens with its prompt."""

    def __init__(self, header: ResponseHeader, include_usage: bool, echo: bool):
        super().__init__(header, include_usage)
        self.echo = echo

    def started(self, index: int, job: Job) -> CompletionChunk | None:
        """The prompt, under echo."""
        return self._chunk([CompletionChunkChoice(index=index, text=job.prompt_text)]) if self.echo else None

    def text(self, index: int, text: str) -> CompletionChunk:
        """New text of a choice."""
        return self._chunk([CompletionChunkChoice(index=index, text=text)])

    def finished(self, index: int, reason: FinishReason) -> CompletionChunk:
        """A choice's finish reason."""
        return self._chunk([CompletionChunkChoice(index=index, text="", finish_reason=reason)])

    def usage(self, usage: Usage) -> CompletionChunk:
        """The usage chunk (no choices)."""
        return CompletionChunk(**self.header.dump(), choices=[], usage=usage)

    def _chunk(self, choices: list[CompletionChunkChoice]) -> CompletionChunk:
        return self.with_usage_field(CompletionChunk(**self.header.dump(), choices=choices))


def prompts_of(prompt: Prompt) -> list[str | list[int]]:
    """The prompts of a request: a string, a list of strings, one tokenized prompt or a list of them."""
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise ApiError(400, "prompt: must not be empty", param="prompt")
    if all(isinstance(t, int) for t in prompt):
        return [cast("list[int]", prompt)]
    return list(cast("list[str] | list[list[int]]", prompt))


class TextCompletions:
    """Serves the completions API on the shared completion service."""

    def __init__(self, service: CompletionService):
        self.service = service

    async def create(self, request: Request, body: CompletionBody) -> CompletionResponse | EventStream:
        """Answer a completions request, as one response or as a stream."""
        svc = self.service
        svc.check_model(body.model)
        body.check_max_tokens()
        max_tokens = body.max_tokens if body.max_tokens is not None else DEFAULT_MAX_TOKENS
        svc.check_budget(max_tokens, "max_tokens")
        plan = svc.plan(self._jobs(body, max_tokens), body, max_tokens, body.stops())
        header = svc.header("cmpl")
        if body.stream:
            if body.logprobs is not None:
                raise ApiError(400, "logprobs: not supported with stream=true on this server", param="logprobs")
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return svc.stream(request, plan, TextChunks(header, include_usage, body.echo))
        choices = svc.prompts_only(request, plan) if max_tokens == 0 else await svc.complete(request, plan)
        return CompletionResponse(
            **header.dump(), choices=[await self._choice(c, body) for c in choices], usage=self._usage(plan, choices)
        )

    def _jobs(self, body: CompletionBody, max_tokens: int) -> list[Job]:
        """One job per prompt, whichever of OpenAI's four forms the prompts came in."""
        svc = self.service
        jobs = []
        for i, p in enumerate(prompts_of(body.prompt)):
            if isinstance(p, str):
                if not p:
                    raise ApiError(400, "prompt: must not be empty", param="prompt")
                jobs.append(Job(svc.encode(p, "prompt", max_tokens), p, i * body.n))
            else:  # token ids (as lm-evaluation-harness sends them): echo shows them decoded, special tokens kept
                ids = svc.check_tokens(p, "prompt", max_tokens)
                jobs.append(Job(ids, svc.engine.tokenizer.decode(ids), i * body.n))
        return jobs

    async def _choice(self, choice: Choice, body: CompletionBody) -> CompletionChoice:
        engine = self.service.engine
        logprobs = None
        if body.logprobs is not None:
            logprobs = await completion_logprobs(engine, choice, body.logprobs, body.echo)
        text = choice.job.prompt_text + choice.text if body.echo else choice.text
        return CompletionChoice(index=choice.index, text=text, logprobs=logprobs, finish_reason=choice.finish_reason)

    @staticmethod
    def _usage(plan: Plan, choices: list[Choice]) -> Usage:
        return Usage.of(plan.prompt_tokens, sum(len(c.token_ids) for c in choices))
