"""The task interface the runner drives: a cheap plan of sample specs, a builder, and a scorer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from longkit.backends.base import GenerationRequest, TextTokenizer


@dataclass
class Sample:
    """One evaluation sample: the model input, the reference answers and metadata for reports."""

    id: str
    references: list[str]
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int = 32
    stop: list[str] = field(default_factory=list)

    def request(self) -> GenerationRequest:
        """The generation request for this sample (greedy)."""
        return GenerationRequest(
            prompt=self.prompt,
            messages=self.messages,
            max_new_tokens=self.max_new_tokens,
            stop=list(self.stop),
            temperature=0.0,
        )


class Task(ABC):
    """A benchmark task. `plan()` is cheap (ids + parameters); `build()` makes the prompt."""

    name: str = "task"
    #: meta fields the report groups scores by, in order (e.g. length, depth)
    group_by: tuple[str, ...] = ("length",)

    @abstractmethod
    def plan(self) -> list[dict[str, Any]]:
        """Sample specs, each with a stable 'id'; building them is deferred so resumed runs skip work."""

    @abstractmethod
    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """Make the sample for one spec, measuring lengths with the model's tokenizer."""

    @abstractmethod
    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """Scores for one prediction; the key 'score' is the task's primary metric in [0, 1]."""

    def fingerprint(self) -> dict[str, Any]:
        """Settings that change the samples; a resumed run must match them."""
        return {"name": self.name}

    def describe(self) -> str:
        """A line for the report header: how samples are built where a reader must know it (haystack, protocol,
        a deliberate difference from the official benchmark); empty when there is nothing to say."""
        return ""
