"""The protocols every backend implements (generation; scoring where it declares SCORE), and the tokenizer helpers
they share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from longkit.errors import InputError


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
        return str(self.hf.decode(list(ids), skip_special_tokens=False))

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
            return str(self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
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


@dataclass
class ScoreRequest:
    """A continuation (text or token ids) whose log-likelihood is wanted, given an optional context.

    What is scored follows lm-evaluation-harness's `loglikelihood`: each token of the continuation, given the context
    and the continuation's tokens before it. Two texts are tokenized as lm-eval's `_encode_pair` does (the context's
    trailing whitespace moves to the continuation, the joined text is encoded, and the continuation is what follows
    the context's own tokens), so the tokens scored are the tokens the model would read; token ids are taken as
    they are. Without a context (None, "" or []) the tokenizer's BOS token, else its EOS token, is the context, so
    that every token of the continuation is scored (lm-eval's `prefix_token_id`); a tokenizer with neither leaves
    the continuation's first token as the context, unscored."""

    text: str | None = None
    token_ids: list[int] | None = None
    context: str | list[int] | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.token_ids is None):
            raise InputError("a score request needs exactly one of text or token_ids")
        if not (self.text if self.text is not None else self.token_ids):
            raise InputError("a score request needs a non-empty continuation to score")


@dataclass
class TokenScores:
    """A backend's answer to one ScoreRequest: the scored tokens and the natural-log probability of each."""

    token_ids: list[int]  # the continuation's scored tokens, in order
    logprobs: list[float]  # log p(token_ids[i] | the context and token_ids[:i]), natural log
    context_tokens: int  # tokens conditioned on before token_ids[0] (1 for the BOS of a request without context)

    @property
    def total(self) -> float:
        """The continuation's log-likelihood (lm-eval's `loglikelihood` value)."""
        return float(sum(self.logprobs))


def score_ids(tok: TextTokenizer, request: ScoreRequest) -> tuple[list[int], int]:
    """(context ids + continuation ids, how many of them are context) of a request; see ScoreRequest."""
    context = request.context or []
    if isinstance(context, str) and request.text is not None:
        return _encode_pair(tok, context, request.text)
    ctx = tok.encode(context) if isinstance(context, str) else list(context)
    cont = tok.encode(request.text) if request.text is not None else list(request.token_ids or [])
    if not cont:
        raise InputError("the continuation to score has no tokens")
    if ctx:
        return ctx + cont, len(ctx)
    prefix = _prefix_token(tok)
    if prefix is None:
        if len(cont) < 2:
            raise InputError(
                "a one-token continuation without context cannot be scored: this tokenizer has no BOS "
                "or EOS token to condition it on"
            )
        return cont, 1
    return [prefix, *cont], 1


def _encode_pair(tok: TextTokenizer, context: str, text: str) -> tuple[list[int], int]:
    """lm-evaluation-harness's `_encode_pair`: the joined text's tokens, the first len(encode(context)) of them
    being the context."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, text = context[:-spaces], context[-spaces:] + text
    if not context:
        return score_ids(tok, ScoreRequest(text=text))
    whole, n_ctx = tok.encode(context + text), len(tok.encode(context))
    if len(whole) <= n_ctx:
        raise InputError("the continuation to score has no tokens of its own after the context")
    return whole, n_ctx


def _prefix_token(tok: TextTokenizer) -> int | None:
    """The token a context-free sequence is conditioned on: BOS, else EOS, else none."""
    for name in ("bos_token_id", "eos_token_id"):
        value = getattr(tok.hf, name, None)
        if isinstance(value, int):
            return value
    return None


def prepare_scores(
    tok: TextTokenizer, requests: Sequence[ScoreRequest], max_context: int
) -> list[tuple[list[int], int]]:
    """score_ids of every request, each checked to fit the window (a longer one is refused, never truncated: a cut
    context would change every score)."""
    prepared = []
    for i, request in enumerate(requests):
        ids, n_ctx = score_ids(tok, request)
        if len(ids) > max_context:
            raise InputError(
                f"score request {i}: {len(ids)} tokens ({n_ctx} of context) exceed this backend's "
                f"{max_context}-token context window"
            )
        prepared.append((ids, n_ctx))
    return prepared


@runtime_checkable
class Backend(Protocol):
    """Anything that turns requests into completions. A backend that declares SCORE (see `registry.py`) is a Scorer
    too; `registry.scorer` checks that before a command scores."""

    name: str
    max_context: int
    tokenizer: TextTokenizer

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Generate one completion per request, in order; deterministic at temperature 0."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """A backend that scores continuations (declares SCORE)."""

    name: str
    max_context: int
    tokenizer: TextTokenizer

    def score(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        """Per-token log-probabilities of each request's continuation (see ScoreRequest), in request order.
        A request longer than max_context is a one-line InputError."""
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
