"""The suite YAML schema: models (backend specs with a label), tasks with per-task settings, and suite options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from longkit.backends.spec import BackendSpec
from longkit.eval.bootstrap import MAX_RESAMPLES


class ModelEntry(BackendSpec):
    """One model to evaluate: the shared backend spec plus the name it carries in the report."""

    name: str | None = None  # label in the report (defaults to the model)

    @property
    def label(self) -> str:
        """The name shown in reports and used for the output directory."""
        # an openai spec may leave the model to the server; its label then falls back to the backend name
        return self.name or self.model or self.backend


class TaskEntry(BaseModel):
    """A task with optional per-task settings (lengths, samples, data path, task options)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    lengths: list[Annotated[int, Field(ge=16)]] | None = Field(None, min_length=1)
    samples: int | None = Field(None, ge=1)
    path: str | None = None
    max_length: int | None = Field(None, ge=16)
    budget: int | None = Field(None, ge=0)  # official prompt truncation (tokens); 0 = fit the window only
    levels: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class SuiteConfig(BaseModel):
    """A suite: models x tasks x lengths, data locations, thresholds and the output directory."""

    model_config = ConfigDict(extra="forbid")

    name: str = "suite"
    models: list[ModelEntry] = Field(default_factory=lambda: [ModelEntry.model_validate({})], min_length=1)
    tasks: list[TaskEntry] = Field(min_length=1)
    lengths: list[Annotated[int, Field(ge=16)]] = Field(default_factory=lambda: [4096], min_length=1)
    samples: int | None = Field(None, ge=1)  # per length for generated tasks; the first N rows for file tasks
    seed: int = 42
    chat: bool | None = None
    data: dict[str, str] = Field(default_factory=dict)  # infinitebench, longbench, scrolls, lveval, chatrag, squad, ...
    threshold: float = Field(0.856, ge=0, le=1)  # RULER: Llama-2-7B's 4K score
    reference_length: int | None = None  # adaptation rate = score(longest) / score(reference); default shortest
    allow_extrapolation: bool = False
    judge: ModelEntry | None = None  # the LLM judge of judged tasks (a backend spec; e.g. HELMET's summaries)
    # resamples of the 95% intervals (report only: not part of the run record)
    bootstrap: int = Field(1000, ge=1, le=MAX_RESAMPLES)
    workers: int = Field(1, ge=1)
    out: str = "runs/suite"

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v: Any) -> Any:
        """A bare task name stands for a task entry with default settings."""
        if isinstance(v, list):
            return [{"name": t} if isinstance(t, str) else t for t in v]
        return v

    @field_validator("lengths", mode="before")
    @classmethod
    def _lengths(cls, v: Any) -> Any:
        """Lengths may be written as the CLI's list syntax (1024,2048 or linspace:A:B:N)."""
        if isinstance(v, str):
            from longkit.cli_common import parse_int_list

            return parse_int_list(v, "lengths")
        return v

    @model_validator(mode="after")
    def _distinct(self) -> SuiteConfig:
        """Two models, or two entries of one task, would write into one directory: refused, naming both."""
        from longkit.eval.suite.layout import safe_name

        _refuse_shared("models", [safe_name(m.label) for m in self.models], [m.label for m in self.models])
        names = [_registered(t.name) for t in self.tasks]
        _refuse_shared("tasks", names, names)
        return self


def _registered(name: str) -> str:
    """A task's registered name (aliases resolved); an unknown name as given (it is refused before any run)."""
    from longkit.errors import LongkitError
    from longkit.eval.tasks.registry import resolve_name

    try:
        return resolve_name(name)
    except LongkitError:
        return name


def _refuse_shared(field: str, dirs: list[str], labels: list[str]) -> None:
    """A ValueError naming the first two entries of `field` whose results would share a directory."""
    seen: dict[str, int] = {}
    for i, d in enumerate(dirs):
        j = seen.setdefault(d, i)
        if j == i:
            continue
        what = "named" if field == "models" else "task"
        same = (
            f"are both {what} '{labels[i]}'"
            if labels[i] == labels[j]
            else f"('{labels[j]}', '{labels[i]}') are both written to '{d}'"
        )
        fix = "give each model its own `name:`" if field == "models" else "keep one entry per task"
        raise ValueError(f"{field}[{j}] and {field}[{i}] {same}, so their results would mix; {fix}")


def load_suite(path: str | Path, overrides: dict[str, Any] | None = None) -> SuiteConfig:
    """Read a suite YAML (CLI overrides applied); errors name the file and field."""
    from longkit.config import load_config

    return load_config(SuiteConfig, path, overrides)


def check_models(cfg: SuiteConfig, where: str = "suite", skip: frozenset[str] | set[str] = frozenset()) -> None:
    """Every model a local backend loads exists (resolved without network), before any model runs."""
    from longkit.backends.registry import LOCAL, names_with
    from longkit.errors import ConfigError, InputError
    from longkit.models.defaults import DEFAULT_GENERATOR
    from longkit.models.load import resolve

    local = names_with(LOCAL)
    for i, m in enumerate(cfg.models):
        if m.backend not in local or m.label in skip:
            continue
        try:
            resolve(m.model or DEFAULT_GENERATOR)
        except InputError as exc:
            raise ConfigError(f"{where}: field 'models[{i}].model': {exc}") from None
