"""The data build's human-readable report: stats.md (Markdown tables) and knot_distances.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _mix_table(name: str, mix: dict[str, Any]) -> list[str]:
    lines = [
        f"## Token mix {name} upsampling ({mix['tokens']} tokens, {mix['docs']} docs)",
        "",
        "| source | share | long share | " + " | ".join(mix["buckets"]) + " |",
        "|---" * (3 + len(mix["buckets"])) + "|",
    ]
    for src, s in mix["sources"].items():
        lines.append(
            f"| {src} | {s['share']:.3f} | {s['long_share']:.3f} | "
            + " | ".join(str(v) for v in s["tokens_by_bucket"].values())
            + " |"
        )
    return lines + [""]


def _sequences(st: dict[str, Any]) -> list[str]:
    kd = st["knot_distance"]
    return [
        "## Sequences",
        "",
        f"- chunks per sequence: {st['chunks_per_sequence']}",
        f"- documents split: {st['docs_split']} ({st['docs_split_per_sequence']:.2f} per sequence)",
        f"- masked label share: {st['masked_label_share']:.4f}",
        f"- tied-knot distance (tail knot of chunk j to head knot of chunk j+1), {kd['pairs']} pairs, "
        f"mean {kd['mean']:.1f} tokens:",
        "",
        "| distance | " + " | ".join(kd["bins"]) + " |",
        "|---" * (1 + len(kd["bins"])) + "|",
        "| pairs | " + " | ".join(str(c) for c in kd["counts"]) + " |",
        "",
    ]


def markdown(report: dict[str, Any]) -> str:
    """stats.md: packing totals, the token mix before and after upsampling, sequence statistics."""
    cfg = report["config"]
    lines = [f"# Data build: {cfg['transform']} · seq_len {cfg['seq_len']}", ""]
    if cfg["transform"] == "utk":
        from longkit.data.utk import fidelity_note

        lines += [fidelity_note(cfg["utk"], cfg["overflow"]), ""]
    pk = report["packing"]
    lines += [
        "| tokens in | text placed | structure + separators | pad | dropped | sequences | empty docs |",
        "|---|---|---|---|---|---|---|",
        f"| {pk['tokens_in']} | {pk['tokens_text']} | {pk['tokens_structure']} | {pk['tokens_pad']} | "
        f"{pk['tokens_dropped']} | {pk['sequences']} | {pk['empty_docs']} |",
        "",
    ]
    for name in ("before", "after"):
        lines += _mix_table(name, report["mix"][name])
    lines += _sequences(report["sequences"])
    if report.get("special_tokens_added") is not None:
        lines.append(
            f"UtK special tokens added to the tokenizer: {report['special_tokens_added']} "
            f"(resize embeddings to {report['vocab_size']})."
        )
    return "\n".join(lines) + "\n"


def plot_knot_distances(report: dict[str, Any], path: Path) -> None:
    """knot_distances.png: how many tokens lie between the tied knots of consecutive chunks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kd = report["sequences"]["knot_distance"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(range(len(kd["counts"])), kd["counts"])
    ax.set_xticks(range(len(kd["counts"])), kd["bins"], rotation=30, fontsize=7)
    ax.set_xlabel("tokens between tied knots")
    ax.set_ylabel("knot pairs")
    ax.set_title("UtK tied-knot distances")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
