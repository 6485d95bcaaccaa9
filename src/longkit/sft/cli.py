"""SFT commands that live under `longkit data` (e.g. `data synth-long`)."""

from __future__ import annotations

import typer


def register_data_commands(data_app: typer.Typer) -> None:
    """Add SFT data commands to the data app."""
