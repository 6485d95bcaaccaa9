"""Human reports: Markdown tables and PNG plots (NIAH heatmaps, score versus length)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longkit.io import atomic_write_text

# The red -> yellow -> green scale of the original Needle-in-a-Haystack heatmaps.
HEATMAP_COLORS = ["#F0496E", "#EBB839", "#0CD79F"]


def heatmap(
    summary: dict[str, Any], path: str | Path, title: str, metric: str = "score", x: str = "length", y: str = "depth"
) -> Path:
    """Draw a depth x length heatmap of a metric, cells annotated, and save it as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap

    cells = summary["cells"]
    xs = sorted({c[x] for c in cells})
    ys = sorted({c[y] for c in cells})
    grid = np.full((len(ys), len(xs)), np.nan)
    for c in cells:
        grid[ys.index(c[y]), xs.index(c[x])] = c.get(metric, np.nan)
    cmap = LinearSegmentedColormap.from_list("niah", HEATMAP_COLORS)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(xs), 1.2 + 0.55 * len(ys)))
    im = ax.imshow(grid, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i in range(len(ys)):
        for j in range(len(xs)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8, color="black")
    ax.set_xticks(range(len(xs)), [_k(v) for v in xs])
    ax.set_yticks(range(len(ys)), [f"{v:g}%" for v in ys])
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("needle depth")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label=metric)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def length_label(n: Any) -> str:
    """A token count as reports print it: 4K for a multiple of 1024, 1M for a multiple of 1024², a dash for None."""
    if n is None:
        return "–"
    if isinstance(n, int) and n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}M"
    return f"{n // 1024}K" if isinstance(n, int) and n % 1024 == 0 else str(n)


_k = length_label


def markdown_grid(summary: dict[str, Any], metric: str = "score", x: str = "length", y: str = "depth") -> str:
    """A Markdown table of a metric: rows are depths, columns lengths, plus a mean row."""
    cells = summary["cells"]
    xs = sorted({c[x] for c in cells})
    ys = sorted({c[y] for c in cells})
    val = {(c[y], c[x]): c.get(metric) for c in cells}
    lines = ["| depth \\ length | " + " | ".join(_k(v) for v in xs) + " |", "|---|" + "---|" * len(xs)]
    for yv in ys:
        row = [f"{val[(yv, xv)]:.2f}" if val.get((yv, xv)) is not None else "–" for xv in xs]
        lines.append(f"| {yv:g}% | " + " | ".join(row) + " |")
    from longkit.eval.runner import length_key

    # per-length keys are read in any spelling an older summary used ('4096', 'len_4096', '4096.0')
    spell = length_key if x == "length" else str
    means = {spell(k): v for k, v in summary["by"].get(x, {}).items()}
    lines.append(
        "| **mean** | "
        + " | ".join(f"**{means.get(spell(xv), {}).get(metric, float('nan')):.2f}**" for xv in xs)
        + " |"
    )
    return "\n".join(lines)


def task_section(summary: dict[str, Any], heatmap_file: str | None) -> str:
    """The Markdown section for one task's summary."""
    parts = [
        f"## {summary['task']}",
        "",
        f"Model `{summary.get('model', '')}` · {summary['samples']} of {summary['planned']} samples · "
        f"prompts truncated to fit the window: {summary.get('truncated', 0)}",
        "",
    ]
    if summary.get("setup"):  # the haystack, the protocol and any deliberate difference from the official task
        parts += [summary["setup"], ""]
    overall = ", ".join(f"{k} {v:.3f}" for k, v in summary["overall"].items())
    parts += [f"Overall: {overall}", ""]
    if "depth" in summary["by"] and "length" in summary["by"]:
        cells = summary["cells"]
        shown = [m for m in summary["metrics"] if m == "score" or any(c.get(m) != c.get("score") for c in cells)]
        for metric in shown:
            parts += [f"**{metric}** by needle depth × context length:", "", markdown_grid(summary, metric), ""]
        if heatmap_file:
            parts += [f"![{summary['task']} heatmap]({heatmap_file})", ""]
        if heatmap_file and "judge" in summary["metrics"]:
            parts += [f"![{summary['task']} judge heatmap]({heatmap_file.replace('_heatmap', '_judge_heatmap')})", ""]
    else:
        for field, groups in summary["by"].items():
            parts += [
                f"| {field} | " + " | ".join(summary["metrics"]) + " |",
                "|---|" + "---|" * len(summary["metrics"]),
            ]
            for k, v in groups.items():
                parts.append(f"| {k} | " + " | ".join(f"{v.get(m, 0):.3f}" for m in summary["metrics"]) + " |")
            parts.append("")
    return "\n".join(parts)


def write_report(out_dir: str | Path, summaries: list[dict[str, Any]], title: str, notes: str = "") -> Path:
    """Write report.md (and a heatmap per length x depth task) under out_dir."""
    out = Path(out_dir)
    sections = [f"# {title}", ""]
    if notes:
        sections += [notes, ""]
    for s in summaries:
        image = None
        if "depth" in s["by"] and "length" in s["by"] and s["cells"]:
            image = f"{s['task']}_heatmap.png"
            heatmap(s, out / image, f"{s['task']} · {s.get('model', '')}")
            if "judge" in s["metrics"]:  # gkamradt's published heatmaps show the judge's rating
                heatmap(
                    s,
                    out / f"{s['task']}_judge_heatmap.png",
                    f"{s['task']} · {s.get('model', '')} · judge",
                    metric="judge",
                )
        sections.append(task_section(s, image))
    path = out / "report.md"
    atomic_write_text(path, "\n".join(sections).rstrip() + "\n")
    return path


def task_length_heatmap(rows: dict[str, dict[int, float]], path: str | Path, title: str) -> Path:
    """Draw a task x length heatmap of scores in [0, 1] (a benchmark's tasks as rows, as BABILong's authors draw
    theirs), cells annotated, and save it as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap

    xs = sorted({n for by in rows.values() for n in by})
    names = list(rows)
    grid = np.full((len(names), len(xs)), np.nan)
    for i, name in enumerate(names):
        for n, v in rows[name].items():
            grid[i, xs.index(n)] = v
    fig, ax = plt.subplots(figsize=(1.6 + 0.9 * len(xs), 1.2 + 0.45 * len(names)))
    im = ax.imshow(grid, cmap=LinearSegmentedColormap.from_list("tasks", HEATMAP_COLORS), vmin=0, vmax=1, aspect="auto")
    for i in range(len(names)):
        for j in range(len(xs)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8, color="black")
    ax.set_xticks(range(len(xs)), [_k(v) for v in xs])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("context length (tokens)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="score")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
