"""How long a RAG-versus-long-context sweep will take, measured before the long work starts."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

from longkit.backends.base import Backend, GenerationRequest
from longkit.eval.rag_qa import QAItem
from longkit.eval.rag_vs_long_report import setting_key
from longkit.io import ResultLog
from longkit.progress import _fmt_seconds
from longkit.rag.embed import _Base
from longkit.rag.pipeline import RagSettings, prepare_long


def _prompt_lengths(
    backend: Backend,
    items: Sequence[QAItem],
    settings: RagSettings,
    long_requests: Sequence[GenerationRequest],
    chunk_sizes: Sequence[int],
    top_ks: Sequence[int],
    log: ResultLog | None,
) -> list[int]:
    """Token counts of the prompts still to generate. Long-context prompts are built already; a RAG prompt is the
    question's prompt plus at most chunk size × k tokens of context, capped by what the window leaves."""
    tok = backend.tokenizer
    lengths = [tok.count(tok.render(r)) for r in long_requests]
    base = {it.id: tok.count(tok.render(prepare_long("", it.question, backend, settings).request)) for it in items}
    room = max(1, backend.max_context - settings.max_new_tokens)
    for size in chunk_sizes:
        for it in items:
            for k in top_ks:
                if log is None or f"{setting_key(size, k)}|{it.id}" not in log:
                    lengths.append(min(room, base[it.id] + size * k))
    return lengths


def _timed(backend: Backend, req: GenerationRequest, new: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    c = backend.generate([dataclasses.replace(req, max_new_tokens=new, stop=[])])[0]
    return time.perf_counter() - t0, c.completion_tokens


def _embedding_seconds(embedder: _Base, items: Sequence[QAItem], chunk_sizes: Sequence[int], backend: Backend) -> float:
    """Seconds to index every document at every chunk size, from one measured embedding batch."""
    if not chunk_sizes:
        return 0.0
    tok = backend.tokenizer
    doc_tokens = sum(tok.count(d) for d in {it.doc_id: it.document for it in items}.values())
    sample = [items[0].document[: embedder.max_tokens * 3]] * 4
    t0 = time.perf_counter()
    embedder.embed_documents(sample, pool_long=True)
    per_window = (time.perf_counter() - t0) / len(sample)
    windows = sum(
        math.ceil(doc_tokens / size) * math.ceil(size / max(1, embedder.max_tokens - 2)) for size in chunk_sizes
    )
    return windows * per_window


def estimate_run(
    backend: Backend,
    embedder: _Base,
    items: Sequence[QAItem],
    settings: RagSettings,
    long_requests: Sequence[GenerationRequest],
    chunk_sizes: Sequence[int],
    top_ks: Sequence[int],
    log: ResultLog | None = None,
) -> dict[str, Any]:
    """Seconds the run will take, from a measured prefill of its longest prompt, a measured decode step and
    a measured embedding batch; an upper bound (every answer is counted at its full token budget)."""
    tok = backend.tokenizer
    lengths = _prompt_lengths(backend, items, settings, long_requests, chunk_sizes, top_ks, log)
    if not lengths:
        return {"prompts": 0, "seconds": 0.0}
    # The prefill is measured on the longest prompt there can be: a whole document cut to the window.
    if long_requests:
        longest_req = max(long_requests, key=lambda r: tok.count(tok.render(r)))
    else:
        longest_req = prepare_long(items[0].document, items[0].question, backend, settings).request
    question_reqs = [prepare_long("", it.question, backend, settings).request for it in items]
    short_req = min(question_reqs, key=lambda r: tok.count(tok.render(r)))
    n_long = tok.count(tok.render(longest_req))
    n_short = tok.count(tok.render(short_req))
    t_long, _ = _timed(backend, longest_req, 1)
    t_short, _ = _timed(backend, short_req, 1)
    steps = min(9, settings.max_new_tokens)
    t_dec, produced = _timed(backend, short_req, steps) if steps > 1 else (t_short, 1)
    per_token = (t_dec - t_short) / (produced - 1) if produced > 1 and t_dec > t_short else t_short
    # Prefill time grows with length; interpolate between the two measured prompts (linear: an upper
    # bound for shorter prompts, since attention's share grows with length).
    slope = (t_long - t_short) / max(1, n_long - n_short) if n_long > n_short else t_long / max(1, n_long)
    gen_s = sum(max(t_short, t_short + slope * (n - n_short)) for n in lengths)
    gen_s += len(lengths) * (settings.max_new_tokens - 1) * per_token
    embed_s = _embedding_seconds(embedder, items, chunk_sizes, backend)
    return {
        "prompts": len(lengths),
        "prompt_tokens": int(sum(lengths)),
        "longest_prompt_tokens": n_long,
        "prefill_tokens_per_second": round(n_long / t_long, 1) if t_long > 0 else None,
        "decode_seconds_per_token": round(per_token, 4),
        "generation_seconds": round(gen_s, 1),
        "embedding_seconds": round(embed_s, 1),
        "seconds": round(gen_s + embed_s, 1),
        "max_new_tokens": settings.max_new_tokens,
    }


def describe_estimate(est: dict[str, Any]) -> str:
    """One line for the user: what will run and about how long it will take."""
    if not est.get("prompts"):
        return "estimate: nothing left to generate"
    rate = est.get("prefill_tokens_per_second")
    return (
        f"estimate: {est['prompts']} prompts ({est['prompt_tokens']:,} prompt tokens, up to "
        f"{est['max_new_tokens']} answer tokens each); measured prefill {rate:,.0f} tokens/s on a "
        f"{est['longest_prompt_tokens']:,}-token prompt → about {_fmt_seconds(est['seconds'])} "
        f"(generation {_fmt_seconds(est['generation_seconds'])}, "
        f"indexing {_fmt_seconds(est['embedding_seconds'])}); "
        "--limit N runs fewer questions"
    )
