"""OpenAI's response wire format as pydantic models: completions, chat completions, their stream chunks, the model
list, usage, log-probabilities and errors. Every JSON object the server sends is one of these, serialised by `dump`.

Field names and nesting follow OpenAI's API reference; the request side is in `protocol.py`."""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

FinishReason = Literal["stop", "length"]


class WireModel(BaseModel):
    """A response object; the fields named in OMIT_UNSET are sent only when given (OpenAI omits them, not null)."""

    model_config = ConfigDict(extra="forbid")
    OMIT_UNSET: ClassVar[frozenset[str]] = frozenset()

    def model_post_init(self, context: Any, /) -> None:
        """Count every field not in OMIT_UNSET as given."""
        # so that `exclude_unset` drops exactly the optional ones, at any depth
        self.__pydantic_fields_set__.update(type(self).model_fields.keys() - self.OMIT_UNSET)

    def dump(self) -> dict[str, Any]:
        """The JSON object as sent."""
        return self.model_dump(mode="json", exclude_unset=True)


class Usage(WireModel):
    """Token counts of one response."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        """Usage with the total filled in."""
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


class ResponseHeader(WireModel):
    """What every response and chunk of one request shares: its id, creation time and model."""

    id: str
    created: int
    model: str

    @classmethod
    def new(cls, prefix: str, model: str) -> ResponseHeader:
        """A fresh id (`cmpl-…`, `chatcmpl-…`) stamped now."""
        return cls(id=f"{prefix}-{uuid.uuid4().hex}", created=int(time.time()), model=model)


# --- /v1/completions -------------------------------------------------------------------------------------------


class CompletionLogprobs(WireModel):
    """The legacy completions log-probabilities: parallel lists over the returned tokens."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None] | None
    text_offset: list[int]


class CompletionChoice(WireModel):
    """One choice of a text completion."""

    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: FinishReason | None


class CompletionResponse(WireModel):
    """Body of a non-streamed POST /v1/completions answer."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class CompletionChunkChoice(WireModel):
    """One choice's new text in a completion stream chunk."""

    index: int
    text: str
    logprobs: None = None
    finish_reason: FinishReason | None = None


class CompletionChunk(WireModel):
    """One server-sent event of a streamed completion; `usage` is sent only with stream_options.include_usage."""

    OMIT_UNSET = frozenset({"usage"})
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChunkChoice]
    usage: Usage | None = None


# --- /v1/chat/completions --------------------------------------------------------------------------------------


class TopLogprob(WireModel):
    """A token with its log-probability and UTF-8 bytes."""

    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TopLogprob):
    """A generated token with the most likely alternatives at its position."""

    top_logprobs: list[TopLogprob]


class ChatLogprobs(WireModel):
    """A chat choice's log-probabilities."""

    content: list[TokenLogprob]
    refusal: None = None


class ChatMessage(WireModel):
    """The assistant message of a chat choice."""

    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(WireModel):
    """One choice of a chat completion."""

    index: int
    message: ChatMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: FinishReason | None


class Citation(WireModel):
    """A retrieved chunk the answer was given (`serve --index`); longkit's extension of the chat response."""

    model_config = ConfigDict(extra="allow")  # whatever else the index records about the chunk goes along
    doc_id: str
    text: str
    start: int
    end: int
    position: int
    score: float
    rank: int


class Retrieval(WireModel):
    """How a RAG answer retrieved (`serve --index`, beside `citations`): the query embedded, its length in the
    embedder's tokens, and whether it was cut to the embedder's window (its most recent text kept)."""

    query_truncated: bool
    query_tokens: int  # as embedded (instruction and special tokens included)
    full_query_tokens: int  # before any cut
    max_query_tokens: int  # the embedder's window
    history_turns: int  # user turns the query is made of, at most


class ChatCompletionResponse(WireModel):
    """Body of a non-streamed POST /v1/chat/completions answer."""

    OMIT_UNSET = frozenset({"citations", "retrieval"})
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    citations: list[Citation] | None = None
    retrieval: Retrieval | None = None


class ChatDelta(WireModel):
    """What a chat stream chunk adds to a choice: the role on its first chunk, then content."""

    OMIT_UNSET = frozenset({"role", "content"})
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(WireModel):
    """One choice's delta in a chat stream chunk."""

    index: int
    delta: ChatDelta
    logprobs: None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(WireModel):
    """One server-sent event of a streamed chat completion."""

    OMIT_UNSET = frozenset({"usage", "citations", "retrieval"})
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    citations: list[Citation] | None = None
    retrieval: Retrieval | None = None


# --- /v1/models, /health, errors -------------------------------------------------------------------------------


class ModelCard(WireModel):
    """The served model; max_model_len is vLLM's extension that clients read the window from."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "longkit"
    max_model_len: int


class ModelList(WireModel):
    """Body of GET /v1/models."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(WireModel):
    """Body of GET /health (model and running only when healthy)."""

    OMIT_UNSET = frozenset({"model", "running"})
    status: str
    model: str | None = None
    running: int | None = None


class ErrorDetail(WireModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None
    code: int


class ErrorResponse(WireModel):
    """Body of every error answer (and of an error event inside a stream)."""

    error: ErrorDetail
