"""Field types for the data config's pydantic models, with the messages the data config has always given:
`expected an integer, got '1e12'`, `must be in [16, 16777216], got 0`, `must be one of plain, cip, utk`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from longkit.errors import ConfigError


def field_error(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose text is exactly `message` (no pydantic prefix; braces kept)."""
    return PydanticCustomError(kind, "{message}", {"message": message})


def kind_of(value: Any) -> str:
    """A value's kind in YAML words (a list read from YAML is a list subclass that keeps line numbers)."""
    kinds = ((bool, "bool"), (dict, "mapping"), (list, "list"), (str, "string"), (int, "int"), (float, "float"))
    for kind, name in kinds:  # bool first: it is an int too
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _range(lo: float | None, hi: float | None) -> str:
    return f">= {lo}" if hi is None else f"<= {hi}" if lo is None else f"in [{lo}, {hi}]"


def _checked(kind: str, check: Callable[[Any], Any]) -> PlainValidator:
    """A validator running check; check's ConfigError becomes a field error (pydantic adds the path)."""

    def run(value: Any) -> Any:
        try:
            return check(value)
        except ConfigError as exc:
            raise field_error(kind, str(exc)) from None

    return PlainValidator(run)


def integer(lo: int | None = None, hi: int | None = None) -> Any:
    """Validator for `Annotated[int, integer(lo, hi)]`: an integer (never a bool, float or string) in [lo, hi]."""

    def check(v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise ConfigError(f"expected an integer, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(f"must be {_range(lo, hi)}, got {v}")
        return v

    return _checked("int", check)


def number(lo: float | None = None, hi: float | None = None) -> Any:
    """Validator for `Annotated[float, number(lo, hi)]`: an int or float (never a bool) in [lo, hi], as written."""
    # kept as written: reports have always shown `probability: 1`, not `1.0`

    def check(v: Any) -> float:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ConfigError(f"expected a number, got {v!r}")
        if not (lo is None or v >= lo) or not (hi is None or v <= hi):  # NaN fails both
            raise ConfigError(f"must be {_range(lo, hi)}, got {v}")
        return v

    return _checked("number", check)


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"expected true or false, got {v!r}")
    return v


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"expected a string, got {v!r}")
    return v


def _strings(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"expected a list of str values, got {v!r}")
    return list(v)


def _integers(v: Any) -> list[int]:
    if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise ConfigError(f"expected a list of int values, got {v!r}")
    return list(v)


def choice(*allowed: str) -> Any:
    """Validator metadata for `Annotated[str, choice(...)]`: one of the allowed strings."""

    def check(v: Any) -> str:
        if v not in allowed:
            raise ConfigError(f"must be one of {', '.join(allowed)}, got {v!r}")
        return str(v)

    return _checked("choice", check)


Bool = Annotated[bool, _checked("bool", _boolean)]
Str = Annotated[str, _checked("str", _string)]
StrList = Annotated[list[str], _checked("list", _strings)]
IntList = Annotated[list[int], _checked("list", _integers)]


class Section(BaseModel):
    """A config section: an unknown key is refused with the known ones listed (a typo is seen at once)."""

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise field_error("mapping", f"expected a mapping, got {kind_of(data)}")
        unknown = set(data) - set(cls.model_fields)
        if unknown:
            raise field_error("unknown", f"unknown field(s) {sorted(unknown)}; known: {sorted(cls.model_fields)}")
        return data
