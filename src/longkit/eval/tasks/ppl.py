"""Perplexity by context length as suite tasks: `ppl` (Paul Graham's essays or local text), `pg19` (PG19's test
set) and `proof_pile` (Proof-pile's test set), each at the suite's lengths (eval/ppl.py has the protocols).

PG19's test set is read from `emozilla/pg19-test` (the 100 test books as one Parquet file, columns
`short_book_title`, `publication_date`, `url`, `text`), the copy YaRN's eval scripts tokenize; Proof-pile's from
`dwzhu/PoSE-Datasets` `proof-pile/test.jsonl` (one `{"text": ...}` line per document), the test split the PoSE
and LongLoRA evaluations sample long documents from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from longkit.backends.base import Backend
from longkit.backends.registry import SCORE
from longkit.errors import ConfigError
from longkit.eval.bootstrap import MAX_RESAMPLES
from longkit.eval.tasks.base import Task
from longkit.eval.tasks.spec import DataSource, Metric, OfficialCode, TaskSpec

# YaRN's perplexity script (compute_perplexity): the sliding window (default stride 256) and --truncate (the first
# L tokens of each document), on PG19 and Proof-pile.
_CODE = OfficialCode("jquesnelle/yarn", "eval/perplexity.py", "b1d7076cb31004a5ea1fced75c2af050a26f643b")
_METRIC = Metric("token loss (nats)", aggregation="perplexity", scale_label="perplexity", higher_is_better=False)


class CorpusOptions(BaseModel):
    """What a perplexity task reads from `options:` (eval/ppl.py's PplSettings, lengths from the suite)."""

    model_config = ConfigDict(extra="forbid")

    protocol: Literal["windows", "sliding"] = "windows"
    stride: int | None = Field(None, ge=1)
    bucket: int = Field(256, ge=1)
    windows_per_document: int | None = Field(None, ge=1)
    bootstrap: int = Field(1000, ge=1, le=MAX_RESAMPLES)


class TextOptions(CorpusOptions):
    """`ppl` also reads which text: the essays (default), or a local file or directory."""

    data: str = "essays"


def _not_generated(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    raise ConfigError(
        f"task {spec.name} scores text instead of generating answers: run it with `longkit eval ppl` "
        "or in an `eval suite`"
    )


def _run(
    spec: TaskSpec,
    settings: dict[str, Any],
    backend: Backend,
    out_dir: Path,
    *,
    model_name: str = "",
    batch_size: int = 1,
    progress: bool = True,
    on_first_write: Callable[[], None] | None = None,
    allow_extrapolation: bool = False,
) -> dict[str, Any]:
    from pydantic import ValidationError

    from longkit.config import describe
    from longkit.eval.ppl import PplSettings, run_ppl

    options = dict(settings.get("options", {}))
    data = options.pop("data", None) or settings.get("path") or spec.extra.get("corpus", "essays")
    raw = {
        **options,
        "data": data,
        "lengths": settings["lengths"],
        "max_documents": settings.get("samples"),
        "seed": settings.get("seed", 0),
    }
    try:
        ppl = PplSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"task {spec.name}: options: {describe(exc, raw)}") from None
    return run_ppl(
        ppl,
        backend,
        out_dir,
        task_name=spec.name,
        model_name=model_name,
        batch_size=batch_size,
        allow_extrapolation=allow_extrapolation,
        progress=progress,
        on_first_write=on_first_write,
    )


class _Common(TypedDict):
    """The TaskSpec fields the perplexity tasks share."""

    metric: Metric
    synthetic: bool
    factory: Callable[[TaskSpec, dict[str, Any]], Task]
    official: OfficialCode
    run: Callable[..., Any]
    needs: tuple[str, ...]


def declare() -> list[TaskSpec]:
    """ppl over the essays or local text; pg19 and proof_pile fetched by name."""
    common: _Common = {
        "metric": _METRIC,
        "synthetic": True,
        "factory": _not_generated,
        "official": _CODE,
        "run": _run,
        "needs": (SCORE,),
    }
    return [
        TaskSpec(
            "ppl",
            "Perplexity",
            "token loss by context length and position (essays or local text)",
            options=TextOptions,
            **common,
        ),
        TaskSpec(
            "pg19",
            "Perplexity",
            "token loss by context length on PG19's test books",
            data=DataSource(
                "emozilla/pg19-test",
                "data/test-00000-of-00001-29a571947c0b5ccc.parquet",
                revision="36a9d10c307274ab095e8bcf1d7529d4e9892403",
            ),
            options=CorpusOptions,
            extra={"corpus": "pg19"},
            **common,
        ),
        TaskSpec(
            "proof_pile",
            "Perplexity",
            "token loss by context length on Proof-pile's test documents",
            data=DataSource(
                "dwzhu/PoSE-Datasets", "proof-pile/test.jsonl", revision="1f90fc715d30dfb18e1fa535e2f790a9f890a6e4"
            ),
            options=CorpusOptions,
            aliases=("proof-pile",),
            extra={"corpus": "proof-pile"},
            **common,
        ),
    ]
