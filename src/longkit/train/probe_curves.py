"""`longkit train curves`: the probes of one or more runs (their probes.jsonl) against training tokens, one line per
run, as a figure and a table, so that two runs (say plain and UtK continued pretraining) compare on one plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longkit.errors import ConfigError, InputError
from longkit.train.probe import PROBES

EFFECTIVE = "effective_length"
PPL = "ppl"


def probes_file(run: str | Path) -> Path:
    """A run directory's probes.jsonl (a path to the file itself is taken as it is)."""
    p = Path(run)
    return p if p.suffix == ".jsonl" else p / PROBES


def load_runs(runs: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each run's probe rows by step, under its label (its directory's name; parent/name where two names clash)."""
    files = [probes_file(r) for r in runs]
    out: dict[str, list[dict[str, Any]]] = {}
    for label, f in zip(_labels(files), files):
        if not f.is_file():
            raise InputError(f"{f}: no such file (a run writes it when its config has a `probe:` section)")
        rows = read_probe_file(f)
        if not rows:
            raise InputError(f"{f}: no probe rows yet (the run has not reached its first probe)")
        out[label] = sorted(rows, key=lambda r: int(r["step"]))
    return out


# what `train curves` reads of each row (probe.py writes them; effective_length and ppl may be absent or null)
_ROW_FIELDS: dict[str, tuple[type, ...]] = {"step": (int,), "tokens": (int, float), "scores": (dict,), "mean": (dict,)}


def read_probe_file(path: Path) -> list[dict[str, Any]]:
    """A probes.jsonl read strictly: a line that is not a probe row is an error naming the file, the line and the
    field, except a torn last line (no newline at its end: a run killed mid-write), which is left out."""
    import json

    from longkit.io import read_text

    text = read_text(path, "probes file")
    lines = text.splitlines()
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines) and not text.endswith("\n"):
                continue
            raise InputError(f"{path}:{n}: not a JSON line") from None
        _check_row(row, f"{path}:{n}")
        rows.append(row)
    return rows


def _check_row(row: Any, where: str) -> None:
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected a probe row (a JSON object), got {type(row).__name__}")
    for field, kinds in _ROW_FIELDS.items():
        value = row.get(field)
        if not isinstance(value, kinds) or isinstance(value, bool):
            expected = " or ".join(k.__name__ for k in kinds)
            raise InputError(f"{where}: field '{field}': expected {expected}, got {value!r}")


def _labels(files: list[Path]) -> list[str]:
    names = [f.parent.resolve().name for f in files]
    clash = {n for n in names if names.count(n) > 1}
    return [f"{f.parent.resolve().parent.name}/{n}" if n in clash else n for f, n in zip(files, names, strict=True)]


def metrics_of(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every metric the rows hold: effective_length, each task/length, mean/length and ppl."""
    found = [EFFECTIVE]
    for rows in runs.values():
        for r in rows:
            names = [f"{t}/{n}" for t, by in r["scores"].items() for n in by] + [f"mean/{n}" for n in r["mean"]]
            names += [PPL] if r.get("ppl") else []
            found += [m for m in names if m not in found]
    return found


def value(row: dict[str, Any], metric: str) -> float | None:
    """One metric of a row: effective length (0 when no length passes), ppl, or a task's (or the mean's) score at
    a length; None when the row does not hold it."""
    if metric == EFFECTIVE:
        return float(row.get(EFFECTIVE) or 0)
    if metric == PPL:
        return float(row["ppl"]["ppl"]) if row.get("ppl") else None
    task, _, length = metric.rpartition("/")
    by = row.get("mean", {}) if task == "mean" else row.get("scores", {}).get(task, {})
    return float(by[length]) if length in by else None


def check_metric(runs: dict[str, list[dict[str, Any]]], metric: str) -> None:
    """Refuse a metric no run holds, listing those they do."""
    known = metrics_of(runs)
    if metric not in known:
        raise ConfigError(f"--metric {metric}: not in these probes (they hold: {', '.join(known)})")


def default_metrics(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Without --metric: effective length, the mean score at each length, and perplexity when measured."""
    known = metrics_of(runs)
    means = [m for m in known if m.startswith("mean/")]
    return [EFFECTIVE, *sorted(means, key=lambda m: int(m.split("/")[1])), *([PPL] if PPL in known else [])]


def table(runs: dict[str, list[dict[str, Any]]], metrics: list[str]) -> str:
    """A Markdown table: one line per run and probe."""
    lines = ["| run | step | tokens | " + " | ".join(metrics) + " |", "|---|---|---|" + "---|" * len(metrics)]
    for label, rows in runs.items():
        for r in rows:
            cells = [_cell(value(r, m), m) for m in metrics]
            lines.append(f"| {label} | {r['step']} | {r['tokens']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(v: float | None, metric: str) -> str:
    if v is None:
        return "–"
    return str(int(v)) if metric == EFFECTIVE else f"{v:.4g}"


def plot(runs: dict[str, list[dict[str, Any]]], metrics: list[str], path: Path) -> Path:
    """One panel per kind of metric against training tokens, one colour per run (lengths told apart by line
    style where a panel holds several)."""
    panels = _panels(metrics)
    fig, axes = _figure(len(panels))
    colours = {label: f"C{i}" for i, label in enumerate(runs)}
    styles = ["-", "--", ":", "-."]
    for ax, (ylabel, members) in zip(axes, panels):
        for label, rows in runs.items():
            for k, m in enumerate(members):
                pts = [(int(r["tokens"]), value(r, m)) for r in rows]
                xs, ys = [x for x, y in pts if y is not None], [y for _, y in pts if y is not None]
                name = label if len(members) == 1 else f"{label} {m}"
                ax.plot(xs, ys, marker="o", ms=3, color=colours[label], ls=styles[k % len(styles)], label=name)
        _scale(ax, members, runs)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[-1].set_xlabel("training tokens")
    axes[0].set_title("long-context probes during training")
    return _save(fig, path)


def _scale(ax: Any, members: list[str], runs: dict[str, list[dict[str, Any]]]) -> None:
    """Fixed ranges where the metric has one (scores in [0, 1], effective length up to the longest probed length),
    so a flat line at 0 reads as 0 and not as noise; perplexity on a log axis, as it falls by orders of magnitude."""
    if members == [PPL]:
        ax.set_yscale("log")
    elif members == [EFFECTIVE]:
        longest = max((int(n) for rows in runs.values() for r in rows for n in r.get("mean", {})), default=1)
        ax.set_ylim(-0.03 * longest, 1.05 * longest)
    else:
        ax.set_ylim(-0.03, 1.03)


def _panels(metrics: list[str]) -> list[tuple[str, list[str]]]:
    """Metrics grouped into panels: effective length, scores (any task/length), perplexity."""
    scores = [m for m in metrics if m not in (EFFECTIVE, PPL)]
    out: list[tuple[str, list[str]]] = []
    if EFFECTIVE in metrics:
        out.append(("effective length (tokens; 0: none passes)", [EFFECTIVE]))
    if scores:
        out.append(("score", scores))
    if PPL in metrics:
        out.append(("perplexity (fixed text)", [PPL]))
    return out


def _figure(rows: int) -> tuple[Any, Any]:
    """A figure of `rows` panels sharing the tokens axis, drawn off screen (the Agg backend, as the eval reports)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(7, 1 + 2.8 * rows), squeeze=False, sharex=True)
    return fig, axes[:, 0]


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves(runs: list[str], out: str | Path, metric: str | None = None) -> tuple[Path, str]:
    """Plot and tabulate the runs' probes; returns (the figure's path, the table)."""
    from longkit.io import output_file

    output_file(out)  # a directory, or a path under a file, is refused before anything is read
    loaded = load_runs(runs)
    if metric is not None:
        check_metric(loaded, metric)
    metrics = [metric] if metric is not None else default_metrics(loaded)
    return plot(loaded, metrics, Path(out)), table(loaded, metrics)
