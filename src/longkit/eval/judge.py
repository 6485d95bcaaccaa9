"""An LLM-as-judge scorer through any backend: rates an answer against the reference from 1 to 10."""

from __future__ import annotations

import re
from collections.abc import Sequence

from longkit.backends.base import Backend, GenerationRequest

JUDGE_PROMPT = (
    "You are grading an answer to a question against a reference answer.\n"
    "Question: {question}\nReference answer: {reference}\nAnswer to grade: {prediction}\n\n"
    "Rate how well the answer matches the reference on a scale of 1 to 10, where 10 means it states the "
    "reference's content fully and correctly and 1 means it does not contain it at all. "
    "Reply with the rating in double brackets, for example: [[7]]"
)

_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_FALLBACK = re.compile(r"\b(10|[1-9])\b")


def parse_rating(text: str) -> float | None:
    """The 1-10 rating in a judge's reply ([[N]], else the first integer 1-10), or None."""
    m = _RATING.search(text) or _FALLBACK.search(text)
    if not m:
        return None
    value = float(m.group(1))
    return value if 1 <= value <= 10 else None


class LLMJudge:
    """Scores predictions with a judge model; the score is rating / 10 (0 when unparseable)."""

    def __init__(
        self, backend: Backend, max_new_tokens: int = 16, prompt: str = JUDGE_PROMPT, system: str | None = None
    ):
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.prompt = prompt  # a template with {question}, {reference} and {prediction}
        self.system = system

    def score_batch(
        self, questions: Sequence[str], predictions: Sequence[str], references: Sequence[Sequence[str]]
    ) -> list[float | None]:
        """Ratings / 10 for each (question, prediction, references); None where the judge gave no rating."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        reqs = [
            GenerationRequest(
                messages=system
                + [{"role": "user", "content": self.prompt.format(question=q, reference=" | ".join(r), prediction=p)}],
                max_new_tokens=self.max_new_tokens,
            )
            for q, p, r in zip(questions, predictions, references)
        ]
        out = self.backend.generate(reqs)
        ratings = [parse_rating(c.text) for c in out]
        return [None if r is None else r / 10.0 for r in ratings]
