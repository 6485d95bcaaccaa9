"""`longkit rag ...` sub-commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


def register_eval_commands(eval_app: typer.Typer) -> None:
    """Add RAG-backed commands (e.g. `eval rag-vs-long`) to the eval app."""
