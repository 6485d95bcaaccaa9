"""Log-probabilities of finished choices, in the shape each API returns them: the legacy completions lists (with the
prompt's tokens under echo) and the chat endpoint's per-token objects. They are scored after generation, in one
forward pass with the batch paused, because the batch loop does not report them."""

from __future__ import annotations

from longkit.serve.batching import ServingEngine
from longkit.serve.generation import Choice
from longkit.serve.wire import ChatLogprobs, CompletionLogprobs, TokenLogprob, TopLogprob


def kept_tokens(engine: ServingEngine, choice: Choice) -> list[int]:
    """The generated tokens that make up the returned text (a stop string may end inside the last ones)."""
    ids = choice.token_ids
    if choice.finish_reason != "stop":
        return ids
    for k in range(len(ids) + 1):
        if len(engine.decode(ids[:k])) >= len(choice.text):
            return ids[:k]
    return ids


async def completion_logprobs(engine: ServingEngine, choice: Choice, top_n: int, echo: bool) -> CompletionLogprobs:
    """The completions API's logprobs of a choice; with echo the prompt's tokens come first (the very first has
    no log-probability, as nothing precedes it)."""
    gen = kept_tokens(engine, choice)
    prompt = choice.job.prompt_ids
    ids = prompt + gen
    start = 1 if echo else len(prompt)
    scored = await engine.token_logprobs(ids, start, top_n) if len(ids) > start else []
    shown = ids[start - 1 :] if echo else gen
    lead: list[None] = [None] if echo else []
    tokens = [engine.decode([t]) for t in shown]
    tops: list[dict[str, float] | None] = [*lead, *({engine.decode([t]): v for t, v in top} for _, top in scored)]
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t)
    return CompletionLogprobs(
        tokens=tokens,
        token_logprobs=[*lead, *(lp for lp, _ in scored)],
        top_logprobs=tops if top_n else None,
        text_offset=offsets,
    )


async def chat_logprobs(engine: ServingEngine, choice: Choice, top_n: int) -> ChatLogprobs:
    """The chat API's logprobs of a choice: each generated token with its top_n alternatives."""
    gen = kept_tokens(engine, choice)
    prompt = choice.job.prompt_ids
    scored = await engine.token_logprobs(prompt + gen, len(prompt), top_n) if gen else []

    def alternative(token: int, logprob: float) -> TopLogprob:
        text = engine.decode([token])
        return TopLogprob(token=text, logprob=logprob, bytes=list(text.encode("utf-8")))

    content = []
    for t, (lp, top) in zip(gen, scored):
        chosen = alternative(t, lp)
        content.append(
            TokenLogprob(
                token=chosen.token, logprob=lp, bytes=chosen.bytes, top_logprobs=[alternative(a, v) for a, v in top]
            )
        )
    return ChatLogprobs(content=content)
