"""The suite's report: suite.json, report.md (a task x length table per model, skips) and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longkit.eval.suite.aggregate import build_report, collect
from longkit.eval.suite.config import SuiteConfig
from longkit.eval.suite.layout import safe_name
from longkit.io import atomic_write_text, write_json


def write_suite_report(cfg: SuiteConfig) -> dict[str, Any]:
    """Write suite.json, report.md, score-vs-length plots and heatmaps under cfg.out; returns suite.json's content."""
    out = Path(cfg.out)
    data = collect(cfg)
    report = build_report(cfg, data)
    lines = _intro(cfg)
    for label, tasks in data["models"].items():
        lines += _model_section(cfg, label, tasks, report["models"][label], out)
    lines += _skipped_section(data["skipped"])
    write_json(out / "suite.json", report)
    atomic_write_text(out / "report.md", "\n".join(lines).rstrip() + "\n")
    return report


def rebuild_report(cfg: SuiteConfig, where: str = "suite") -> dict[str, Any]:
    """`--report-only`: rewrite the report from the finished runs under cfg.out; with none, or with results of
    other models or settings there, refuse in one line and write nothing."""
    from longkit.errors import InputError
    from longkit.eval.suite.record import check_suite_record

    check_suite_record(cfg)
    if not any(collect(cfg)["models"].values()):
        raise InputError(
            f"{cfg.out}: no finished run of this suite to report on; run `longkit eval suite {where}` "
            "first (--report-only only rebuilds the report)"
        )
    return write_suite_report(cfg)


def _intro(cfg: SuiteConfig) -> list[str]:
    """The title and how to read the numbers (each benchmark's official scale as its tasks declare it)."""
    return [
        f"# {cfg.name}",
        "",
        f"Effective length: the longest length whose score exceeds {cfg.threshold:.3f} (RULER). "
        "Adaptation rate: score at the longest length / score at the reference length "
        f"({cfg.reference_length or 'the shortest'}) (UtK). Per-length and overall scores are per-sample means "
        "in [0, 1] (a loss where the metric says so); the 'official' column is each benchmark's own reported number, "
        f"aggregated its own way and on its own scale: {_official_scales(cfg)}. "
        f"In parentheses: 95% percentile-bootstrap intervals over samples ({cfg.bootstrap} resamples, seed "
        f"{cfg.seed}; effective length and adaptation rate resample within each length); † marks a cell with "
        "fewer than 5 samples, whose interval is too wide to read much into.",
        "",
    ]


def _official_scales(cfg: SuiteConfig) -> str:
    """'RULER x100, InfiniteBench [0, 1]; qmsum: geometric mean of ...' for this suite's tasks, from their metrics."""
    from longkit.eval.metrics import AGGREGATIONS
    from longkit.eval.tasks.registry import registry, resolve_name

    specs = [registry()[resolve_name(t.name)] for t in cfg.tasks]
    scales: dict[str, list[str]] = {}
    for spec in specs:
        bench = scales.setdefault(spec.metric.scale_label, [])
        if spec.benchmark not in bench:
            bench.append(spec.benchmark)
    text = ", ".join(f"{' and '.join(benches)} {label}" for label, benches in scales.items())
    own = [f"{s.name}: {AGGREGATIONS[s.metric.aggregation][1]}" for s in specs if s.metric.aggregation != "mean"]
    return text + ("; " + "; ".join(own) if own else "")


def _model_section(
    cfg: SuiteConfig, label: str, tasks: dict[str, Any], model_rep: dict[str, Any], out: Path
) -> list[str]:
    """One model: its table, truncation count, sample setups, plots and per-input-length buckets."""
    lines = [f"## {label}", ""] + _table(cfg, model_rep) + [""]
    trunc = sum(e["truncated"] for e in model_rep["tasks"].values())
    if trunc:
        lines += [f"Prompts cut in the middle to fit the window: {trunc}.", ""]
    own = [(n, e["benchmark_summary"]) for n, e in model_rep["tasks"].items() if e.get("benchmark_summary")]
    if own:  # a benchmark's own summary, e.g. NoLiMa's effective length at 85% of its base score
        lines += ["Benchmarks' own summaries:", ""] + [f"- {n}: {_summary_text(v)}" for n, v in own] + [""]
    setups = [(n, s["setup"]) for n, s in tasks.items() if s.get("setup")]
    if setups:  # the haystack and protocol of each task, and where they differ from the official ones
        lines += ["How samples were built:", ""] + [f"- {n}: {text}" for n, text in setups] + [""]
    lines += _plots(label, tasks, model_rep, out)
    files = [(n, e) for n, e in model_rep["tasks"].items() if e.get("by_group")]
    if files:
        lines += ["Benchmark-file tasks by input length (tokens, bucketed):", ""]
        for n, e in files:
            lines.append(
                f"- {n}: "
                + ", ".join(
                    f"{_k(int(k)) if k.isdigit() else k}: {_with_ci(v, (e.get('by_group_ci') or {}).get(k))}"
                    for k, v in e["by_group"].items()
                )
            )
            skip = ("by_length", "by_group", "by_length_ci", "by_group_ci")
            for field in (k for k in e if k.startswith("by_") and k not in skip):
                lines.append(
                    f"- {n} {field.replace('_', ' ')}: " + ", ".join(f"{k}: {_f(v)}" for k, v in e[field].items())
                )
        lines.append("")
    return lines


def _table(cfg: SuiteConfig, model_rep: dict[str, Any]) -> list[str]:
    """The task x length table of one model, with each benchmark average (RULER's) as a last row; every number with
    its 95% bootstrap interval in parentheses, † where the cell has too few samples for the interval to mean much."""
    lengths = sorted({n for e in model_rep["tasks"].values() for n in e["by_length"]})
    ref = cfg.reference_length
    head = ["task", "benchmark", "metric", *(_k(n) for n in lengths)]
    head += ["overall", "official", "effective length", "adaptation rate", "n"]
    lines = [_row(head), _row(["---"] * len(head))]
    for name, e in model_rep["tasks"].items():
        cis, wide = _ci_by_length(e), set(e.get("wide_lengths") or [])
        cells = [
            _with_ci(e["by_length"][n], cis.get(n)) + ("†" if n in wide else "") if n in e["by_length"] else "–"
            for n in lengths
        ]
        off = e.get("official") or {}
        official = f"{off['score']:g} ({off['scale']})" if off and off.get("score") is not None else "–"
        overall = _with_ci(e["overall"], e.get("overall_ci")) + ("†" if e.get("wide") else "")
        rate = f"{_rate(e['adaptation_rate'], e['by_length'], ref)}{_ci(e.get('adaptation_rate_ci'))}"
        effective = _length_ci(e["effective_length"], e.get("effective_length_ci"))
        row = [name, e["benchmark"], e["metric"], *cells, overall, official, effective, rate, e["samples"]]
        lines.append(_row(row))
    for group, ra in averages(model_rep).items():
        cis = _ci_by_length(ra)
        cells = [f"**{_with_ci(ra['by_length'][n], cis.get(n))}**" if n in ra["by_length"] else "–" for n in lengths]
        rate = f"**{_rate(ra['adaptation_rate'], ra['by_length'], ref)}{_ci(ra.get('adaptation_rate_ci'))}**"
        effective = f"**{_length_ci(ra['effective_length'], ra.get('effective_length_ci'))}**"
        label = f"**{group} average ({ra['tasks']} tasks)**"
        lines.append(_row([label, group, "mean", *cells, f"**{_f(ra.get('overall'))}**", "–", effective, rate, ""]))
    return lines


def _row(cells: list[Any]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _ci_by_length(entry: dict[str, Any]) -> dict[int, list[float]]:
    """An entry's per-length intervals keyed by int length (suite.json read back has string keys)."""
    return {int(k): v for k, v in (entry.get("by_length_ci") or {}).items() if v}


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f" ({ci[0]:.2f}–{ci[1]:.2f})"


def _with_ci(x: float | None, ci: list[float] | None) -> str:
    """A score and its interval: 0.650 (0.40–0.90)."""
    return _f(x) + ("" if x is None else _ci(ci))


def _length_ci(n: int | None, ci: list[int | None] | None) -> str:
    """An effective length and its interval: 8K (4K–16K); a bound of None (no length passes) prints as <min."""
    if not ci or ci[0] == ci[1] == n:
        return _k(n)
    return f"{_k(n)} ({_k(ci[0]) if ci[0] else 'none'}–{_k(ci[1]) if ci[1] else 'none'})"


def averages(model_rep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A model's benchmark averages (aggregate.group_averages) by group name, e.g. {'RULER': {...}}."""
    return {
        v.get("group", k[: -len("_average")].upper()): v
        for k, v in model_rep.items()
        if k.endswith("_average") and isinstance(v, dict)
    }


def _plots(label: str, tasks: dict[str, Any], model_rep: dict[str, Any], out: Path) -> list[str]:
    """Draw the score-versus-length plot and the length x depth heatmaps; the Markdown lines that show them."""
    from longkit.eval.report import heatmap

    lines: list[str] = []
    plot = _plot_lengths(model_rep, out / f"{safe_name(label)}_score_vs_length.png", label)
    if plot:
        lines += [f"![score vs length]({plot.name})", ""]
    for name, s in tasks.items():
        if "depth" in s["by"] and s["cells"]:
            img = out / f"{safe_name(label)}_{safe_name(name)}_heatmap.png"
            heatmap(s, img, f"{name} · {label}")
            lines += [f"![{name} heatmap]({img.name})", ""]
    return lines + _group_heatmaps(label, model_rep, out)


def _group_heatmaps(label: str, model_rep: dict[str, Any], out: Path) -> list[str]:
    """A task x length heatmap for each benchmark average whose tasks ran at two or more lengths."""
    from longkit.eval.report import task_length_heatmap
    from longkit.eval.tasks.registry import registry

    groups: dict[str, dict[str, dict[int, float]]] = {}
    for name, e in model_rep["tasks"].items():
        group = registry()[name].average_group if name in registry() else None
        series = _scores_by_length(e)
        if group and series:
            groups.setdefault(group, {})[name] = series
    lines: list[str] = []
    for group, rows in groups.items():
        if len({n for by in rows.values() for n in by}) < 2:
            continue
        img = out / f"{safe_name(label)}_{safe_name(group)}_tasks_by_length.png"
        task_length_heatmap(rows, img, f"{group} · {label}")
        lines += [f"![{group} tasks by length]({img.name})", ""]
    return lines


def _scores_by_length(entry: dict[str, Any]) -> dict[int, float]:
    """A task's score per numeric length: generated tasks' by_length, file tasks' length groups that are numbers."""
    if entry["by_length"]:
        return {int(k): float(v) for k, v in entry["by_length"].items()}
    groups = entry.get("by_group") or {}
    return {int(k): float(v) for k, v in groups.items() if str(k).isdigit() and v is not None}


def _summary_text(summary: dict[str, Any]) -> str:
    """The scalar fields of a benchmark's own summary, as `key value` pairs (mappings such as by_length left out)."""
    parts = []
    for key, value in summary.items():
        if isinstance(value, float):
            parts.append(f"{key.replace('_', ' ')} {value:.3f}")
        elif isinstance(value, (int, str)) or value is None:
            parts.append(f"{key.replace('_', ' ')} {_k(value) if key.endswith('length') else value}")
        elif isinstance(value, list) and all(isinstance(v, int) for v in value):
            parts.append(f"{key.replace('_', ' ')} {', '.join(_k(v) for v in value)}")
    return "; ".join(parts)


def _skipped_section(skipped: list[dict[str, Any]]) -> list[str]:
    """The table of skipped tasks and lengths with their reasons (nothing when none were skipped)."""
    if not skipped:
        return []
    lines = ["## Skipped", "", "| model | task | length | reason |", "|---|---|---|---|"]
    for s in skipped:
        lines.append(f"| {s['model']} | {s['task']} | {_k(s.get('length'))} | {s['reason']} |")
    return lines + [""]


def _rate(rate: float | None, by_length: dict[int, float], reference: int | None) -> str:
    """The adaptation rate, naming the reference length when the configured one was not run."""
    if rate is None or not by_length:
        return _f(rate)
    used = reference if reference in by_length else min(by_length)
    return _f(rate) if used == reference or reference is None else f"{rate:.3f} (vs {_k(used)})"


def _f(x: float | None) -> str:
    """A score with three decimals, or a dash."""
    return "–" if x is None else f"{x:.3f}"


def _k(n: int | str | None) -> str:
    """A token count as reports print it (eval.report.length_label)."""
    from longkit.eval.report import length_label

    return length_label(n)


def _plot_lengths(model_rep: dict[str, Any], path: Path, label: str) -> Path | None:
    """Score versus length for every task of one model (and benchmark averages in bold); None when nothing to plot."""
    series = {n: e["by_length"] for n, e in model_rep["tasks"].items() if len(e["by_length"]) >= 1}
    bold = {f"{group} average" for group in averages(model_rep)}
    series.update({f"{group} average": ra["by_length"] for group, ra in averages(model_rep).items() if ra["by_length"]})
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, by in series.items():
        xs = sorted(by)
        ax.plot(
            xs,
            [by[x] for x in xs],
            marker="o",
            linewidth=2.5 if name in bold else 1.2,
            color="black" if name in bold else None,
            label=name,
        )
    ax.set_xscale("log", base=2)
    xs = sorted({x for by in series.values() for x in by})
    ax.set_xticks(xs, [_k(x) for x in xs])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("score")
    ax.set_title(f"score vs length · {label}", fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
