"""Question → retrieval → ChatQA prompt → any backend. The public entry point of `longkit.rag`
(other areas, e.g. eval, call RAG through this module only).

    from longkit.rag.pipeline import RagPipeline, RagSettings
    rag = RagPipeline.from_index("idx/", backend)            # tuned k / budget from the manifest
    ans = rag.answer("What does a with statement do?")       # .text, .hits (citations), .prompt_tokens
    rag.answer([{"role": "user", "content": ...}, ...])      # multi-turn: recent user turns form the query

    from longkit.rag.pipeline import prepare_rag, prepare_long

(RAG versus long context, an evaluation built on these, is `longkit.eval.rag_vs_long`.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from longkit.backends.base import Backend, Completion, GenerationRequest
from longkit.errors import ConfigError, InputError
from longkit.rag.index import Hit
from longkit.rag.prompt import FULL_ANSWER, SHORT_ANSWER, as_messages, build_request, format_context, resolved_style
from longkit.rag.retrieve import Retriever, query_from_messages
from longkit.rag.tune import max_budget

__all__ = [
    "RagSettings",
    "RagAnswer",
    "Prepared",
    "RagPipeline",
    "prepare_rag",
    "prepare_long",
    "resolved_style",
    "SHORT_ANSWER",
    "FULL_ANSWER",
]

_MARGIN = 8  # tokens of slack: re-tokenising joined text can merge or split a token at the seams


@dataclass
class RagSettings:
    """How many chunks, in which order, in which prompt."""

    top_k: int | None = 5
    token_budget: int | None = None  # takes precedence over top_k when set
    order: str = "score"  # or "position"
    style: str = "auto"  # "chatqa" (ChatQA format), "chat" (the model's own chat template), "auto": by model
    instruction: str = SHORT_ANSWER
    max_new_tokens: int = 64
    history_turns: int = 2

    def retrieval_args(self) -> dict[str, Any]:
        """Keyword arguments for Retriever.search."""
        if self.token_budget is not None:
            return {"token_budget": self.token_budget}
        if self.top_k is None:
            raise ConfigError("RAG settings need top_k or token_budget")
        return {"k": self.top_k}


@dataclass
class Prepared:
    """A request ready to generate, with the chunks it carries."""

    request: GenerationRequest
    hits: list[Hit] = field(default_factory=list)
    context_tokens: int = 0  # generator tokens of the context block
    dropped: int = 0  # retrieved chunks left out so the prompt fits the window
    truncated: bool = False  # (long context) the document was cut in the middle


@dataclass
class RagAnswer:
    """The model's answer and the chunks it was given (its citations)."""

    text: str
    hits: list[Hit]
    context_tokens: int
    dropped: int
    completion: Completion

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view."""
        return {
            "answer": self.text,
            "citations": [h.to_dict() for h in self.hits],
            "context_tokens": self.context_tokens,
            "dropped_chunks": self.dropped,
            "prompt_tokens": self.completion.prompt_tokens,
            "completion_tokens": self.completion.completion_tokens,
        }


def _concrete(settings: RagSettings, backend: Backend) -> RagSettings:
    """Settings with the 'auto' prompt style resolved for this backend's model."""
    if settings.style == "auto":
        return dataclasses.replace(settings, style=resolved_style("auto", backend))
    return settings


def _available(backend: Backend, messages: list[dict[str, str]], settings: RagSettings) -> int:
    """Generator tokens left for the context once the prompt, question and answer budget are placed."""
    tok = backend.tokenizer
    overhead = tok.count(
        tok.render(build_request("", messages, settings.style, settings.instruction, settings.max_new_tokens))
    )
    avail = backend.max_context - settings.max_new_tokens - overhead - _MARGIN
    if avail <= 0:
        raise InputError(
            f"the question and prompt take {overhead} tokens; with {settings.max_new_tokens} answer tokens they "
            f"leave no room for context in the model's {backend.max_context}-token window"
        )
    return avail


def prepare_rag(
    retriever: Retriever,
    backend: Backend,
    question: str | Sequence[dict[str, str]],
    settings: RagSettings,
    doc_ids: Sequence[str] | None = None,
    query_vector: np.ndarray | None = None,
) -> Prepared:
    """Retrieve for a question (or conversation) and build the prompt; chunks that would overflow the
    window are dropped from the least relevant end (and counted in `dropped`)."""
    settings = _concrete(settings, backend)
    messages = as_messages(question)
    avail = _available(backend, messages, settings)
    hits = retriever.search(
        messages,
        order="score",
        doc_ids=doc_ids,
        history_turns=settings.history_turns,
        query_vector=query_vector,
        **settings.retrieval_args(),
    )
    tok = backend.tokenizer
    kept: list[Hit] = []
    used = 0
    for h in hits:
        n = tok.count(h.chunk.text) + 2
        if used + n > avail:
            break
        kept.append(h)
        used += n
    from longkit.rag.retrieve import order_hits

    kept = order_hits(kept, settings.order)
    context = format_context([h.chunk.text for h in kept])
    while kept and tok.count(context) > avail:  # seams tokenised differently: drop the weakest
        weakest = max(kept, key=lambda h: h.rank)
        kept.remove(weakest)
        context = format_context([h.chunk.text for h in kept])
    req = build_request(context, messages, settings.style, settings.instruction, settings.max_new_tokens)
    return Prepared(req, kept, tok.count(context) if context else 0, len(hits) - len(kept))


def prepare_long(
    document: str, question: str | Sequence[dict[str, str]], backend: Backend, settings: RagSettings
) -> Prepared:
    """The whole document as context, cut in the middle to fit the window (LongBench convention)."""
    settings = _concrete(settings, backend)
    messages = as_messages(question)
    avail = _available(backend, messages, settings)
    tok = backend.tokenizer
    context, truncated = tok.truncate_middle(document.strip(), avail)
    req = build_request(context, messages, settings.style, settings.instruction, settings.max_new_tokens)
    return Prepared(req, [], tok.count(context), 0, truncated)


class RagPipeline:
    """Retriever + backend + settings: answer questions and conversations with citations."""

    def __init__(self, retriever: Retriever, backend: Backend, settings: RagSettings | None = None):
        self.retriever = retriever
        self.backend = backend
        self.settings = settings or RagSettings()

    @classmethod
    def from_index(cls, path: str | Path, backend: Backend, embedder: Any = None, **overrides: Any) -> RagPipeline:
        """Open an index; settings come from its tuned choice (`longkit rag tune`), then overrides."""
        retriever = Retriever.open(path, embedder)
        tuned = retriever.index.manifest.get("tuned") or {}
        if not isinstance(tuned, dict) or not (
            tuned.get("token_budget") is None or (isinstance(tuned["token_budget"], int) and tuned["token_budget"] >= 1)
        ):
            raise InputError(
                f"{Path(path) / 'manifest.json'}: field 'tuned.token_budget' must be a positive integer; "
                "rerun `longkit rag tune`"
            )
        settings = RagSettings()
        for k, v in overrides.items():
            if v is not None:
                if not hasattr(settings, k):
                    raise ConfigError(f"unknown RAG setting '{k}'")
                setattr(settings, k, v)
        room = max_budget(backend.max_context, settings.max_new_tokens)
        if (
            overrides.get("token_budget") is not None
            and settings.token_budget is not None
            and settings.token_budget > room
        ):
            raise ConfigError(
                f"--budget {settings.token_budget}: above the {room} tokens a "
                f"{backend.max_context}-token window leaves after {settings.max_new_tokens} answer "
                "tokens; give a smaller budget"
            )
        explicit_k = overrides.get("top_k") is not None and overrides.get("token_budget") is None
        if tuned.get("token_budget") and overrides.get("token_budget") is None and not explicit_k:
            # A budget tuned for a larger window (or a smaller answer budget) is capped, never taken as is:
            # chunks beyond the window would only be dropped at ask time.
            settings.token_budget = min(int(tuned["token_budget"]), room)
            settings.top_k = None
            if int(tuned["token_budget"]) > room:
                import logging

                logging.getLogger("longkit.rag").warning(
                    "%s: the tuned budget of %s tokens exceeds the %s tokens this model's %s-token window leaves; "
                    "using %s",
                    path,
                    tuned["token_budget"],
                    room,
                    backend.max_context,
                    room,
                )
        if explicit_k:
            settings.token_budget = None  # an explicit k beats the tuned budget
        return cls(retriever, backend, _concrete(settings, backend))

    def prepare(self, question: str | Sequence[dict[str, str]], **overrides: Any) -> Prepared:
        """Retrieve and build the request without generating."""
        settings = dataclasses.replace(self.settings, **{k: v for k, v in overrides.items() if v is not None})
        return prepare_rag(self.retriever, self.backend, question, settings)

    def answer_many(self, questions: Sequence[str | Sequence[dict[str, str]]]) -> list[RagAnswer]:
        """Answer a batch of questions or conversations (one backend call)."""
        prepared = [self.prepare(q) for q in questions]
        outs = self.backend.generate([p.request for p in prepared])
        return [RagAnswer(o.text.strip(), p.hits, p.context_tokens, p.dropped, o) for p, o in zip(prepared, outs)]

    def answer(self, question: str | Sequence[dict[str, str]]) -> RagAnswer:
        """Answer one question or conversation."""
        return self.answer_many([question])[0]

    def query_text(self, question: str | Sequence[dict[str, str]]) -> str:
        """The text used as the retrieval query."""
        return query_from_messages(question, self.settings.history_turns)
