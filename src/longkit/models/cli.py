"""`longkit model ...` sub-commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from longkit.cli_common import friendly_errors
from longkit.limits import MAX_TOKENS
from longkit.models.rope import METHODS

app = typer.Typer(no_args_is_help=True)


@app.command("info")
@friendly_errors
def info(
    name: str = typer.Argument(..., help="Bundled name, GGUF file, local directory or hub id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print architecture, parameter count, max positions, RoPE settings and chat-template presence."""
    from longkit.models.load import model_info

    data = model_info(name)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"model {name}", show_header=False)
    for k, v in data.items():
        table.add_row(k, f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v))
    Console().print(table)


MAX_FACTOR = 4096.0  # RoPE scaling factor bound: 8K x 4096 = 32M tokens


@app.command("extend")
@friendly_errors
def extend(
    src: str = typer.Argument(..., help="Model to extend: bundled name, GGUF file, local directory or hub id."),
    out: str = typer.Argument(..., help="Output directory for the extended checkpoint (new or empty)."),
    method: str = typer.Option("abf", "--method", help=f"RoPE extension method: {' | '.join(METHODS)}."),
    max_length: int = typer.Option(..., "--max-length", min=2, max=MAX_TOKENS, help="Target context length in tokens."),
    base: float = typer.Option(None, "--base", min=1.0, max=1e15, help="New RoPE base (required for abf, e.g. 1.5e8)."),
    factor: float = typer.Option(
        None, "--factor", min=1.0, max=MAX_FACTOR, help="Scaling factor (default: max-length / current length)."
    ),
    dtype: str = typer.Option("float32", "--dtype", help="Weights dtype to save: float32, bfloat16, float16."),
    as_json: bool = typer.Option(False, "--json", help="Print the extension plan as JSON."),
) -> None:
    """Extend a model's RoPE to a longer context and save a ready-to-train checkpoint."""
    from longkit.errors import InputError
    from longkit.models.load import _dtype, resolve
    from longkit.models.rope import extend_model, normalise_method

    canonical = normalise_method(method)  # before loading anything: a typo fails in a second, not after the load
    if canonical == "abf" and factor is not None:
        raise InputError(
            "--factor does not apply to abf (it sets --base); use --method pi, ntk, yarn or llama3 for a scaling factor"
        )
    _dtype(dtype)
    resolve(src)
    out_path = Path(out)
    if out_path.exists() and not out_path.is_dir():
        raise InputError(f"OUT {out}: exists and is not a directory; choose a new directory")
    if out_path.is_dir() and any(out_path.iterdir()):
        raise InputError(f"OUT {out}: directory is not empty; choose a new directory (nothing was written)")
    plan = extend_model(src, out, method, max_length, base=base, factor=factor, dtype=dtype)
    for w in plan.warnings:
        typer.secho(f"warning: {w}", fg="yellow", err=True)
    if as_json:
        typer.echo(json.dumps(plan.as_dict(), indent=2))
    else:
        typer.echo(
            f"{plan.method}: {plan.original_length} -> {plan.target_length} tokens, "
            f"rope_parameters={plan.rope_parameters}, saved to {out}"
        )


@app.command("min-base")
@friendly_errors
def min_base_cmd(
    head_dim: int = typer.Option(128, "--head-dim", help="Attention head dimension."),
    length: str = typer.Option(
        ..., "--length", help="Context length(s) up to 2^22: 32768 or 4096,8192 or linspace:A:B:N."
    ),
    step: float = typer.Option(0.002, "--step", help="Relative grid step of the scan (0.002 = 0.2%)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Smallest RoPE base whose long-term decay term stays non-negative up to LENGTH (Men et al. 2024).

    Two values, because feasibility is not monotonic in the base: `min base` is the smallest feasible base on
    the grid (the paper's lower bound; some larger bases fail), `stable` the smallest base above which every
    grid base (up to 4x) is feasible.
    """
    from longkit.cli_common import parse_int_list
    from longkit.models.rope import _check_min_base_args, min_base_report

    lengths = parse_int_list(length, "--length")
    for n in lengths:  # every length checked (bounds: 2 .. 2^22) before the first scan starts
        _check_min_base_args(head_dim, n, step)
    if max(lengths) > 1 << 19:
        typer.secho(f"note: the exact scan at {max(lengths)} tokens takes a minute or more", err=True)
    rows = [min_base_report(head_dim, n, step=step).as_dict() for n in lengths]
    if as_json:
        typer.echo(json.dumps(rows if len(rows) > 1 else rows[0], indent=2))
        return
    for r in rows:
        typer.echo(
            f"head_dim={r['head_dim']} length={r['length']}: min base {r['min_base']:.4g} "
            f"(smallest feasible), stable {r['stable_min_base']:.4g} (every base above feasible)"
        )
