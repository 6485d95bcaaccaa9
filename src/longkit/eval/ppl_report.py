"""The Markdown report and plots of perplexity runs: a table per model (loss and perplexity per length with 95%
intervals), loss by position per length, and the two plots context-extension papers draw."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _k(n: int) -> str:
    from longkit.eval.report import length_label

    return length_label(n)


def length_table(summary: dict[str, Any]) -> list[str]:
    """| length | documents | windows | tokens | loss [95% CI] | perplexity [95% CI] | too short |"""
    lines = [
        "| length | documents | windows | tokens | loss (95% CI) | perplexity (95% CI) | documents too short |",
        "|---|---|---|---|---|---|---|",
    ]
    for length, e in summary["by_length"].items():
        if "loss" not in e:
            lines.append(f"| {_k(int(length))} | 0 | 0 | 0 | – | – | {e['too_short']} |")
            continue
        wide = " (wide)" if "wide" in e["interval"] else ""
        lines.append(
            f"| {_k(int(length))} | {e['documents']} | {e['windows']} | {e['tokens']} | "
            f"{e['loss']:.4f} ({e['loss_ci'][0]:.4f}–{e['loss_ci'][1]:.4f}){wide} | "
            f"{e['ppl']:.3f} ({e['ppl_ci'][0]:.3f}–{e['ppl_ci'][1]:.3f}) | {e['too_short']} |"
        )
    return lines


def position_table(summary: dict[str, Any]) -> list[str]:
    """Mean token loss per position bucket (rows) for each length (columns)."""
    lengths = [k for k, e in summary["by_length"].items() if e.get("by_position")]
    if not lengths:
        return []
    buckets = sorted({int(b) for k in lengths for b in summary["by_length"][k]["by_position"]})
    width = summary["bucket"]
    lines = ["| position | " + " | ".join(f"L={_k(int(k))}" for k in lengths) + " |", "|---|" + "---|" * len(lengths)]
    for b in buckets:
        cells = [summary["by_length"][k]["by_position"].get(str(b)) for k in lengths]
        lines.append(f"| {b}–{b + width - 1} | " + " | ".join("–" if c is None else f"{c:.4f}" for c in cells) + " |")
    return lines


def plot_position(summary: dict[str, Any], path: Path, title: str) -> Path | None:
    """Loss versus position in the window, one line per length."""
    series = {f"L={_k(int(k))}": e["by_position"] for k, e in summary["by_length"].items() if e.get("by_position")}
    if not series:
        return None
    fig, ax = _axes()
    half = summary["bucket"] / 2
    for name, by in series.items():
        xs = sorted(int(b) for b in by)
        ax.plot([x + half for x in xs], [by[str(x)] for x in xs], marker=".", label=name)
    return _save(fig, ax, path, title, "position in the window (tokens)", "mean token loss (nats)")


def plot_ppl_vs_length(by_model: dict[str, dict[str, Any]], path: Path, title: str) -> Path | None:
    """Perplexity versus window length, one line per model, with the 95% interval as a band."""
    series = {m: {int(k): e for k, e in s["by_length"].items() if "ppl" in e} for m, s in by_model.items()}
    series = {m: s for m, s in series.items() if s}
    if not series:
        return None
    fig, ax = _axes()
    for name, by in series.items():
        xs = sorted(by)
        ax.plot(xs, [by[x]["ppl"] for x in xs], marker="o", label=name)
        ax.fill_between(xs, [by[x]["ppl_ci"][0] for x in xs], [by[x]["ppl_ci"][1] for x in xs], alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({x for by in series.values() for x in by}))
    ax.set_xticklabels([_k(x) for x in sorted({x for by in series.values() for x in by})])
    return _save(fig, ax, path, title, "window length (tokens)", "perplexity")


def _axes() -> tuple[Any, Any]:
    """A figure and axes of the reports' line-plot size, drawn off screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4.2))


def _save(fig: Any, ax: Any, path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    """Label, grid and legend the axes, write the PNG and free the figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_ppl_report(out: Path, summary: dict[str, Any]) -> Path:
    """report.md (and the two plots) of one model's perplexity run in out."""
    from longkit.io import atomic_write_text

    stride = f", stride {summary['stride']}" if summary.get("stride") else ""
    lines = [
        f"# Perplexity by context length: {summary['model']}",
        "",
        f"Data: {summary['data']} ({summary['documents']} documents); protocol: {summary['protocol']}{stride}; "
        f"intervals: 95% percentile bootstrap over documents, over windows where there is one document "
        f"({summary['bootstrap']} resamples, seed {summary['seed']}).",
        "",
        *length_table(summary),
        "",
    ]
    positions = position_table(summary)
    if positions:
        lines += [f"Mean token loss by position in the window ({summary['bucket']}-token buckets):", "", *positions, ""]
    if plot_ppl_vs_length({summary["model"]: summary}, out / "ppl_vs_length.png", "perplexity vs window length"):
        lines += ["![perplexity vs length](ppl_vs_length.png)", ""]
    if plot_position(summary, out / "loss_vs_position.png", "loss vs position"):
        lines += ["![loss vs position](loss_vs_position.png)", ""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
