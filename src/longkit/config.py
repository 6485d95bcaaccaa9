"""Run configs: pydantic models loaded from YAML, with CLI flags layered on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from longkit.errors import ConfigError

T = TypeVar("T", bound=BaseModel)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or bad YAML raises ConfigError naming the file and line."""
    import yaml

    from longkit.errors import InputError
    from longkit.io import read_text

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = read_text(path, "config file")
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def validate(model: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Build a pydantic model; a validation error becomes one ConfigError line naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{source}: field '{field}': {err['msg']}") from None


def load_config(model: type[T], path: str | Path | None, overrides: dict[str, Any] | None = None) -> T:
    """Load a YAML config (optional) into model, then apply non-None CLI overrides."""
    data = load_yaml(path) if path else {}
    for k, v in (overrides or {}).items():
        if v is not None:
            data[k] = v
    return validate(model, data, source=str(path) if path else "options")
