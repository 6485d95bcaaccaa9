"""`longkit demo`: the main job on the bundled default model, offline."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root app."""
