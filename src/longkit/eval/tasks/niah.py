"""Needle-in-a-Haystack and passkey retrieval (the tests that open ChatQA 2's evaluation).

Two protocols:

- `chatqa2` (the default, as before): a needle is inserted into haystack text at a depth measured in tokens of
  the model's tokenizer, moved back to the previous sentence end, and the haystack is cut so that the whole
  prompt (template and question included) plus the answer budget matches the target length.
- `gkamradt`: Greg Kamradt's LLMTest_NeedleInAHaystack, as the `needlehaystack` 0.1.0 wheel runs it
  (gkamradt/LLMTest_NeedleInAHaystack needlehaystack/llm_needle_haystack_tester.py, providers/openai.py,
  evaluators/openai.py and run.py, read at 2b3fb9a60decdf17dce845e5b65e4e725af31fbd /
  1a73e370b4c831f2765ab6ad2ed262ebcd55682d / 186553d1f4e8ecece0a7cfb6454e81867af623fe / 03a1d3cb07d3ed8605ddb9c6dc25ea1976fb88e7): Paul Graham's essays cut to
  L tokens, then haystack + needle cut to L - 200 tokens (the system message, question and answer are not
  counted), the needle (wrapped in newlines) moved back to just after a '.' token, 100% meaning the very end,
  the context as its own user message, and an LLM judge rating 1-10 against the needle.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError
from longkit.eval.haystack import PAUL_GRAHAM, describe_haystack, load_haystack, resolve_haystack
from longkit.eval.metrics import keyword_recall, normalize_answer
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.spec import Metric, OfficialCode, TaskSpec

CHATQA2_NEEDLE = "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day."
CHATQA2_QUESTION = "What is the best thing to do in San Francisco?"
CHATQA2_ANSWER = "eat a sandwich and sit in Dolores Park on a sunny day"
PASSKEY_NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
PASSKEY_QUESTION = "What is the pass key?"

TEMPLATES = {
    # question after the haystack (the usual NIAH layout)
    "question-after": "{context}\n\nBased on the text above, answer the question briefly.\nQuestion: {question}",
    # question before and after: weak models only find the needle this way
    "question-both": (
        "Answer the question using the text below.\nQuestion: {question}\n\n{context}\n\n"
        "Based on the text above, answer the question briefly.\nQuestion: {question}"
    ),
    "question-before": "Question: {question}\n\nAnswer the question above using this text:\n\n{context}",
}

_SENTENCE_END = (".", "!", "?", "\n")

PROTOCOLS = ("chatqa2", "gkamradt")
# gkamradt/LLMTest_NeedleInAHaystack (needlehaystack 0.1.0): run.py's needle and question, providers/openai.py's
# messages, the tester's final_context_length_buffer and the provider's max_tokens.
GKAMRADT_NEEDLE = "\n" + CHATQA2_NEEDLE + "\n"
GKAMRADT_SYSTEM = "You are a helpful AI bot that answers questions for a user. Keep your response short and direct"
GKAMRADT_QUESTION = "{question} Don't give information outside the document or repeat your findings"
GKAMRADT_BUFFER = 200
GKAMRADT_MAX_TOKENS = 300
# evaluators/openai.py: langchain's "labeled_score_string" evaluator with this accuracy rubric. langchain's
# SCORING_TEMPLATE_WITH_REFERENCE (system "You are a helpful assistant.") with the criteria rendered the way
# ScoreStringEvalChain.from_llm renders them (CRITERIA_INSTRUCTIONS + "accuracy: <rubric>" + "\n").
GKAMRADT_RUBRIC = (
    "\n                Score 1: The answer is completely unrelated to the reference."
    "\n                Score 3: The answer has minor relevance but does not align with the reference."
    "\n                Score 5: The answer has moderate relevance but contains inaccuracies."
    "\n                Score 7: The answer aligns with the reference but has minor omissions."
    "\n                Score 10: The answer is completely accurate and aligns perfectly with the "
    "reference."
    "\n                Only respond with a numberical score"
)
GKAMRADT_JUDGE_SYSTEM = "You are a helpful assistant."
GKAMRADT_JUDGE_PROMPT = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. "
    "For this evaluation, you should primarily consider the following criteria:\naccuracy: " + GKAMRADT_RUBRIC + "\n"
    "[Ground truth]\n{reference}\nBegin your evaluation by providing a short explanation. Be as objective as "
    "possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly "
    'following this format: "[[rating]]", for example: "Rating: [[5]]".\n\n'
    "[Question]\n{question}\n\n[The Start of Assistant's Answer]\n{prediction}\n[The End of Assistant's Answer]"
)


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
        raise ConfigError(
            f"template '{template}': expected one of {sorted(TEMPLATES)} or a string with {{context}} and {{question}}"
        )
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
        raise ConfigError(
            f"length {length} is too short for the template, needle and answer budget "
            f"({overhead + needle_tokens + answer_budget} tokens)"
        )
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


def gkamradt_context(
    hay: Haystack, tokenizer: TextTokenizer, needle: str, length: int, depth: float, buffer: int = GKAMRADT_BUFFER
) -> tuple[str, dict[str, Any]]:
    """gkamradt's generate_context: the first `length` haystack tokens (encode_and_trim), re-encoded; haystack +
    needle cut to length - buffer tokens; the needle at int(tokens * depth / 100), moved back until the token
    before it is a '.' token, or at the very end for depth 100."""
    ids, _ = hay.take(length)
    tokens_context = tokenizer.encode(tokenizer.decode(ids.tolist()))
    tokens_needle = tokenizer.encode(needle)
    budget = length - buffer
    if budget <= len(tokens_needle):
        raise ConfigError(f"length {length} leaves no room for the needle after gkamradt's {buffer}-token buffer")
    if len(tokens_context) + len(tokens_needle) > budget:
        tokens_context = tokens_context[: budget - len(tokens_needle)]
    if depth == 100:
        insertion = len(tokens_context)
    else:
        insertion = int(len(tokens_context) * (depth / 100))
        period = set(tokenizer.encode("."))
        while insertion > 0 and tokens_context[insertion - 1] not in period:
            insertion -= 1
    new = tokens_context[:insertion] + tokens_needle + tokens_context[insertion:]
    meta = {
        "length": length,
        "depth": depth,
        "haystack_tokens": len(tokens_context),
        "context_tokens": len(new),
        "needle_token_offsets": [insertion],
        "actual_depths": [round(100.0 * insertion / max(1, len(tokens_context)), 2)],
    }
    return tokenizer.decode(new), meta


def gkamradt_messages(context: str, question: str) -> list[dict[str, str]]:
    """providers/openai.py's generate_prompt: a system message, the context, then the question, as three turns."""
    return [
        {"role": "system", "content": GKAMRADT_SYSTEM},
        {"role": "user", "content": context},
        {"role": "user", "content": GKAMRADT_QUESTION.format(question=question)},
    ]


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
    haystack: str | None = None  # None: the protocol's default ('pydoc' for chatqa2, 'auto' essays for gkamradt)
    template: str = "question-after"
    chat: bool | None = None  # None: use the chat template when the tokenizer has one
    answer_budget: int | None = None  # None: the protocol's default (32 for chatqa2, gkamradt's 300)
    needles: list[str] = field(default_factory=lambda: [CHATQA2_NEEDLE])
    question: str = CHATQA2_QUESTION
    answers: list[str] = field(default_factory=lambda: [CHATQA2_ANSWER])
    seed: int = 0
    protocol: str = "chatqa2"  # 'chatqa2' (longkit's, as ChatQA 2 reports it) or 'gkamradt'


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
        if config.protocol not in PROTOCOLS:
            raise ConfigError(f"--protocol: expected one of {', '.join(PROTOCOLS)}, got '{config.protocol}'")
        if config.protocol == "gkamradt" and len(config.needles) != 1:
            raise ConfigError("--protocol gkamradt: takes one needle (its multi-needle test is another protocol)")
        gk = config.protocol == "gkamradt"
        self.config = replace(
            config,
            haystack=config.haystack or ("auto" if gk else "pydoc"),
            answer_budget=config.answer_budget or (GKAMRADT_MAX_TOKENS if gk else 32),
        )
        self._hay: tuple[int, Haystack] | None = None

    @property
    def haystack_name(self) -> str:
        """config.haystack, which __init__ has filled in with the protocol's default where it was None."""
        haystack = self.config.haystack
        assert haystack is not None  # set by __init__
        return haystack

    @property
    def answer_budget(self) -> int:
        """config.answer_budget, which __init__ has filled in with the protocol's default where it was None."""
        budget = self.config.answer_budget
        assert budget is not None  # set by __init__
        return budget

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the prompts (the grid itself may grow across resumes)."""
        c = self.config
        # the answers are the references every score is computed against, so they belong here too
        return {
            "name": self.name,
            "protocol": c.protocol,
            "haystack": resolve_haystack(self.haystack_name),
            "template": c.template,
            "chat": c.chat,
            "answer_budget": c.answer_budget,
            "needles": c.needles,
            "question": c.question,
            "answers": c.answers,
            "seed": c.seed,
        }

    def describe(self) -> str:
        """Report header: the protocol and the haystack."""
        c = self.config
        if c.protocol == "gkamradt":
            proto = (
                "Protocol: gkamradt (LLMTest_NeedleInAHaystack: haystack + needle = length - 200 tokens, the "
                "needle after a '.', system/context/question as separate messages). Scored by keyword recall; "
                "with a judge model, `judge` is gkamradt's 1-10 rating divided by 10."
            )
        else:
            proto = (
                "Protocol: chatqa2 (longkit's NIAH: prompt + answer budget = length, needle at a sentence end, "
                f"template '{c.template}'); not gkamradt's protocol (use --protocol gkamradt to compare with "
                "published heatmaps)."
            )
        # ChatQA 2 and gkamradt both hide the needle in Paul Graham's essays
        return proto + " " + describe_haystack(self.haystack_name, official=PAUL_GRAHAM)

    def plan(self) -> list[dict[str, Any]]:
        """One spec per (length, depth)."""
        return [
            {"id": f"L{length}-D{_fmt(depth)}", "length": length, "depth": depth}
            for length in self.config.lengths
            for depth in self.config.depths
        ]

    def haystack(self, tokenizer: TextTokenizer) -> Haystack:
        """The tokenised haystack (cached per tokenizer)."""
        if self._hay is None or self._hay[0] != id(tokenizer):
            text = load_haystack(self.haystack_name, min_chars=8 * max(self.config.lengths))
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
        if c.protocol == "gkamradt":
            return self._build_gkamradt(spec, ns, tokenizer, max_context, chat)
        user, meta = insert_needles(
            self.haystack(tokenizer), tokenizer, ns, spec["length"], spec["depth"], c.template, self.answer_budget, chat
        )
        meta["question"] = ns.question  # for the LLM judge and the report
        kwargs: dict[str, Any] = {"messages": [{"role": "user", "content": user}]} if chat else {"prompt": user}
        return Sample(id=spec["id"], references=ns.answers, meta=meta, max_new_tokens=self.answer_budget, **kwargs)

    def _build_gkamradt(
        self, spec: dict[str, Any], ns: NeedleSpec, tokenizer: TextTokenizer, max_context: int, chat: bool
    ) -> Sample:
        needle = ns.needles[0] if ns.needles[0].startswith("\n") else "\n" + ns.needles[0] + "\n"
        context, meta = gkamradt_context(
            self.haystack(tokenizer), tokenizer, needle, int(spec["length"]), float(spec["depth"])
        )
        messages = gkamradt_messages(context, ns.question)
        if chat:
            try:
                rendered = tokenizer.render_messages(messages)
            except Exception as exc:  # jinja raises on templates without a system role or two user turns
                raise ConfigError(
                    f"--protocol gkamradt: the model's chat template rejects gkamradt's three messages "
                    f"(system, context, question): {exc}"
                ) from None
        else:
            rendered = "\n\n".join(m["content"] for m in messages)
        prompt_tokens = tokenizer.count(rendered)
        # gkamradt asks for up to 300 tokens and leaves the window to the provider; longkit never cuts the haystack
        # for the answer, so the budget shrinks where the window is full
        budget = max(1, min(self.answer_budget, max_context - prompt_tokens))
        meta.update(
            {
                "question": ns.question,
                "actual_length": prompt_tokens + budget,
                "answer_budget": budget,
                "protocol": "gkamradt",
            }
        )
        kwargs: dict[str, Any] = {"messages": messages} if chat else {"prompt": rendered}
        # the judge grades against the needle itself, as gkamradt's evaluator does (true_answer = needle)
        return Sample(id=spec["id"], references=[needle], meta=meta, max_new_tokens=budget, **kwargs)

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """Keyword recall (primary) and `contains_all`: every answer occurs in the prediction (SQuAD-normalised).

        `contains_all` was called `exact` before; it is a containment test, not an exact match (results that
        still carry the old key are read under the new one, see runner.RENAMED_SCORES)."""
        answers = list(self.config.answers) if self.config.protocol == "gkamradt" else sample.references
        recall = keyword_recall(prediction, answers)
        norm = normalize_answer(prediction)
        contained = float(all(normalize_answer(a) in norm for a in answers))
        return {"score": recall, "keyword_recall": recall, "contains_all": contained}


class PasskeyTask(NIAHTask):
    """ChatQA 2's passkey retrieval: a random key hidden in the haystack."""

    name = "passkey"

    def __init__(self, config: NIAHConfig, key_digits: int = 5):
        if config.protocol != "chatqa2":
            raise ConfigError("--protocol: passkey runs ChatQA 2's protocol only (gkamradt's is a NIAH protocol)")
        defaults = NIAHConfig(lengths=[], depths=[])
        check_passkey_options(
            {k: getattr(config, k) for k in PASSKEY_FIXED if getattr(config, k) != getattr(defaults, k)}
        )
        super().__init__(replace(config, needles=[PASSKEY_NEEDLE], question=PASSKEY_QUESTION))
        self.key_digits = key_digits

    def fingerprint(self) -> dict[str, Any]:
        """Passkey settings."""
        return {**super().fingerprint(), "key_digits": self.key_digits}

    def describe(self) -> str:
        """Report header: the haystack (passkey retrieval hides its key in RULER's noise sentences)."""
        return describe_haystack(self.haystack_name, official="noise")

    def needle_spec(self, spec: dict[str, Any]) -> NeedleSpec:
        """A key drawn from a generator seeded by (seed, sample id), so reruns see the same key."""
        rng = random.Random(f"{self.config.seed}:{spec['id']}")
        key = str(rng.randint(10 ** (self.key_digits - 1), 10**self.key_digits - 1))
        return NeedleSpec([PASSKEY_NEEDLE.format(key=key)], PASSKEY_QUESTION, [key])

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """1 if the first number in the answer is the key (InfiniteBench's passkey parsing: ASCII digits only)."""
        from longkit.eval.metrics import first_int

        hit = float(first_int(prediction) == sample.references[0])
        return {"score": hit, "exact": hit, "contains": float(sample.references[0] in prediction)}


# Passkey's needle, question and answer come from its template and the drawn key; nobody may set them.
PASSKEY_FIXED = ("needles", "question", "answers")


def check_passkey_options(options: dict[str, Any]) -> None:
    """Refuse a needle, question or answer given to passkey: its template fixes them (they would be ignored)."""
    given = [k for k in PASSKEY_FIXED if k in options]
    if given:
        raise ConfigError(
            f"{given[0]}: passkey's needle, question and answer are fixed by its template "
            f"('{PASSKEY_NEEDLE}', '{PASSKEY_QUESTION}', the key); use `eval niah` to hide your own "
            "needle"
        )


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# --- declarations (eval.tasks.spec): what the registry, `eval list` and the suite know of these tasks ---------


class NeedleOptions(BaseModel):
    """The `options:` a suite may give niah and passkey (the grid's lengths, seed and chat come from the suite)."""

    model_config = ConfigDict(extra="forbid")

    depths: list[float] | None = None
    haystack: str | None = None
    template: str | None = None
    answer_budget: int | None = None
    needles: list[str] | None = None
    question: str | None = None
    answers: list[str] | None = None
    protocol: str | None = None


class PasskeyOptions(NeedleOptions):
    """niah's options, without the needle, question and answers that passkey's template fixes."""

    @model_validator(mode="before")
    @classmethod
    def _fixed_by_template(cls, data: Any) -> Any:
        if isinstance(data, dict):
            check_passkey_options(data)
        return data


def _needle_task(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    opts = {k: v for k, v in settings.get("options", {}).items() if v is not None}
    depths = [float(d) for d in opts.pop("depths", [0, 25, 50, 75, 100])]
    cfg = NIAHConfig(
        lengths=list(settings["lengths"]),
        depths=depths,
        seed=int(settings.get("seed", 0)),
        chat=settings.get("chat"),
        **opts,
    )
    return PasskeyTask(cfg) if spec.name == "passkey" else NIAHTask(cfg)


def declare() -> list[TaskSpec]:
    """niah (ChatQA 2's needle test; gkamradt's protocol on request) and passkey."""
    gkamradt = OfficialCode(
        "gkamradt/LLMTest_NeedleInAHaystack",
        "needlehaystack/llm_needle_haystack_tester.py",
        "2b3fb9a60decdf17dce845e5b65e4e725af31fbd",
    )
    infinitebench = OfficialCode(
        "OpenBMB/InfiniteBench", "data/construct_synthetic_dataset.py", "220fd2e0dad86a9e5839ab2793ceea5b20f52d61"
    )
    return [
        TaskSpec(
            "niah",
            "ChatQA 2",
            "Needle-in-a-Haystack over lengths x depths",
            Metric("keyword recall"),
            True,
            _needle_task,
            gkamradt,
            options=NeedleOptions,
            answer_budget=32,
        ),
        TaskSpec(
            "passkey",
            "ChatQA 2",
            "passkey retrieval over lengths x depths",
            Metric("first integer = key"),
            True,
            _needle_task,
            infinitebench,
            options=PasskeyOptions,
            answer_budget=32,
        ),
    ]
