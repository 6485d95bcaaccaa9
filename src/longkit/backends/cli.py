"""`longkit serve`: an OpenAI-compatible HTTP server over a local backend."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `serve` command to the root app."""
