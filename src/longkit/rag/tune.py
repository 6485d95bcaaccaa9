"""Choosing the retrieval budget: the cheapest chunk size x top-k within a tolerance of the best score (or whose
95% interval holds the best score),
never more context than the model's window leaves once the answer budget is reserved.

The sweep that produces the scores is an evaluation (`longkit.eval.rag_vs_long`); this module only holds
the choice and the window bound, so that `rag` needs nothing from `eval`.
"""

from __future__ import annotations

import math
from typing import Any

from longkit.errors import ConfigError, InputError


def max_budget(max_context: int, answer_budget: int) -> int:
    """The largest retrieval budget (context tokens) a model with this window can take: window − answer budget."""
    if answer_budget < 1:
        raise ConfigError(f"answer budget must be >= 1 token, got {answer_budget}")
    room = int(max_context) - int(answer_budget)
    if room < 1:
        raise ConfigError(f"an answer budget of {answer_budget} tokens leaves no room in a {max_context}-token window")
    return room


def choose_setting(
    summary: dict[str, Any], tolerance: float = 0.02, max_context: int | None = None, answer_budget: int | None = None
) -> dict[str, Any]:
    """The cheapest RAG setting (fewest context tokens) within `tolerance` of the best score, or whose 95% interval
    (the sweep's `ci`, over questions) reaches the best score, and whether the whole document beats every RAG
    setting.

    With `max_context` and `answer_budget`, settings whose budget (chunk size x k) exceeds the window
    minus the answer budget are never chosen: a larger budget would only have chunks dropped at ask time.
    """
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance <= 1) or math.isnan(tolerance):
        raise ConfigError(f"--tolerance: expected a score difference between 0 and 1, got {tolerance}")
    scored = [r for r in summary["rag"] if r["n"]]
    if not scored:
        raise InputError("no RAG results to choose from")
    limit = None
    if max_context is not None and answer_budget is not None:
        limit = max_budget(max_context, answer_budget)
        fitting = [r for r in scored if r["chunk_size"] * r["top_k"] <= limit]
        if not fitting:
            smallest = min(r["chunk_size"] * r["top_k"] for r in scored)
            raise ConfigError(
                f"every swept budget exceeds the {limit} tokens a {max_context}-token window leaves "
                f"after {answer_budget} answer tokens (smallest swept: {smallest}); "
                "sweep smaller --chunk-sizes / --top-ks"
            )
        scored = fitting
    best = max(r["score"] for r in scored)
    # a cheaper setting is as good when it is within the tolerance of the best, or when the best score lies
    # inside its 95% interval (the difference may be sampling noise of a small QA set)
    ok = [r for r in scored if r["score"] >= best - tolerance or (r.get("ci") and r["ci"][1] >= best)]
    pick = min(ok, key=lambda r: (r["context_tokens"], r["chunk_size"] * r["top_k"]))
    why = (
        "best"
        if pick["score"] == best
        else (
            "within the tolerance" if pick["score"] >= best - tolerance else "the best score is inside its 95% interval"
        )
    )
    long_score = (summary.get("long_context") or {}).get("score")
    return {
        "chunk_size": pick["chunk_size"],
        "top_k": pick["top_k"],
        "token_budget": pick["chunk_size"] * pick["top_k"],
        "score": pick["score"],
        "score_ci": pick.get("ci"),
        "chosen_because": why,
        "context_tokens": pick["context_tokens"],
        "best_rag_score": best,
        "tolerance": tolerance,
        "long_context_score": long_score,
        "max_budget": limit,
        "max_context": max_context,
        "answer_budget": answer_budget,
        "long_context_beats_rag": bool(long_score is not None and not math.isnan(long_score) and long_score > best),
    }
