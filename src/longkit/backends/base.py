"""The generation protocol every backend implements, and the tokenizer helper they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class GenerationRequest:
    """One generation: a raw prompt string or chat messages, plus decoding settings."""

    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    max_new_tokens: int = 64
    stop: list[str] = field(default_factory=list)
    temperature: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a GenerationRequest needs exactly one of prompt or messages")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")


@dataclass
class Completion:
    """A backend's answer to one request."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # "stop" (EOS or stop string) or "length"
    truncated: bool = False  # the prompt was cut in the middle to fit the context window

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view for logs."""
        return {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
            "truncated": self.truncated,
        }


class TextTokenizer:
    """Wraps a Hugging Face tokenizer: counting, middle truncation and chat-template rendering."""

    def __init__(self, hf_tokenizer: Any):
        self.hf = hf_tokenizer

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer ships a chat template."""
        return bool(getattr(self.hf, "chat_template", None))

    def encode(self, text: str) -> list[int]:
        """Token ids of text, without special tokens."""
        return list(self.hf(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids."""
        return self.hf.decode(list(ids), skip_special_tokens=False)

    def count(self, text: str) -> int:
        """Number of tokens in text (no special tokens added)."""
        return len(self.encode(text))

    def render(self, request: GenerationRequest) -> str:
        """The exact prompt text the model sees for a request (chat template applied to messages)."""
        if request.prompt is not None:
            return request.prompt
        return self.render_messages(request.messages or [])

    def render_messages(self, messages: list[dict[str, str]]) -> str:
        """Apply the chat template (or a plain 'role: content' fallback) and open the assistant turn."""
        if self.has_chat_template:
            return self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        parts = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join(parts) + "\n\nAssistant:"

    def truncate_middle(self, text: str, max_tokens: int) -> tuple[str, bool]:
        """Keep the first and last max_tokens/2 tokens of text (LongBench/InfiniteBench convention)."""
        ids = self.encode(text)
        if len(ids) <= max_tokens:
            return text, False
        if max_tokens <= 0:
            return "", True
        head = max_tokens // 2
        tail = max_tokens - head
        return self.decode(ids[:head]) + self.decode(ids[len(ids) - tail :]), True


def fit_request(tok: TextTokenizer, request: GenerationRequest, max_context: int) -> tuple[str, bool]:
    """Render a request and middle-truncate it so prompt + answer budget fit in max_context tokens.

    For chat requests the longest message is the one truncated, so the template and the question
    survive intact.
    """
    budget = max_context - request.max_new_tokens
    if budget <= 0:
        raise ValueError(f"max_new_tokens={request.max_new_tokens} leaves no room in a {max_context}-token context")
    text = tok.render(request)
    excess = tok.count(text) - budget
    if excess <= 0:
        return text, False
    if request.prompt is not None:
        return tok.truncate_middle(text, budget)[0], True
    messages = [dict(m) for m in request.messages or []]
    longest = max(range(len(messages)), key=lambda i: len(messages[i]["content"]))
    content = messages[longest]["content"]
    # A few tokens of slack: re-tokenising at the cut can merge or split a token.
    keep = max(tok.count(content) - excess - 8, 0)
    for _ in range(4):
        messages[longest]["content"] = tok.truncate_middle(content, keep)[0]
        text = tok.render_messages(messages)
        if tok.count(text) <= budget:
            return text, True
        keep = max(keep - 16, 0)
    raise ValueError("could not truncate the request to fit the context window")


@runtime_checkable
class Backend(Protocol):
    """Anything that turns requests into completions."""

    name: str
    max_context: int
    tokenizer: TextTokenizer

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Generate one completion per request, in order; deterministic at temperature 0."""
        ...


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut text at the first stop string; returns (text, whether a stop string was found)."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut], cut != len(text)
