"""Every task longkit can run, gathered from the benchmark modules' declarations (`eval.tasks.spec`).

A benchmark module under `longkit.eval.tasks` declares its tasks with `declare() -> list[TaskSpec]`; this
module finds those modules, indexes the tasks by name and alias, checks `options:` against each task's
declared schema and builds tasks from suite settings. It names no benchmark: adding one is adding its module.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pydantic import ValidationError

from longkit.errors import ConfigError, located
from longkit.eval.tasks.base import Task
from longkit.eval.tasks.spec import TaskSpec

# The registry's own name for a task is its benchmark's spelling; TaskInfo is the name older code imported.
TaskInfo = TaskSpec


def _declarations() -> list[TaskSpec]:
    """Every TaskSpec of every module of this package that declares tasks, in module order."""
    import longkit.eval.tasks as package

    specs: list[TaskSpec] = []
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        declare = getattr(importlib.import_module(f"{package.__name__}.{module}"), "declare", None)
        if callable(declare):
            specs.extend(declare())
    return specs


def _index(specs: list[TaskSpec]) -> tuple[dict[str, TaskSpec], dict[str, str]]:
    """Tasks by name and aliases to names; a name or alias declared twice is a programming error."""
    tasks: dict[str, TaskSpec] = {}
    aliases: dict[str, str] = {}
    for spec in specs:
        for name in (spec.name, *spec.aliases):
            if name in tasks or name in aliases:
                raise RuntimeError(f"task name '{name}' is declared twice ({spec.benchmark})")
        tasks[spec.name] = spec
        aliases.update({alias: spec.name for alias in spec.aliases})
    return tasks, aliases


_INDEX: tuple[dict[str, TaskSpec], dict[str, str]] | None = None


def _loaded() -> tuple[dict[str, TaskSpec], dict[str, str]]:
    global _INDEX
    if _INDEX is None:
        _INDEX = _index(_declarations())
    return _INDEX


def registry() -> dict[str, TaskSpec]:
    """All declared tasks by name."""
    return _loaded()[0]


def aliases() -> dict[str, str]:
    """Other names a task answers to (e.g. a benchmark's file stem) -> its registered name."""
    return _loaded()[1]


def resolve_name(name: str) -> str:
    """The registered name for a name or alias; unknown names list the known ones by benchmark."""
    reg = registry()
    name = aliases().get(name, name)
    if name in reg:
        return name
    by: dict[str, list[str]] = {}
    for spec in reg.values():
        by.setdefault(spec.benchmark, []).append(spec.name)
    known = "; ".join(f"{b}: {', '.join(n)}" for b, n in by.items())
    raise ConfigError(f"unknown task '{name}' (known tasks: {known})")


def accepted_options(name: str) -> set[str]:
    """The `options:` keys a task reads (its declared schema's fields)."""
    return set(registry()[resolve_name(name)].options.model_fields)


def check_options(name: str, options: dict[str, Any] | None) -> None:
    """Refuse options the task does not declare, or of the wrong type, in one line naming the option."""
    from longkit.config import describe

    spec = registry()[resolve_name(name)]
    unknown = sorted(set(options or {}) - set(spec.options.model_fields))
    if unknown:
        accepted = sorted(spec.options.model_fields)
        raise ConfigError(
            f"task {spec.name}: options: unknown option '{unknown[0]}' (this task accepts: "
            f"{', '.join(accepted) if accepted else 'none'})"
        )
    try:
        with located(f"task {spec.name}: options"):  # a schema's own check (passkey's fixed needle) raises directly
            spec.options.model_validate(options or {})
    except ValidationError as exc:
        raise ConfigError(f"task {spec.name}: options: {describe(exc, options)}") from None


def make_task(name: str, settings: dict[str, Any]) -> Task:
    """Build a registered task from suite settings (lengths, samples, seed, data paths, options)."""
    check_options(name, settings.get("options"))
    return registry()[resolve_name(name)].build(settings)
