"""The one config loader: YAML (keys keep their line numbers) into pydantic models, CLI flags layered on top.

Every validation problem is reported at once, in one line the CLI prints:
`configs/x.yaml: field 'tasks.0.lengths.0' (line 7): Input should be ...; field 'seed' (line 9): ...`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from longkit.errors import ConfigError, located

T = TypeVar("T", bound=BaseModel)

OPTIONS = "options"  # the source of a config built from CLI options alone (their errors already name the option)


class YamlMapping(dict[Any, Any]):
    """A mapping read from YAML; `lines` holds the (1-based) line of each key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: dict[Any, int] = {}

    def copy(self) -> YamlMapping:
        """A shallow copy that keeps the line numbers."""
        out = YamlMapping(self)
        out.lines = dict(self.lines)
        return out


class YamlSequence(list[Any]):
    """A sequence read from YAML; `lines` holds the (1-based) line of each item."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.lines: list[int] = []


@functools.cache
def _line_loader() -> type:
    """A safe YAML loader whose mappings and sequences record where each key and item starts."""
    import yaml

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Iterator[YamlMapping]:
        data = YamlMapping()
        yield data  # yielded first so that anchors pointing back at this mapping resolve (as SafeLoader does)
        data.update(loader.construct_mapping(node))  # also flattens `<<` merge keys into node.value
        for key_node, _ in node.value:
            data.lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1

    def sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> Iterator[YamlSequence]:
        data = YamlSequence()
        yield data
        data.extend(loader.construct_sequence(node))
        data.lines = [item.start_mark.line + 1 for item in node.value]

    class LineLoader(yaml.SafeLoader):
        pass

    LineLoader.add_constructor("tag:yaml.org,2002:map", mapping)
    LineLoader.add_constructor("tag:yaml.org,2002:seq", sequence)
    return LineLoader


def load_yaml(path: str | Path) -> YamlMapping:
    """Read a YAML mapping (a dict that keeps key lines); a missing file or bad YAML names the file and line."""
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
        data = yaml.load(text, Loader=_line_loader())  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    if data is None:
        return YamlMapping()
    if not isinstance(data, YamlMapping):  # the loader builds every mapping as one
        kind = "list" if isinstance(data, list) else type(data).__name__
        raise ConfigError(f"{path}: expected a mapping at the top level, got {kind}")
    return data


def line_of(data: Any, loc: tuple[str | int, ...]) -> int | None:
    """The YAML line of the deepest key or item along `loc` that `data` holds (None when not read from YAML)."""
    line, node = None, data
    for part in loc:
        if isinstance(node, dict) and part in node:
            line = getattr(node, "lines", {}).get(part, line)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            lines = getattr(node, "lines", [])
            line = lines[part] if part < len(lines) else line
        else:
            break
        node = node[part]
    return line


def describe(exc: ValidationError, data: Any = None) -> str:
    """Every problem of a validation error in one line: `field 'a.0' (line 3): msg; field 'b': msg`."""
    parts = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        loc = tuple(err["loc"])
        if not loc:  # a check across fields (a model validator): its message names the fields itself
            parts.append(msg)
            continue
        line = line_of(data, loc)
        at = f" (line {line})" if line is not None else ""
        parts.append(f"field '{'.'.join(str(p) for p in loc)}'{at}: {msg}")
    return "; ".join(dict.fromkeys(parts))


def validate(model: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Build a pydantic model; all validation errors become one ConfigError line naming fields and YAML lines."""
    # A validator that raises a LongkitError itself (a bad list syntax, an unknown backend) skips pydantic's
    # collection: name the source on it here, unless the values came from options its message already names.
    try:
        with located(None if source == OPTIONS else source):
            return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc, data)}") from None


def load_config(model: type[T], path: str | Path | None, overrides: dict[str, Any] | None = None) -> T:
    """Load a YAML config (optional) into model, then apply non-None CLI overrides."""
    data = load_yaml(path) if path else YamlMapping()
    for k, v in (overrides or {}).items():
        if v is not None:
            data[k] = v
            data.lines.pop(k, None)  # the value now comes from an option, not from the file's line
    return validate(model, data, source=str(path) if path else OPTIONS)
