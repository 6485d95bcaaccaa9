"""`longkit rag tune` as a library call: sweep RAG settings on a dev QA set with the index's embedder, choose the
cheapest within a tolerance of the best (`longkit.rag.tune.choose_setting`) and record it in the index manifest.

The sweep is an evaluation, so this lives in eval/; rag/ holds only the choice and the window bound."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longkit.backends.base import Backend
from longkit.backends.spec import BackendSpec
from longkit.errors import ConfigError
from longkit.eval.rag_vs_long import DEFAULT_CHUNK_SIZES, DEFAULT_TOP_KS, RagVsLongOptions, run_rag_vs_long

DEFAULT_ANSWER_BUDGET = 128  # `rag ask`'s --max-new-tokens


@dataclass(frozen=True)
class TuneOptions:
    """`longkit rag tune` as one object: each field is the option of the same name."""

    index: Path
    qa: Path
    # the generator; its batch size is also the prompts per backend call
    generator: BackendSpec = field(default_factory=lambda: BackendSpec.model_validate({"batch_size": 4}))
    chunk_sizes: tuple[int, ...] = DEFAULT_CHUNK_SIZES
    top_ks: tuple[int, ...] = DEFAULT_TOP_KS
    tolerance: float = 0.02
    out: Path | None = None  # the sweep's folder; default INDEX/tune
    order: str = "score"
    style: str = "auto"
    metric: str = "token_f1"
    max_new_tokens: int = 32
    answer_budget: int | None = None  # answer tokens `rag ask` will reserve; default DEFAULT_ANSWER_BUDGET
    limit: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.tolerance, (int, float)) and 0 <= self.tolerance <= 1) or math.isnan(self.tolerance):
            raise ConfigError(f"--tolerance: expected a score difference between 0 and 1, got {self.tolerance}")
        if self.answer_budget is not None and self.answer_budget < 1:
            raise ConfigError(f"--answer-budget: must be >= 1, got {self.answer_budget}")
        self.sweep_options("")  # the sweep's own options are checked now, before the index is opened

    @property
    def reserve(self) -> int:
        """Answer tokens the chosen budget leaves room for."""
        return self.answer_budget or DEFAULT_ANSWER_BUDGET

    def sweep_options(self, embedder: str) -> RagVsLongOptions:
        """The RAG-versus-long sweep these options run, with the index's embedder."""
        return RagVsLongOptions(
            qa=self.qa,
            generator=self.generator,
            embedder=embedder,
            chunk_sizes=self.chunk_sizes,
            top_ks=self.top_ks,
            out=self.out or self.index / "tune",
            order=self.order,
            style=self.style,
            metric=self.metric,
            max_new_tokens=self.max_new_tokens,
            limit=self.limit,
        )


@dataclass(frozen=True)
class TuneResult:
    """The choice recorded in the index manifest (`tuned`), the sweep's summary, and what the CLI notes."""

    choice: dict[str, Any]
    summary: dict[str, Any]
    skipped: int  # swept settings above the budget the window leaves, never considered
    index_chunk_size: int | None  # the chunk size the index was built with


def _fits(reserve: int) -> Callable[[Backend, RagVsLongOptions], None]:
    """A check, once the generator is loaded, that some swept budget fits its window (before any long work)."""
    from longkit.rag.tune import max_budget

    def check(gen: Backend, opts: RagVsLongOptions) -> None:
        room = max_budget(gen.max_context, reserve)
        smallest = (min(opts.chunk_sizes), min(opts.top_ks))
        if smallest[0] * smallest[1] > room:
            raise ConfigError(
                f"--chunk-sizes/--top-ks: every swept budget exceeds the {room} tokens a "
                f"{gen.max_context}-token window leaves after {reserve} answer tokens "
                f"(smallest: {smallest[0]} x {smallest[1]}); sweep smaller values"
            )

    return check


def tune(options: TuneOptions, *, log: Callable[[str], None] | None = None, progress: bool = False) -> TuneResult:
    """Sweep, choose the cheapest setting within the tolerance that fits the window, record it in the index."""
    from longkit.rag.index import VectorIndex
    from longkit.rag.tune import choose_setting, max_budget

    index = VectorIndex.open(options.index, writable=True)  # fail early on a missing or damaged index
    reserve = options.reserve
    summary = run_rag_vs_long(
        options.sweep_options(index.manifest["embedder"]["name"]), log=log, progress=progress, check=_fits(reserve)
    )
    window = int(summary["max_context"])
    max_budget(window, reserve)  # a clear error when the answer budget alone fills the window
    choice = choose_setting(summary, options.tolerance, max_context=window, answer_budget=reserve)
    choice.update(
        model=options.generator.model,
        qa=str(options.qa),
        metric=options.metric,
        prompt_style=summary.get("prompt_style"),
        empty_answers=summary.get("empty_answers", 0),
        answers=summary.get("answers", 0),
    )
    index.update_manifest(tuned=choice)
    skipped = sum(1 for r in summary["rag"] if r["n"] and r["chunk_size"] * r["top_k"] > choice["max_budget"])
    return TuneResult(
        choice=choice,
        summary=summary,
        skipped=skipped,
        index_chunk_size=(index.manifest.get("chunking") or {}).get("size"),
    )
