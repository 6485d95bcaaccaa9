"""HELMET long-document QA (Yen et al., ICLR 2025, arXiv:2410.02694): InfiniteBench's En.QA and En.MC as HELMET
formats them, at the input lengths HELMET runs (8K-128K), built and scored as princeton-nlp/HELMET builds and scores
them. (HELMET's other categories live in helmet.py and helmet_icl.py.)

Official code (princeton-nlp/HELMET at 4526dfbdc512bd9ff721da336bff4e3e75ecfd27):
- data.py `load_infbench`: the data (`xinrongzhang2022/infinitebench`, splits longbook_qa_eng and
  longbook_choice_eng), user_template and system_template ("Answer:"), prompt_template = user_template + "\\n\\n" +
  system_template, MC options as "A. ..\\nB. ..\\nC. ..\\nD. .." and the answer as [letter, "letter. option"], the
  demonstrations (`shots` rows other than the row itself, `filter(id != id).shuffle(seed).select(range(shots))`,
  formatted "[story text]\\nQuestion: ..\\n[Options:\\n..\\n]Answer: {answer[0]}" and wrapped in "For example:\\n\\n"
  ... "\\n\\nNow, read the following story:\\n\\n"), `truncate_llama2` (a context over max_length tokens, max_length
  the number in the dataset name, keeps its first max_length - len(tokens(postfix)) tokens and gets the postfix
  " ... [the rest of the text is omitted]"), the test draw `shuffle(seed).select(range(max_test_samples))`, and the
  post-processing: default_post_process (QA: best of raw and parse_output(output) for each metric) and
  choice_post_process (MC: exact_match of raw or parsed, or the "letter. option" answer found in the output).
- utils.py: normalize_answer, drqa_exact_match_score, parse_output ("Answer:"), calculate_metrics (rouge_score's
  rougeL with use_stemmer=True, best over the answers).
- configs/longqa.yaml and longqa_short.yaml: the dataset names infbench_{qa,choice}_eng_<L - 210> for input length
  L, generation_max_length 10 for both, shots 2, use_chat_template true, max_test_samples 100, stop_new_line false;
  scripts/collect_results.py: infbench_qa is scored by rougeL_f1, infbench_choice by exact_match; the category
  "LongQA" averages them with narrativeqa.

Data, fetched by name: `xinrongzhang2022/InfiniteBench` `longbook_qa_eng.jsonl` / `longbook_choice_eng.jsonl` (rows
{id, context, input, answer: [..], options: [..]}); a local copy is `data.helmet_longqa` (or the task's `path`), a
directory holding those files.

Differences, deliberately: the document is truncated with the model's own tokenizer (HELMET uses Llama-2's, so that
every model reads the same text) and its BOS is counted as one token as Llama-2's is; filter_length's sanity check
(context >= 65536 Llama-2 tokens, which HELMET notes every row passes) is not applied; a prompt still over the
model's window loses the tail of its context (HELMET's tokenize() at input_max_length - generation_max_length);
`chat: false` sends prompt_template and prepends "Answer:" to the output before scoring, as eval.py does. Not here:
NarrativeQA (HELMET scores it with a GPT-4 judge, and its demonstrations are drawn without a seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.metrics import normalize_answer  # SQuAD normalisation, as HELMET utils.py normalize_answer
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.helmet import parse_output, shuffled
from longkit.eval.tasks.spec import X100, DataSource, Metric, OfficialCode, TaskSpec

_CODE = OfficialCode("princeton-nlp/HELMET", "data.py", "4526dfbdc512bd9ff721da336bff4e3e75ecfd27")
HUB = "xinrongzhang2022/InfiniteBench"

# data.py load_infbench, verbatim
QA_USER = "You are given a story and a question. Answer the question as concisely as you can, using a single phrase if possible.\n\n{demo}{context}\n\nQuestion: {question}"
MC_USER = "You are given a story and a question with multiple choices. Choose the best answer from the options provided. Only one of the following options is correct, output the answer using one single letter (A, B, C, or D). Don't say anything else.\n\n{demo}{context}\n\nQuestion: {question}\nOptions:\n{options}"
SYSTEM = "Answer:"
QA_DEMO = "[story text]\nQuestion: {question}\nAnswer: {answer}"
MC_DEMO = "[story text]\nQuestion: {question}\nOptions:\n{options}\nAnswer: {answer}"
DEMO_WRAP = "For example:\n\n{demo}\n\nNow, read the following story:\n\n"
POSTFIX = " ... [the rest of the text is omitted]"  # truncate_llama2

SEED = 42
SHOTS = 2
MAX_TEST_SAMPLES = 100
LENGTHS = (8192, 16384, 32768, 65536, 131072)
CONTEXT_MARGIN = 210  # configs: infbench_*_eng_<L - 210>


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # qa | choice
    file: str
    budget: int
    metric: str
    description: str


VARIANTS = {
    "infbench_qa_eng": Variant(
        "infbench_qa_eng",
        "qa",
        "longbook_qa_eng.jsonl",
        10,
        "rougeL_f1",
        "InfiniteBench En.QA as HELMET formats it (free-form QA over a novel, 2 demonstrations)",
    ),
    "infbench_choice_eng": Variant(
        "infbench_choice_eng",
        "choice",
        "longbook_choice_eng.jsonl",
        10,
        "exact_match",
        "InfiniteBench En.MC as HELMET formats it (4-way multiple choice over a novel, 2 demonstrations)",
    ),
}


class LongQAOptions(BaseModel):
    """`options:` of the long-QA tasks: load_infbench's seed, shots and max_test_samples."""

    model_config = ConfigDict(extra="forbid")

    seed: int = SEED
    shots: int = Field(SHOTS, ge=0)
    max_test_samples: int | None = Field(MAX_TEST_SAMPLES, ge=1)


# --- load_infbench ---------------------------------------------------------------------------------------------------


def read_rows(path: Path, kind: str) -> list[dict[str, Any]]:
    """The rows of an InfiniteBench file, as process_example leaves them: id, context, question, answer (a list;
    MC: [letter, "letter. option"]) and, for MC, the formatted options."""
    from longkit.io import iter_jsonl

    rows = []
    for lineno, r in iter_jsonl(path, ("id", "context", "input", "answer")):
        at = f"{path}:{lineno}"
        if not isinstance(r, dict):
            raise InputError(f"{at}: expected an object, got {type(r).__name__}")
        for f in ("id", "context", "input", "answer"):
            if f not in r:
                raise InputError(f"{at}: missing field '{f}'")
        for f in ("context", "input"):
            if not isinstance(r[f], str):
                raise InputError(f"{at}: field '{f}': expected a string, got {type(r[f]).__name__}")
        answer = r["answer"] if isinstance(r["answer"], list) else [r["answer"]]
        if not answer or not all(isinstance(a, str) for a in answer):
            raise InputError(f"{at}: field 'answer': expected a non-empty list of strings")
        row: dict[str, Any] = {"id": r["id"], "context": r["context"], "question": r["input"], "answer": answer}
        if kind == "choice":
            opts = r.get("options")
            if not isinstance(opts, list) or len(opts) != 4 or not all(isinstance(o, str) for o in opts):
                raise InputError(f"{at}: field 'options': expected a list of 4 strings")
            if answer[0] not in opts:
                raise InputError(f"{at}: field 'answer': {answer[0]!r} is not one of the options")
            letter = "ABCD"[opts.index(answer[0])]
            row["options"] = "A. {}\nB. {}\nC. {}\nD. {}".format(*opts)
            row["answer"] = [letter, f"{letter}. {answer[0]}"]
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def demo_text(rows: list[dict[str, Any]], row: dict[str, Any], kind: str, shots: int, seed: int) -> str:
    """add_demos: `shots` other rows in datasets' shuffle(seed) order, formatted and wrapped ("" with no shots)."""
    if shots == 0:
        return ""
    others = [r for r in rows if r["id"] != row["id"]]
    if shots > len(others):
        raise InputError(f"{shots} demonstrations asked, but only {len(others)} other rows")
    temp = MC_DEMO if kind == "choice" else QA_DEMO
    demos = [others[i] for i in shuffled(len(others), seed)[:shots]]
    text = "\n\n".join(
        temp.format(question=d["question"], options=d.get("options", ""), answer=d["answer"][0]) for d in demos
    )
    return DEMO_WRAP.format(demo=text)


def select_test(n: int, max_test: int | None, seed: int) -> list[int]:
    """The rows load_infbench keeps, in its order: shuffle(seed).select(range(max_test_samples)), or all in order."""
    if max_test is None:
        return list(range(n))
    return shuffled(n, seed)[: min(n, max_test)]


def truncate_context(context: str, max_length: int, tokenizer: TextTokenizer, bos: int = 1) -> str:
    """truncate_llama2 with `tokenizer`: a context over max_length tokens (its BOS counted) keeps its first
    max_length - len(tokens(POSTFIX)) tokens and gets POSTFIX."""
    if tokenizer.count(context) + bos <= max_length:
        return context
    keep = max_length - (tokenizer.count(POSTFIX) + bos)
    return tokenizer.decode(tokenizer.encode(context)[: max(keep, 0)]) + POSTFIX


# --- utils.py's scoring ------------------------------------------------------------------------------------------------


def _rouge_l_f1(prediction: str, answers: Sequence[str]) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return max(float(scorer.score(target=a, prediction=prediction)["rougeL"].fmeasure) for a in answers)


def _exact(prediction: str, answers: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(a) for a in answers))


def rouge_l_f1(output: str, answers: Sequence[str]) -> float:
    """default_post_process's rougeL_f1: the best of the raw and the parsed output."""
    score = _rouge_l_f1(output, answers)
    parsed = parse_output(output, SYSTEM)
    return max(score, _rouge_l_f1(parsed, answers)) if parsed is not None else score


def choice_exact_match(output: str, answers: Sequence[str]) -> float:
    """choice_post_process's exact_match: the raw or parsed output equals an answer (normalized), or the
    "letter. option" answer occurs in the output (lowercased)."""
    score = _exact(output, answers)
    parsed = parse_output(output, SYSTEM)
    if parsed is not None:
        score = max(score, _exact(parsed, answers))
    if answers[1].lower() in output.lower():
        score = 1.0
    return score


# --- the task ----------------------------------------------------------------------------------------------------------


def data_file(name: str, settings: dict[str, Any]) -> Path:
    """The task's file: in the local copy when one is given, else fetched by name."""
    v = VARIANTS[name]
    given = settings.get("path") or settings.get("data", {}).get("helmet_longqa")
    if given:
        root = Path(given)
        if root.is_file():
            return root
        if not (root / v.file).is_file():
            raise InputError(f"HELMET {name}: {v.file} not found in {root}")
        return root / v.file
    from longkit.eval.fetch import fetch_source

    return fetch_source(name, _source(name))


def _source(name: str) -> DataSource:
    return DataSource(HUB, VARIANTS[name].file, setting="helmet_longqa")


def check_lengths(name: str, settings: dict[str, Any]) -> list[int]:
    out = [int(n) for n in settings.get("lengths") or [LENGTHS[0]]]
    bad = [n for n in out if n <= CONTEXT_MARGIN + VARIANTS[name].budget]
    if bad:
        raise ConfigError(f"{name}: length {bad[0]} leaves no room for the document (HELMET runs 8192-131072)")
    return out


class HelmetLongQATask(Task):
    """One InfiniteBench long-QA task as HELMET runs it, at one or more input lengths."""

    group_by = ("length",)

    def __init__(
        self,
        name: str,
        path: Path,
        lengths: Sequence[int],
        options: LongQAOptions | None = None,
        limit: int | None = None,
        chat: bool | None = None,
    ):
        self.name = name
        self.variant = VARIANTS[name]
        self.path = path
        self.lengths = list(lengths)
        self.options = options or LongQAOptions()
        self.limit = limit
        self.chat = True if chat is None else bool(chat)  # use_chat_template: true in HELMET's longqa configs
        self._rows: list[dict[str, Any]] | None = None
        self._selected: list[int] | None = None

    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = read_rows(self.path, self.variant.kind)
        return self._rows

    def selected(self) -> list[int]:
        if self._selected is None:
            sel = select_test(len(self.rows()), self.options.max_test_samples, self.options.seed)
            self._selected = sel[: self.limit] if self.limit is not None else sel
        return self._selected

    def plan(self) -> list[dict[str, Any]]:
        return [{"id": f"{n}-{i}", "length": n, "row": i} for n in self.lengths for i in self.selected()]

    def example(self, row: int, length: int, tokenizer: TextTokenizer) -> dict[str, Any]:
        """The row with its demonstrations and its context truncated to length - 210 tokens."""
        rows = self.rows()
        r = rows[row]
        demo = demo_text(rows, r, self.variant.kind, self.options.shots, self.options.seed)
        context = truncate_context(r["context"], length - CONTEXT_MARGIN, tokenizer)
        return {**r, "demo": demo, "context": context}

    def user_template(self) -> str:
        return MC_USER if self.variant.kind == "choice" else QA_USER

    def render(self, ex: dict[str, Any]) -> str:
        user = self.user_template().format(**ex)
        return user if self.chat else user + "\n\n" + SYSTEM

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        length = int(spec["length"])
        ex = self.example(int(spec["row"]), length, tokenizer)
        budget = self.variant.budget
        overhead = tokenizer.count(tokenizer.render_messages([{"role": "user", "content": ""}])) if self.chat else 1
        limit = min(length, max_context) - budget - overhead
        text = self.render(ex)
        full = tokenizer.count(text) + overhead
        truncated = ex["context"] != self.rows()[int(spec["row"])]["context"]
        excess = tokenizer.count(text) - limit
        if excess > 0:  # model_utils.tokenize(): the context loses its tail
            ids = tokenizer.encode(ex["context"])
            for _ in range(4):
                ex = {**ex, "context": tokenizer.decode(ids[: max(len(ids) - excess, 0)])}
                text = self.render(ex)
                if tokenizer.count(text) <= limit:
                    break
                excess += 8
            truncated = True
        meta = {"length": length, "input_tokens": full, "truncated_by_task": truncated}
        kwargs: dict[str, Any] = {"messages": [{"role": "user", "content": text}]} if self.chat else {"prompt": text}
        return Sample(id=spec["id"], references=list(ex["answer"]), meta=meta, max_new_tokens=budget, **kwargs)

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        output = prediction if self.chat else SYSTEM + prediction  # eval.py prepends the system template
        if self.variant.kind == "choice":
            return {"score": choice_exact_match(output, sample.references)}
        return {"score": rouge_l_f1(output, sample.references)}

    def fingerprint(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "lengths": self.lengths,
            "chat": self.chat,
            "limit": self.limit,
            **self.options.model_dump(),
        }

    def describe(self) -> str:
        return "" if self.chat else "chat template off (HELMET's longqa configs: use_chat_template true)"


def _factory(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    options = LongQAOptions(**settings.get("options", {}))
    lengths = check_lengths(spec.name, settings)
    path = data_file(spec.name, settings)
    return HelmetLongQATask(spec.name, path, lengths, options, settings.get("samples"), settings.get("chat"))


def declare() -> list[TaskSpec]:
    """InfiniteBench QA and MC as HELMET runs them; HELMET's LongQA category averages them (with NarrativeQA)."""
    return [
        TaskSpec(
            v.name,
            "HELMET",
            v.description,
            Metric(v.metric, **X100),
            False,
            _factory,
            _CODE,
            data=_source(v.name),
            options=LongQAOptions,
            answer_budget=v.budget,
            aliases=(f"helmet_{v.name}",),
            average_group="HELMET LongQA",
        )
        for v in VARIANTS.values()
    ]
