"""The OpenAI request surface the server accepts: request bodies, the parameters it refuses, and the error they raise.

Field names and meanings follow OpenAI's API reference (Completions and Chat Completions); a parameter the server
does not implement is refused with a 400 that names it, never silently ignored."""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from longkit.serve.wire import ErrorDetail, ErrorResponse

# Parameters OpenAI defines that this server does not implement. A request may still send one at its neutral value
# (what OpenAI does when it is absent), e.g. `top_p: 1` or `presence_penalty: 0`, as several clients always do.
NEUTRAL: dict[str, Any] = {
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "best_of": 1,
    "suffix": None,
    "logit_bias": {},
    "tools": [],
    "functions": [],
    "tool_choice": "none",
    "function_call": "none",
    "parallel_tool_calls": None,
    "response_format": {"type": "text"},
    "modalities": ["text"],
    "audio": None,
    "prediction": None,
    "reasoning_effort": None,
    "service_tier": None,
    "store": False,
    "metadata": None,
    "web_search_options": None,
}


class ApiError(Exception):
    """A request the server answers with an OpenAI-style error (4xx unless the server itself is broken)."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.headers = status, message, param, headers or {}
        self.kind = kind or {
            401: "authentication_error",
            404: "not_found_error",
            413: "invalid_request_error",
            429: "rate_limit_error",
        }.get(status, "invalid_request_error" if status < 500 else "server_error")

    def response(self) -> ErrorResponse:
        """OpenAI's error object."""
        detail = ErrorDetail(message=self.message, type=self.kind, param=self.param, code=self.status)
        return ErrorResponse(error=detail)

    def body(self) -> dict[str, Any]:
        """OpenAI's error object as JSON."""
        return self.response().dump()


class StreamOptions(BaseModel):
    """`stream_options`: include_usage adds a last chunk carrying the usage."""

    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class GenerationBody(BaseModel):
    """What both completion bodies share: the model, streaming, n, sampling and stop strings."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=16)
    temperature: float | None = Field(None, ge=0.0, le=2.0, allow_inf_nan=False)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)  # what torch.manual_seed takes
    max_tokens: int | None = Field(None, ge=1)
    user: str | None = None  # an end-user id for the provider's abuse tracking; it changes nothing here

    def stops(self) -> list[str]:
        """Stop strings as a list (OpenAI allows up to 4)."""
        out = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(out) > 4:
            raise ApiError(400, "stop: at most 4 stop sequences are allowed", param="stop")
        return [s for s in out if s]


# `prompt` takes any of OpenAI's four forms; a body that matches none gets this message (pydantic's would name a
# union branch); token ids are strict integers, so `true` or `1.0` is no token
PROMPT_FORMS = "expected a string, a list of strings, a list of token ids or a list of lists of token ids"
Prompt = str | list[str] | list[StrictInt] | list[list[StrictInt]]


class CompletionBody(GenerationBody):
    """Body of POST /v1/completions."""

    prompt: Prompt
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5, strict=True)  # a count here, not the chat endpoint's boolean
    # 0 generates nothing: with echo (and logprobs) it scores the prompt, as vLLM allows; without echo it is refused
    max_tokens: int | None = Field(None, ge=0)

    def check_max_tokens(self) -> None:
        """Refuse max_tokens 0 where it means nothing to answer: without echo, or with a stream (400 naming it)."""
        if self.max_tokens != 0:
            return
        if not self.echo:
            raise ApiError(
                400,
                "max_tokens: 0 generates nothing; it is allowed only with echo=true (to score the "
                "prompt with logprobs)",
                param="max_tokens",
            )
        if self.stream:
            raise ApiError(400, "max_tokens: 0 is not supported with stream=true on this server", param="max_tokens")


class TextPart(BaseModel):
    """A text part of a message's content (the array form of `content`)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    """One chat message; the roles a plain chat model understands."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        """The content as one string."""
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatBody(GenerationBody):
    """Body of POST /v1/chat/completions."""

    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    # vLLM's extensions for the chat template: open a new assistant turn after the messages (the default), or
    # leave the final (assistant) message open so the model continues its text; not both
    add_generation_prompt: bool = True
    continue_final_message: bool = False

    def check_template_flags(self) -> None:
        """Refuse contradictory chat-template flags (400 naming the parameter)."""
        if self.continue_final_message and self.add_generation_prompt:
            raise ApiError(
                400,
                "continue_final_message: cannot be true together with add_generation_prompt (which "
                "defaults to true): send add_generation_prompt: false",
                param="continue_final_message",
            )
        if self.continue_final_message and self.messages[-1].role != "assistant":
            raise ApiError(
                400,
                f"continue_final_message: the final message must be the assistant's to continue "
                f"(it is the {self.messages[-1].role}'s)",
                param="continue_final_message",
            )


Body = TypeVar("Body", bound=BaseModel)


def parse_body(raw: bytes, model: type[Body]) -> Body:
    """Decode, parse and validate a request body; every failure is a 400 in OpenAI's error format."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    try:  # JSON may escape a lone UTF-16 surrogate ("\ud800"), which is no text a tokenizer can take
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "the request body contains an unpaired UTF-16 surrogate escape") from None
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        # the deepest error says most (for `str | list[...]` fields, the list branch's item); union branch names
        # ('str', 'list[str]') are not part of the parameter's path
        err = max(exc.errors(), key=lambda e: len(e["loc"]))
        loc = ".".join(str(p) for p in err["loc"] if p not in ("str", "int", "float", "bool") and "[" not in str(p))
        if err["type"] == "literal_error" and loc.endswith("role"):
            raise ApiError(
                400, f"{loc}: role must be 'system', 'user' or 'assistant' (got {err['input']!r})", param=loc
            ) from None
        if err["type"] == "extra_forbidden":
            raise ApiError(400, f"{loc}: this field is not supported", param=loc) from None
        if err["loc"][0] == "prompt" and model is CompletionBody:
            raise ApiError(400, f"prompt: {PROMPT_FORMS}", param="prompt") from None
        raise ApiError(400, f"{loc or 'body'}: {err['msg']}", param=loc or None) from None
    for name, value in (body.model_extra or {}).items():
        if name in NEUTRAL and value in (NEUTRAL[name], None):
            continue
        what = "is not implemented by this server" if name in NEUTRAL else "is not a parameter this server knows"
        raise ApiError(400, f"{name}: this parameter {what}", param=name)
    return body
