"""`longkit model ...` sub-commands."""

from __future__ import annotations

import json

import typer

from longkit.cli_common import friendly_errors

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
