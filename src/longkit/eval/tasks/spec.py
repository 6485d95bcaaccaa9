"""What a benchmark module declares about each of its tasks, in one place.

A benchmark is one module under `longkit.eval.tasks` with a `declare() -> list[TaskSpec]` function. The
registry (`registry.py`), the data fetcher (`eval/fetch.py`) and the suite read these declarations and hold
no benchmark name of their own: a task's name and aliases, its benchmark, the official code it follows
(repository, path, commit), where its data comes from when fetched by name (or that it is generated), the
options it reads (a pydantic model: an unknown or wrongly typed option is a one-line error), its metric
with the aggregation and reporting scale of the benchmark's own scorer, and its answer budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict

from longkit.eval.tasks.base import Task


@dataclass(frozen=True)
class OfficialCode:
    """The code a task follows: a repository (GitHub `owner/name`, or `hf:` for a Hub repository), a path in it
    and the commit it was read at (None only where the repository could not be pinned; `eval list` says so)."""

    repo: str
    path: str
    commit: str | None

    def describe(self) -> str:
        """'repo path@commit' for listings."""
        return f"{self.repo} {self.path}@{self.commit[:12] if self.commit else 'unpinned'}"


@dataclass(frozen=True)
class DataSource:
    """Where a task's official data lives on the Hugging Face Hub and which file the task reads from it."""

    repo: str  # dataset repository (repo_type="dataset")
    file: str  # the file in the repository to download
    member: str | None = None  # for archives: the file (or directory, ".") the task reads inside it
    # rebuilds the layout the task reads from the downloaded file (JSON-serialisable), written as `member`
    convert: Callable[[Path], Any] | None = None
    setting: str = ""  # the suite's data.<setting> that overrides it with a local copy
    revision: str | None = None  # a pinned Hub revision (None: the repository's default branch)

    def describe(self) -> str:
        """'dataset repo, file f' for messages."""
        return f"dataset {self.repo}, file {self.file}"


@dataclass(frozen=True)
class Metric:
    """A task's primary metric as its benchmark reports it.

    `aggregation` names how per-sample scores become the task's number (a key of
    `eval.metrics.AGGREGATIONS`: "mean", or a corpus-level formula such as SCROLLS's geometric mean of
    corpus ROUGE); `scale` and `scale_label` are the factor and wording of the official scorer's printout.
    A metric where lower is better (a loss) has no effective length or adaptation rate."""

    name: str
    aggregation: str = "mean"
    scale: float = 1.0
    scale_label: str = "[0, 1]"
    higher_is_better: bool = True


class Scale(TypedDict):
    """A Metric's reporting scale, as keyword arguments (`Metric(name, **X100)`)."""

    scale: float
    scale_label: str


X100: Scale = {"scale": 100.0, "scale_label": "x100"}


class NoOptions(BaseModel):
    """A task that reads no `options:`."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class TaskSpec:
    """One task as its benchmark module declares it."""

    name: str
    benchmark: str
    description: str
    metric: Metric
    synthetic: bool  # generated at any length (True) or read from the benchmark's files (False)
    factory: Callable[[TaskSpec, dict[str, Any]], Task]
    official: OfficialCode
    data: DataSource | None = None  # fetched by name (qa_1/qa_2: the documents a generated task draws from)
    options: type[BaseModel] = NoOptions
    answer_budget: int | None = None  # tokens the model may generate (None: set per sample or by an option)
    aliases: tuple[str, ...] = ()
    average_group: str | None = None  # tasks the suite averages together (e.g. a benchmark's own average)
    extra: dict[str, Any] = field(default_factory=dict)  # what the factory needs beyond the above
    # a task that does not generate (it scores text, e.g. perplexity) runs itself instead of going through the
    # generation runner: run(spec, settings, backend, out_dir, model_name=, batch_size=, progress=, on_first_write=)
    run: Callable[..., Any] | None = None
    needs: tuple[str, ...] = ()  # backend capabilities beyond generation (e.g. "score"), checked before a suite runs
    # a benchmark's own summary of a run's records beside the suite's (e.g. NoLiMa's base score and its effective
    # length at 85% of it), a JSON-serialisable mapping shown in suite.json and the report
    summarize: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None

    @property
    def metric_name(self) -> str:
        """The metric as listings print it."""
        return self.metric.name

    def build(self, settings: dict[str, Any]) -> Task:
        """The task, from suite settings (lengths, samples, seed, data paths, options)."""
        return self.factory(self, settings)
