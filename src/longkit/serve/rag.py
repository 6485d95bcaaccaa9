"""Retrieval for the chat endpoint (`serve --index`): the conversation's retrieval query, embedded, then the ChatQA
prompt with the chunks it retrieved. A query longer than the embedder reads (a long earlier user turn, say) is cut to
the embedder's window, its most recent text kept, rather than refused: an API client cannot choose its history turns.
The answer's `retrieval` object says whether the query was cut, with the token counts."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from longkit.errors import LongkitError
from longkit.serve.protocol import ApiError
from longkit.serve.wire import Citation, Retrieval

if TYPE_CHECKING:
    from longkit.backends.base import GenerationRequest
    from longkit.rag.embed import _Base
    from longkit.rag.pipeline import RagPipeline


@dataclass
class FittedQuery:
    """A retrieval query cut to the embedder's window where it was longer."""

    text: str
    tokens: int  # as embedded, instruction and special tokens included
    full_tokens: int  # before the cut
    truncated: bool


@dataclass
class RagPrompt:
    """What retrieval gives a chat request: the request to render, the chunks to cite and how it retrieved."""

    request: GenerationRequest
    citations: list[Citation]
    retrieval: Retrieval


def fit_query(embedder: _Base, text: str) -> FittedQuery:
    """The query as the embedder can read it: whole when it fits, else its last tokens that fit (the latest turn
    matters most to what is asked now)."""
    limit = embedder.max_tokens
    full = embedder.token_counts([embedder.query_text(text)])[0]
    if full <= limit:
        return FittedQuery(text, full, full, False)
    enc = embedder.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids, offsets = list(enc["input_ids"]), enc.get("offset_mapping")
    keep = limit - (full - len(ids))  # room left by the query instruction and the special tokens
    while keep > 0:
        # (re-tokenising a cut text can merge or split a token at the seam: shorten until it fits)
        cut = text[offsets[len(ids) - keep][0] :] if offsets else str(embedder.tokenizer.decode(ids[-keep:]))
        n = embedder.token_counts([embedder.query_text(cut)])[0]
        if n <= limit:
            return FittedQuery(cut, n, full, True)
        keep -= n - limit
    raise ApiError(
        400,
        f"messages: embedder '{embedder.name}' reads {limit} tokens, fewer than its query instruction takes",
        param="messages",
    )


def _prepare(rag: RagPipeline, messages: list[dict[str, str]], max_tokens: int) -> RagPrompt:
    """Retrieve for the conversation and build its prompt (blocking: embedding and search)."""
    from longkit.rag.pipeline import prepare_rag
    from longkit.rag.retrieve import query_from_messages

    settings = dataclasses.replace(rag.settings, max_new_tokens=max_tokens)
    embedder = rag.retriever.embedder
    query = fit_query(embedder, query_from_messages(messages, settings.history_turns))
    vector: np.ndarray = embedder.embed_queries([query.text])[0]
    prep = prepare_rag(rag.retriever, rag.backend, messages, settings, query_vector=vector)
    retrieval = Retrieval(
        query_truncated=query.truncated,
        query_tokens=query.tokens,
        full_query_tokens=query.full_tokens,
        max_query_tokens=embedder.max_tokens,
        history_turns=settings.history_turns,
    )
    return RagPrompt(prep.request, [Citation.model_validate(h.to_dict()) for h in prep.hits], retrieval)


async def rag_prompt(rag: RagPipeline, messages: list[dict[str, str]], max_tokens: int) -> RagPrompt:
    """Retrieve (in a worker thread, so the event loop keeps serving) and build the prompt; a RAG refusal is a 400."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, _prepare, rag, messages, max_tokens)
    except LongkitError as exc:
        raise ApiError(400, str(exc), param="messages") from None
