"""The sweep's results: mean score and context per setting (`summarize`), the Markdown table and the plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from longkit.eval.rag_qa import QAItem


def setting_key(chunk_size: int | None, k: int | None) -> str:
    """The results-log name of a setting: `long` (the whole document) or `rag-c<size>-k<k>`."""
    return "long" if chunk_size is None else f"rag-c{chunk_size}-k{k}"


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from longkit.eval.bootstrap import FEW, mean_interval

    n = len(rows)
    # a 95% bootstrap interval over questions (seeded): two arms whose intervals overlap may not differ at all
    ci = [round(x, 4) for x in mean_interval([r["score"] for r in rows])] if n else None
    return {
        "n": n,
        "score": sum(r["score"] for r in rows) / n if n else math.nan,
        "ci": ci,
        "wide": n < FEW,
        "context_tokens": sum(r["context_tokens"] for r in rows) / n if n else math.nan,
        "dropped_chunks": sum(r["dropped_chunks"] for r in rows),
        "truncated": sum(bool(r["truncated"]) for r in rows),
        "empty_answers": sum(not str(r["prediction"]).strip() for r in rows),
    }


def summarize(
    records: list[dict[str, Any]],
    items: Sequence[QAItem],
    chunk_sizes: Sequence[int],
    top_ks: Sequence[int],
    include_long: bool,
) -> dict[str, Any]:
    """Mean score and mean context tokens per setting, over the given items."""
    ids = {it.id for it in items}
    by_setting: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r["id"] in ids:
            by_setting.setdefault(r["setting"], []).append(r)

    rag = []
    for size in chunk_sizes:
        for k in top_ks:
            rows = by_setting.get(setting_key(size, k), [])
            rag.append({"chunk_size": size, "top_k": k, "token_budget": size * k, **_stats(rows)})
    summary: dict[str, Any] = {"rag": rag}
    # Empty answers are counted, not hidden: a prompt style the model does not follow shows up here first.
    summary["empty_answers"] = sum(r["empty_answers"] for r in rag)
    summary["answers"] = sum(r["n"] for r in rag)
    if include_long:
        summary["long_context"] = _stats(by_setting.get("long", []))
        summary["empty_answers"] += summary["long_context"]["empty_answers"]
        summary["answers"] += summary["long_context"]["n"]
    scored = [r for r in rag if r["n"]]
    if scored:
        best = max(scored, key=lambda r: (r["score"], -r["context_tokens"]))
        summary["best_rag"] = {k: best[k] for k in ("chunk_size", "top_k", "score", "context_tokens")}
    return summary


def render_report(summary: dict[str, Any]) -> str:
    """A Markdown table of the sweep."""
    lines = [
        f"# RAG vs long context — {summary.get('model', '')}",
        "",
        f"{summary.get('n_questions')} questions, metric {summary.get('metric')}, window "
        f"{summary.get('max_context')} tokens, embedder {summary.get('embedder')}, order {summary.get('order')}, "
        f"prompt style {summary.get('prompt_style')}; {summary.get('empty_answers', 0)} of "
        f"{summary.get('answers', 0)} answers empty.",
        "",
        "| setting | chunk size | top-k | mean context tokens | score (95% CI) | empty answers | "
        "chunks dropped to fit |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lc = summary.get("long_context")
    if lc:
        lines.append(
            f"| long context | – | – | {lc['context_tokens']:.0f} | {_score(lc)} | "
            f"{lc.get('empty_answers', 0)} | {lc['truncated']} of {lc['n']} prompts middle-truncated |"
        )
    for r in summary["rag"]:
        if r["n"]:
            lines.append(
                f"| RAG | {r['chunk_size']} | {r['top_k']} | {r['context_tokens']:.0f} | {_score(r)} | "
                f"{r.get('empty_answers', 0)} | {r['dropped_chunks']} |"
            )
    return "\n".join(lines) + "\n"


def _score(stats: dict[str, Any]) -> str:
    """A mean score with its interval, † when there are too few questions for the interval to mean much."""
    ci = stats.get("ci")
    text = f"{stats['score']:.3f}" + (f" ({ci[0]:.2f}–{ci[1]:.2f})" if ci else "")
    return text + ("†" if stats.get("wide") else "")


def plot_rag_vs_long(summary: dict[str, Any], path: str | Path) -> Path:
    """Accuracy against retrieved tokens, one line per chunk size; long context as a horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    sizes = sorted({r["chunk_size"] for r in summary["rag"]})
    for size in sizes:
        rows = sorted((r for r in summary["rag"] if r["chunk_size"] == size and r["n"]), key=lambda r: r["top_k"])
        if rows:
            ax.plot(
                [r["context_tokens"] for r in rows], [r["score"] for r in rows], marker="o", label=f"RAG, chunk {size}"
            )
            for r in rows:
                ax.annotate(
                    f"k={r['top_k']}",
                    (r["context_tokens"], r["score"]),
                    fontsize=7,
                    textcoords="offset points",
                    xytext=(3, 3),
                )
    lc = summary.get("long_context")
    if lc and lc["n"]:
        ax.axhline(
            lc["score"], color="black", linestyle="--", label=f"long context ({lc['context_tokens']:.0f} tokens)"
        )
    ax.set_xscale("log")
    ax.set_xlabel("retrieved context tokens (mean)")
    ax.set_ylabel(summary.get("metric", "score"))
    ax.set_title(f"RAG vs long context: {summary.get('model', '')}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
