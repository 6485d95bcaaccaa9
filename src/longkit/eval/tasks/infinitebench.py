"""InfiniteBench (Zhang et al., 2024): the retrieval tasks generated locally following the benchmark's
construction, and En.QA / En.MC / En.Sum / En.Dia read from the official JSONL files.

Official files (huggingface.co/datasets/xinrongzhang2022/InfiniteBench) hold one JSON object per line
with `id`, `context`, `input`, `answer` (a list) and `options` (a list, En.MC only). Prompts are the
benchmark's GPT-4 templates (src/prompt.py), answer budgets DATA_NAME_TO_MAX_NEW_TOKENS
(src/eval_utils.py), scores get_score_one_* (src/compute_scores.py). Prompts longer than the
window are truncated in the middle, as the benchmark does.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError
from longkit.eval.haystack import NOISE_SENTENCE
from longkit.eval.metrics import choice_match, dialogue_name_match, first_int, kv_retrieval_match, rouge_lsum, token_f1
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.files import FileTask, file_kwargs, official_file, str_list
from longkit.eval.tasks.ruler import fit_units
from longkit.eval.tasks.spec import DataSource, Metric, OfficialCode, TaskSpec

TEMPLATES = {
    "passkey": (
        "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
        "I will quiz you about the important information there.\n\n{context}\n\n{input}"
    ),
    "number_string": (
        "There is an important info hidden inside a lot of irrelevant text. Find it. "
        "I will quiz you about the important information there.\n\n{context}\n\n{input}"
    ),
    "kv_retrieval": "Extract the value corresponding to the specified key in the JSON object below.\n\n{context}\n\n{input}",
    "longbook_qa_eng": "Read the book below and answer a question.\n\n{context}\n\nQuestion: {question}\n\nBe very concise.",
    "longbook_choice_eng": (
        "Read the book and answer the question.\n\n{context}\n\nQuestion: {question}\n\nOnly one of the "
        "following options is correct, tell me the answer using one single letter (A, B, C, or D). "
        "Don't say anything else.\nA. {OPTION_A}\nB. {OPTION_B}\nC. {OPTION_C}\nD. {OPTION_D}"
    ),
    "longbook_sum_eng": "Summarize the following book.\n\n{context}",
    "longdialogue_qa_eng": (
        "Below is a dialogue script where one random occurrence of a character name is replaced with "
        '"$$MASK$$", and you should try to guess who that character is.\n\nThe dialogue:\n\n---\n\n'
        '{context}\n\n---\n\nEnd of dialogue.\n\nWhich character is most likely "$$MASK$$"? Just say '
        "the name used by the scriptwriter (before the colon marks) of one single character and "
        "nothing else."
    ),
}
# The official eval scripts cut every prompt in the middle to TRUNCATE_LEN = 128 * 1024 tokens (OpenBMB/InfiniteBench
# src/eval_yarn_mistral.py@220fd2e0dad86a9e5839ab2793ceea5b20f52d61), with no room kept for the answer.
TRUNCATE_LEN = 128 * 1024
MAX_NEW_TOKENS = {
    "passkey": 6,
    "number_string": 12,
    "kv_retrieval": 50,
    "longbook_sum_eng": 1200,
    "longbook_choice_eng": 40,
    "longbook_qa_eng": 40,
    "longdialogue_qa_eng": 40,
}

PASSKEY_NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
NUMBER_NEEDLE = "The sequence of digits is {key}. Remember it. {key} is the sequence of digits."
PASSKEY_INPUT = "What is the pass key?"
NUMBER_INPUT = "What is the sequence of digits?"
# The official generator's question (data/construct_synthetic_dataset.py, build_kv_retrieval, OpenBMB/InfiniteBench
# @220fd2e0dad86a9e5839ab2793ceea5b20f52d61) starts with a newline after the JSON object.
KV_INPUT = '\nKey: "{key}"\nThe value associated with the specified key is: '
# The generator's noise line: RULER's noise sentence ending in a newline; the needle line ends in one too.
NOISE_LINE = NOISE_SENTENCE + "\n"


def passkey_key(rng: random.Random) -> str:
    """build_passkey's key: five independent digits 0-9, so a key may start with 0."""
    return "".join(str(rng.randint(0, 9)) for _ in range(5))


def number_string_key(rng: random.Random) -> str:
    """build_number_string's key: five digits 0-9, then five times a digit at a random position is doubled
    in place (keys.insert(pos, keys[pos]), pos in [0, 4 + k]), so the ten digits hold repeated neighbours."""
    keys = [str(rng.randint(0, 9)) for _ in range(5)]
    for k in range(5):
        pos = rng.randint(0, 5 + k - 1)
        keys.insert(pos, keys[pos])
    return "".join(keys)


@dataclass
class RetrievalConfig:
    """Lengths (tokens), samples per length (needle depths spread evenly) and seed."""

    lengths: list[int]
    num_samples: int = 5
    seed: int = 42
    chat: bool | None = None


class InfiniteRetrievalTask(Task):
    """Retrieve.PassKey / Retrieve.Number / Retrieve.KV built like InfiniteBench's generator at any length."""

    group_by = ("length", "depth")

    def __init__(self, kind: str, config: RetrievalConfig):
        if kind not in ("passkey", "number_string", "kv_retrieval"):
            raise ConfigError(f"unknown InfiniteBench retrieval task '{kind}'")
        self.kind = kind
        self.name = {"passkey": "Retrieve.PassKey", "number_string": "number_string", "kv_retrieval": "kv_retrieval"}[
            kind
        ]
        self.config = config
        self.max_new_tokens = MAX_NEW_TOKENS[kind]

    def fingerprint(self) -> dict[str, Any]:
        """Generator settings."""
        return {"name": self.name, "seed": self.config.seed, "chat": self.config.chat}

    def plan(self) -> list[dict[str, Any]]:
        """num_samples per length, needle depths evenly spread from 0% to 100%."""
        n = self.config.num_samples
        return [
            {
                "id": f"L{length}-{i}",
                "length": length,
                "index": i,
                "depth": round(100.0 * i / (n - 1), 1) if n > 1 else 50.0,
            }
            for length in self.config.lengths
            for i in range(n)
        ]

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """Grow the haystack (noise sentences or JSON pairs) to the length by binary search."""
        length, depth = int(spec["length"]), float(spec["depth"])
        rng = random.Random(f"{self.config.seed}:{self.kind}:{length}:{spec['index']}")
        chat = tokenizer.has_chat_template if self.config.chat is None else self.config.chat
        template = TEMPLATES[self.kind]
        if self.kind == "kv_retrieval":
            pair_rng_seed = rng.random()
            target_key, target_value = _uuid(rng), _uuid(rng)
            question = KV_INPUT.format(key=target_key)

            def context_of(n: int) -> str:
                prng = random.Random(pair_rng_seed)
                pairs = [(_uuid(prng), _uuid(prng)) for _ in range(n)]
                at = round(depth / 100 * n)
                pairs.insert(at, (target_key, target_value))
                return "JSON data:\n" + json.dumps(dict(pairs), indent=None)

            answer = target_value
        else:
            # build_passkey / build_number_string (construct_synthetic_dataset.py @220fd2e0): the context is
            # noise lines, the needle line, noise lines ("noise * j + ans + noise * (num_noise - j)")
            answer = passkey_key(rng) if self.kind == "passkey" else number_string_key(rng)
            needle = (PASSKEY_NEEDLE if self.kind == "passkey" else NUMBER_NEEDLE).format(key=answer) + "\n"
            question = PASSKEY_INPUT if self.kind == "passkey" else NUMBER_INPUT

            def context_of(n: int) -> str:
                at = round(depth / 100 * n)
                return NOISE_LINE * at + needle + NOISE_LINE * (n - at)

        def render(n: int) -> tuple[str, str, None]:
            user = template.format(context=context_of(n), input=question)
            return (tokenizer.render_messages([{"role": "user", "content": user}]) if chat else user), user, None

        per_unit = 40 if self.kind == "kv_retrieval" else 20
        n, (full, user, _) = fit_units(
            render, tokenizer, length - self.max_new_tokens, start=max(1, length // per_unit // 2), lo=0
        )
        meta = {
            "length": length,
            "depth": depth,
            "actual_length": tokenizer.count(full) + self.max_new_tokens,
            "units": n,
        }
        kwargs: dict[str, Any] = {"messages": [{"role": "user", "content": user}]} if chat else {"prompt": user}
        return Sample(id=spec["id"], references=[answer], meta=meta, max_new_tokens=self.max_new_tokens, **kwargs)

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """First integer equals the key (passkey, number_string); value among the words (kv_retrieval)."""
        if self.kind == "kv_retrieval":
            return {"score": kv_retrieval_match(prediction, sample.references[0])}
        return {"score": float(first_int(prediction) == sample.references[0])}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class InfiniteFileTask(FileTask):
    """En.QA, En.MC, En.Sum and En.Dia from the official JSONL files."""

    required = ("id", "context", "input", "answer")
    FILES = {
        "En.QA": "longbook_qa_eng",
        "En.MC": "longbook_choice_eng",
        "En.Sum": "longbook_sum_eng",
        "En.Dia": "longdialogue_qa_eng",
    }

    def __init__(self, name: str, path: Any, **kwargs: Any):
        if name not in self.FILES:
            raise ConfigError(f"unknown InfiniteBench task '{name}' (known: {', '.join(self.FILES)})")
        super().__init__(path, **kwargs)
        self.name = name
        self.data_name = self.FILES[name]
        self.max_new_tokens = MAX_NEW_TOKENS[self.data_name]

    def check(self, row: dict[str, Any], lineno: int) -> None:
        """En.MC needs four options and an answer among them."""
        if self.name == "En.MC":
            opts = row.get("options")
            if not isinstance(opts, list) or len(opts) != 4:
                raise self.bad(lineno, "options", "En.MC needs a list of 4 options")
            if not any(a in opts or a in "ABCD" for a in str_list(row["answer"])):
                raise self.bad(lineno, "answer", "not one of the options")

    def user_text(self, row: dict[str, Any]) -> str:
        """The GPT-4 template of the task, the question taken from 'input'."""
        fields: dict[str, Any] = {"context": row["context"], "question": row["input"], "input": row["input"]}
        if self.name == "En.MC":
            fields.update({f"OPTION_{c}": o for c, o in zip("ABCD", row["options"])})
        return TEMPLATES[self.data_name].format(**fields)

    def references(self, row: dict[str, Any]) -> list[str]:
        """Answers; for En.MC the option text followed by its letter (the benchmark's get_answer)."""
        answers = str_list(row["answer"])
        if self.name == "En.MC":
            if len(answers) == 2 and answers[1] in ("A", "B", "C", "D"):
                return answers
            return [answers[0], "ABCD"[row["options"].index(answers[0])]]
        return answers

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """QA F1 (En.QA), choice parsing (En.MC), ROUGE-Lsum (En.Sum), name match (En.Dia)."""
        if self.name == "En.QA":
            return {"score": token_f1(prediction, sample.references)}
        if self.name == "En.MC":
            return {"score": choice_match(prediction, sample.references)}
        if self.name == "En.Sum":
            return {"score": rouge_lsum(prediction, sample.references)}
        return {"score": dialogue_name_match(prediction, sample.references)}


# --- declarations (eval.tasks.spec) ------------------------------------------------------------------------------

REPO = "xinrongzhang2022/InfiniteBench"
_CODE = OfficialCode("OpenBMB/InfiniteBench", "src/eval_utils.py", "220fd2e0dad86a9e5839ab2793ceea5b20f52d61")
_GENERATOR = OfficialCode(
    "OpenBMB/InfiniteBench", "data/construct_synthetic_dataset.py", "220fd2e0dad86a9e5839ab2793ceea5b20f52d61"
)


def _retrieval_task(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    config = RetrievalConfig(
        lengths=list(settings["lengths"]),
        num_samples=int(settings.get("samples", 5)),
        seed=int(settings.get("seed", 42)),
        chat=settings.get("chat"),
    )
    return InfiniteRetrievalTask(spec.extra["kind"], config)


def _file_task(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    path = official_file(spec, settings, [f"{InfiniteFileTask.FILES[spec.name]}.jsonl"])
    return InfiniteFileTask(spec.name, path, **file_kwargs(settings, TRUNCATE_LEN))


def declare() -> list[TaskSpec]:
    """The three retrieval tasks (generated) and the four English book tasks (official files)."""
    retrieval = [
        ("Retrieve.PassKey", "passkey", "passkey in noise (generated)", "first integer", ()),
        (
            "number_string",
            "number_string",
            "10-digit number in noise (Retrieve.Number, generated)",
            "first integer",
            ("Retrieve.Number",),
        ),
        (
            "kv_retrieval",
            "kv_retrieval",
            "UUID key-value lookup in JSON (Retrieve.KV, generated)",
            "value in words",
            ("Retrieve.KV",),
        ),
    ]
    specs = [
        TaskSpec(
            name,
            "InfiniteBench",
            desc,
            Metric(metric),
            True,
            _retrieval_task,
            _GENERATOR,
            answer_budget=MAX_NEW_TOKENS[kind],
            aliases=aliases,
            extra={"kind": kind},
        )
        for name, kind, desc, metric, aliases in retrieval
    ]
    books = [
        ("En.QA", "free-form QA over novels", "token F1"),
        ("En.MC", "multiple choice over novels", "choice accuracy"),
        ("En.Sum", "novel summarisation", "ROUGE-Lsum"),
        ("En.Dia", "masked speaker in scripts", "name accuracy"),
    ]
    for name, desc, metric in books:
        stem = InfiniteFileTask.FILES[name]
        specs.append(
            TaskSpec(
                name,
                "InfiniteBench",
                desc,
                Metric(metric),
                False,
                _file_task,
                _CODE,
                data=DataSource(REPO, f"{stem}.jsonl", setting="infinitebench"),
                answer_budget=MAX_NEW_TOKENS[stem],
                aliases=(stem,),
            )
        )
    return specs
