"""Helpers shared by every area's CLI module."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from longkit.errors import LongkitError


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn LongkitError into a one-line message and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LongkitError as exc:
            if os.environ.get("LONGKIT_DEBUG", "") not in ("", "0"):
                raise
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(code=2) from None

    return wrapper


def parse_int_list(text: str, what: str) -> list[int]:
    """Parse '1024,2048' or 'linspace:START:STOP:N' into ints; a bad value raises a one-line error."""
    from longkit.errors import ConfigError

    text = text.strip()
    try:
        if text.startswith("linspace:"):
            _, a, b, n = text.split(":")
            a_f, b_f, n_i = float(a), float(b), int(n)
            if n_i < 1:
                raise ValueError
            if n_i == 1:
                return [round(a_f)]
            return [round(a_f + (b_f - a_f) * i / (n_i - 1)) for i in range(n_i)]
        return [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"{what}: expected a comma list like 1024,2048 or linspace:START:STOP:N, got '{text}'"
        ) from None


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """The checks of io.output_dir without creating anything: a refused command must not leave an empty --out."""
    from longkit.errors import InputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: exists and is not a directory; choose a directory")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{option} {path}: a parent of it is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "directory is not writable" if existing == path else "cannot create it (permission denied)"
        raise InputError(f"{option} {path}: {what}")
    return path
