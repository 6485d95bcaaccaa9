"""Needle-in-a-Haystack and passkey retrieval (the tests that open ChatQA 2's evaluation).

A needle is inserted into haystack text at a depth measured in tokens of the model's tokenizer,
moved back to the previous sentence end, and the haystack is cut so that the whole prompt
(template and question included) plus the answer budget matches the target length.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError
from longkit.eval.haystack import load_haystack
from longkit.eval.metrics import keyword_recall, normalize_answer
from longkit.eval.tasks.base import Sample, Task

CHATQA2_NEEDLE = "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."
CHATQA2_QUESTION = "What is the best thing to do in San Francisco?"
CHATQA2_ANSWER = "eat a sandwich and sit in Dolores Park on a sunny day"
PASSKEY_NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
PASSKEY_QUESTION = "What is the pass key?"

TEMPLATES = {
    # question after the haystack (the usual NIAH layout)
    "question-after": "{context}\n\nBased on the text above, answer the question briefly.\nQuestion: {question}",
    # question before and after: weak models only find the needle this way
    "question-both": ("Answer the question using the text below.\nQuestion: {question}\n\n{context}\n\n"
                      "Based on the text above, answer the question briefly.\nQuestion: {question}"),
    "question-before": "Question: {question}\n\nAnswer the question above using this text:\n\n{context}",
}

_SENTENCE_END = (".", "!", "?", "\n")


@dataclass
class NeedleSpec:
    """What to hide and what to ask: needles (texts), a question and the reference answers."""

    needles: list[str]
    question: str
    answers: list[str]


def resolve_template(template: str) -> str:
    """A named template or a custom string with {context} and {question}."""
    text = TEMPLATES.get(template, template)
    if "{context}" not in text or "{question}" not in text:
        raise ConfigError(f"template '{template}': expected one of {sorted(TEMPLATES)} or a string with "
                          "{context} and {question}")
    return text


class Haystack:
    """Haystack text tokenised once, with a per-token flag 'a sentence ends after this token'."""

    def __init__(self, text: str, tokenizer: TextTokenizer):
        self.ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
        if self.ids.size == 0:
            raise ConfigError("haystack is empty after tokenisation")
        uniq = np.unique(self.ids)
        ends = {int(t) for t in uniq if tokenizer.decode([int(t)]).rstrip(" ").endswith(_SENTENCE_END)}
        self.sentence_end = np.isin(self.ids, np.fromiter(ends, dtype=np.int64, count=len(ends)))
        self.tokenizer = tokenizer

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first n tokens (repeating the haystack if it is shorter) and their sentence-end flags."""
        reps = -(-n // self.ids.size)
        ids = np.tile(self.ids, reps)[:n]
        ends = np.tile(self.sentence_end, reps)[:n]
        return ids, ends


def sentence_boundary(ends: np.ndarray, pos: int) -> int:
    """The largest p <= pos such that the haystack's token p-1 ends a sentence (0 if none)."""
    if pos <= 0:
        return 0
    hits = np.flatnonzero(ends[:pos])
    return int(hits[-1]) + 1 if hits.size else 0


def insert_needles(
    hay: Haystack,
    tokenizer: TextTokenizer,
    spec: NeedleSpec,
    length: int,
    depth: float,
    template: str,
    answer_budget: int,
    chat: bool,
    tolerance: float = 0.005,
) -> tuple[str, dict[str, Any]]:
    """Build the prompt text for one (length, depth) cell; returns (user text, meta).

    Needle k of n goes at depth + k * (100 - depth) / n percent of the haystack tokens, each moved back
    to a sentence boundary. The haystack is resized until prompt + answer budget is within
    `tolerance` of `length` tokens.
    """
    tmpl = resolve_template(template)

    def render(context: str) -> str:
        user = tmpl.format(context=context, question=spec.question)
        return tokenizer.render_messages([{"role": "user", "content": user}]) if chat else user

    overhead = tokenizer.count(render(""))
    needle_tokens = sum(tokenizer.count(" " + n + " ") for n in spec.needles)
    budget = length - answer_budget - overhead - needle_tokens
    if budget <= 0:
        raise ConfigError(f"length {length} is too short for the template, needle and answer budget "
                          f"({overhead + needle_tokens + answer_budget} tokens)")
    n = len(spec.needles)
    depths = [depth + k * (100.0 - depth) / n for k in range(n)]
    user = ""
    meta: dict[str, Any] = {}
    for _ in range(6):
        ids, ends = hay.take(budget)
        positions = [sentence_boundary(ends, int(round(d / 100.0 * budget))) for d in depths]
        pieces: list[str] = []
        prev = 0
        for needle, pos in zip(spec.needles, positions):
            before = tokenizer.decode(ids[prev:pos].tolist())
            pieces.append(before)
            pieces.append(needle)
            prev = pos
        pieces.append(tokenizer.decode(ids[prev:].tolist()))
        context = _join(pieces)
        user = tmpl.format(context=context, question=spec.question)
        total = tokenizer.count(render(context)) + answer_budget
        meta = {
            "length": length,
            "depth": depth,
            "actual_length": total,
            "haystack_tokens": budget,
            "needle_token_offsets": positions,
            "actual_depths": [round(100.0 * p / budget, 2) for p in positions],
        }
        diff = length - total
        if abs(diff) <= max(1, tolerance * length):
            break
        budget += diff
    return user, meta


def _join(pieces: list[str]) -> str:
    out = pieces[0]
    for p in pieces[1:]:
        if out and not out[-1].isspace() and p and not p[0].isspace():
            out += " "
        out += p
    return out


@dataclass
class NIAHConfig:
    """Settings of a needle grid; lengths in tokens, depths in percent."""

    lengths: list[int]
    depths: list[float]
    haystack: str = "pydoc"
    template: str = "question-after"
    chat: bool | None = None  # None: use the chat template when the tokenizer has one
    answer_budget: int = 32
    needles: list[str] = field(default_factory=lambda: [CHATQA2_NEEDLE])
    question: str = CHATQA2_QUESTION
    answers: list[str] = field(default_factory=lambda: [CHATQA2_ANSWER])
    seed: int = 0


class NIAHTask(Task):
    """Needle-in-a-Haystack over a grid of context lengths x needle depths."""

    name = "niah"
    group_by = ("length", "depth")

    def __init__(self, config: NIAHConfig):
        for d in config.depths:
            if not 0 <= d <= 100:
                raise ConfigError(f"depth {d} is outside 0-100 (depths are percentages)")
        if not config.lengths or any(length <= 0 for length in config.lengths):
            raise ConfigError("lengths must be positive token counts")
        resolve_template(config.template)
        self.config = config
        self._hay: tuple[int, Haystack] | None = None

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the prompts (the grid itself may grow across resumes)."""
        c = self.config
        return {"name": self.name, "haystack": c.haystack, "template": c.template, "chat": c.chat,
                "answer_budget": c.answer_budget, "needles": c.needles, "question": c.question, "seed": c.seed}

    def plan(self) -> list[dict[str, Any]]:
        """One spec per (length, depth)."""
        return [{"id": f"L{length}-D{_fmt(depth)}", "length": length, "depth": depth}
                for length in self.config.lengths for depth in self.config.depths]

    def haystack(self, tokenizer: TextTokenizer) -> Haystack:
        """The tokenised haystack (cached per tokenizer)."""
        if self._hay is None or self._hay[0] != id(tokenizer):
            text = load_haystack(self.config.haystack, min_chars=8 * max(self.config.lengths))
            self._hay = (id(tokenizer), Haystack(text, tokenizer))
        return self._hay[1]

    def needle_spec(self, spec: dict[str, Any]) -> NeedleSpec:
        """The needles, question and answers of one sample."""
        c = self.config
        return NeedleSpec(list(c.needles), c.question, list(c.answers))

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """Insert the needle(s) for one grid cell."""
        c = self.config
        chat = tokenizer.has_chat_template if c.chat is None else c.chat
        ns = self.needle_spec(spec)
        user, meta = insert_needles(self.haystack(tokenizer), tokenizer, ns, spec["length"], spec["depth"],
                                    c.template, c.answer_budget, chat)
        meta["question"] = ns.question  # for the LLM judge and the report
        kwargs: dict[str, Any] = {"messages": [{"role": "user", "content": user}]} if chat else {"prompt": user}
        return Sample(id=spec["id"], references=ns.answers, meta=meta, max_new_tokens=c.answer_budget, **kwargs)

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """Keyword recall (primary) and exact substring match of every answer."""
        recall = keyword_recall(prediction, sample.references)
        norm = normalize_answer(prediction)
        exact = float(all(normalize_answer(a) in norm for a in sample.references))
        return {"score": recall, "keyword_recall": recall, "exact": exact}


class PasskeyTask(NIAHTask):
    """ChatQA 2's passkey retrieval: a random key hidden in the haystack."""

    name = "passkey"

    def __init__(self, config: NIAHConfig, key_digits: int = 5):
        super().__init__(replace(config, needles=[PASSKEY_NEEDLE], question=PASSKEY_QUESTION))
        self.key_digits = key_digits

    def fingerprint(self) -> dict[str, Any]:
        """Passkey settings."""
        return {**super().fingerprint(), "key_digits": self.key_digits}

    def needle_spec(self, spec: dict[str, Any]) -> NeedleSpec:
        """A key drawn from a generator seeded by (seed, sample id), so reruns see the same key."""
        rng = random.Random(f"{self.config.seed}:{spec['id']}")
        key = str(rng.randint(10 ** (self.key_digits - 1), 10**self.key_digits - 1))
        return NeedleSpec([PASSKEY_NEEDLE.format(key=key)], PASSKEY_QUESTION, [key])

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """1 if the first number in the answer is the key (InfiniteBench's passkey parsing)."""
        import re

        nums = re.findall(r"\d+", prediction)
        hit = float(bool(nums) and nums[0] == sample.references[0])
        return {"score": hit, "exact": hit, "contains": float(sample.references[0] in prediction)}


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
