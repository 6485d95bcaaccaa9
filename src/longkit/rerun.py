"""The one rule for a command that writes into an existing output: compare what it would record with what the
output records, and refuse in one line naming the first differing field.

Records are plain JSON (dataclasses and pydantic models become mappings); `first_difference` walks two of
them and names the first field that differs as a dotted path with list items as `[i]`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from typing import Any


def jsonable(value: Any) -> Any:
    """A JSON round trip of value (dataclasses and pydantic models as mappings, tuples as lists)."""

    def default(obj: Any) -> Any:
        if is_dataclass(obj) and not isinstance(obj, type):
            return asdict(obj)
        if hasattr(obj, "model_dump"):
            return obj.model_dump()
        return str(obj)

    return json.loads(json.dumps(value, default=default, sort_keys=True))


def first_difference(old: Any, new: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first field (dotted path, list items as [i]) where two records differ, with both values; None when
    equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
            if found is not None:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            found = first_difference(a, b, f"{prefix.rstrip('.')}[{i}].")
            if found is not None:
                return found
        return None
    return None if old == new else (prefix.rstrip(".") or "run", old, new)


def refusal_line(field: str, out: Any, verb: str, old: Any, new: Any, also: str = "") -> str:
    """`field 'x': OUT was <verb> with OLD, not NEW; use a new out<also>, or delete OUT to start fresh`."""
    return (
        f"field '{field}': {out} was {verb} with {json.dumps(old)}, not {json.dumps(new)}; use a new out{also}, "
        f"or delete {out} to start fresh"
    )
