"""HELMET's judged tasks (Yen et al., ICLR 2025, arXiv:2410.02694): NarrativeQA (category LongQA) and the
summarisation category (InfiniteBench En.Sum, Multi-LexSum), built as princeton-nlp/HELMET builds them and scored by
an LLM judge with HELMET's own GPT-4o prompts, sent through any longkit backend (the suite's `judge:` model).

Official code (princeton-nlp/HELMET at 4526dfbdc512bd9ff721da336bff4e3e75ecfd27):
- data.py `load_narrativeqa`: `load_dataset("narrativeqa")` test split, `shuffle(seed)`, kept when the document is
  over 131072 Llama-2 tokens, context = document.text, answers = every answers[].text, 2 demonstrations
  "Question: ..\\nAnswer: {answers[0]}" from the train split drawn by `shuffle()` with no seed (a new draw per row),
  wrapped in "For example:\\n\\n" ... "\\n\\nNow, use the following story to answer the question:\\n\\n", then
  truncate_llama2 and the first max_test_samples rows; prompt_template = user_template + "\\n" + "Answer:".
- data.py `load_infbench` (sum_eng) and `load_multi_lexsum`: the user templates, system template "Summary:",
  prompt_template = user + "\\n\\n" + system; En.Sum demonstrations as load_infbench draws them (seeded, other
  rows) "[story text]\\nSummary: {answer[0].strip()}"; Multi-LexSum: `allenai/multi_lexsum` v20230518 with a
  summary/short, context = "\\n\\n".join(sources), demonstrations "Summary: {summary/short}" from the train split
  drawn with no seed, wrapped "Example summaries:\\n\\n" ... "\\n\\nNow, write a summary of the following legal
  documents.\\n"; the validation split, contexts of >= 65536 Llama-2 tokens, truncated, then shuffle(seed) to
  max_test_samples when there are more.
- utils.py calculate_metrics / parse_output and data.py's post-processing (the best of the raw and the parsed
  output): the judge-free columns rougeL_f1 and exact_match (NarrativeQA), rougeL_f1 and rougeL_recall (summaries).
- configs/longqa*.yaml, summ*.yaml: narrativeqa_<L - 300>, infbench_sum_eng_<L - 1400>, multi_lexsum_<L - 700>;
  generation_max_length 100, 1200 and 400; shots 2; use_chat_template true; max_test_samples 100.
- scripts/eval_gpt4_longqa.py (NarrativeQA): judge_prompt with the question, str(answers) and its own parse_output
  of the output; the sample's score is fluency x correctness; replies without a JSON object are left out of the
  average. scripts/eval_gpt4_summ.py: per sample a fluency, a key-point recall and a sentence precision call
  (the *_book prompts for En.Sum, with the expert summary answer[0]; Multi-LexSum's prompts with summary/long, and
  key points from HELMET's data archive); a sample with any unparseable reply is left out; recall = found / key
  points, precision = supported / sentences, f1 = fluency x harmonic mean. The judge is gpt-4o-2024-05-13 through
  model_utils.OpenAIModel (user turn only; temperature 0.1, top_p 0.9; 4096 new tokens for summaries, 2048 QA).
- scripts/collect_results.py: narrativeqa reports gpt-4-score x 100/3, infbench_sum and multi_lexsum gpt-4-f1 x 100;
  "LongQA" averages narrativeqa with infbench_qa and infbench_choice, "Summ" averages the two summaries.

Data, fetched by name: `deepmind/narrativeqa` (what `narrativeqa` resolves to) `data/test-0000i-of-00008.parquet` and
`data/train-000ii-of-00024.parquet`; `xinrongzhang2022/InfiniteBench` `longbook_sum_eng.jsonl`; `allenai/multi_lexsum`
`releases/v20230518/{dev,train}.json` (JSONL cases: case_id, case_documents, summary/short, summary/long) and
`sources.json` ({doc id: {doc_text}}, 2.2 GB); the key points from `princeton-nlp/HELMET` data.tar.gz
(`data/infbench/longbook_sum_eng_keypoints.jsonl` {id, keypoints}, `data/multi_lexsum/multi_lexsum_val.jsonl`
{id, summary/short_keypoints}). A local copy (`data.helmet_judged`, or the task's `path`) is a directory holding the
same relative paths (the key points without the leading `data/`). The shard names and the archive members' fields
follow the Hub listing and the official code; the files themselves were not downloaded to check them.

Differences, deliberately: the judge is whatever model the suite names (HELMET: GPT-4o) and decodes greedily; the
demonstrations HELMET draws without a seed are drawn per row from numpy's default_rng([seed, row]); documents are
measured and truncated with the model's own tokenizer (BOS counted once, as Llama-2's); a prompt still over the
model's window loses the tail of its context; a judge reply whose JSON lacks a field or has a non-number is left
out like an unparseable one (the official scripts stop with an error); `chat: false` prepends the system template
to the output, as eval.py does. Without a judge NarrativeQA's `score` is rougeL_f1 (its setup line says so) and the
summaries refuse to run. ALCE citation lives in helmet_alce.py (its citation recall / precision ask the judge
TRUE's NLI input).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from longkit.backends.base import Backend, GenerationRequest, TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.tasks import helmet_judge_prompts as P
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.helmet import parse_output, shuffled, tar_member
from longkit.eval.tasks.helmet_longqa import _exact, _rouge_l_f1, truncate_context
from longkit.eval.tasks.spec import X100, DataSource, Metric, OfficialCode, TaskSpec

COMMIT = "4526dfbdc512bd9ff721da336bff4e3e75ecfd27"
SEED = 42
SHOTS = 2
MAX_TEST_SAMPLES = 100
JUDGE_MODEL = "gpt-4o-2024-05-13"  # the model HELMET's scripts judge with

# data.py, verbatim
NQA_USER = "You are given a story, which can be either a novel or a movie script, and a question. Answer the question as concisely as you can, using a single phrase if possible.\n\n{demo}{context}\n\nQuestion: {question}"
NQA_DEMO = "Question: {question}\nAnswer: {answer}"
NQA_WRAP = "For example:\n\n{demo}\n\nNow, use the following story to answer the question:\n\n"
SUM_USER = "You are given a book and you are tasked to summarize it. Write a summary of about 1000 to 1200 words. Only write about the plot and characters of the story. Do not discuss the themes or background of the book. Do not provide any analysis or commentary.\n\n{demo}{context}\n\nNow summarize the book."
SUM_DEMO = "[story text]\nSummary: {answer}"
SUM_WRAP = "For example:\n\n{demo}\n\nNow, read the following story:\n\n"
LEX_USER = "You are given the legal documents in a civil rights lawsuit, and you are tasked to summarize the case. Write a concise summary of one paragraph (200 to 250 words). The summary should contain a short description of the background, the parties involved, and the outcomes of the case.\n\n{demo}Legal documents:\n{context}\n\nNow please summarize the case."
LEX_DEMO = "Summary: {answer}"
LEX_WRAP = "Example summaries:\n\n{demo}\n\nNow, write a summary of the following legal documents.\n"

NQA_HUB, SUM_HUB, LEX_HUB, HELMET_HUB = (
    "deepmind/narrativeqa",
    "xinrongzhang2022/InfiniteBench",
    "allenai/multi_lexsum",
    "princeton-nlp/HELMET",
)
NQA_TEST = [f"data/test-{i:05d}-of-00008.parquet" for i in range(8)]
NQA_TRAIN = [f"data/train-{i:05d}-of-00024.parquet" for i in range(24)]
LEX_DIR = "releases/v20230518"


@dataclass(frozen=True)
class Variant:
    name: str
    user: str
    system: str
    joiner: str  # between user and system template without the chat template
    budget: int  # generation_max_length
    margin: int  # input_max_length - the dataset name's number
    min_tokens: int  # the filter on the untruncated context (exclusive for NarrativeQA)
    metric: str
    group: str
    description: str


VARIANTS = {
    "narrativeqa": Variant(
        "narrativeqa",
        NQA_USER,
        "Answer:",
        "\n",
        100,
        300,
        131072,
        "gpt-4-score (judged; else rougeL_f1)",
        "HELMET LongQA",
        "NarrativeQA as HELMET runs it (a novel or script over 128K tokens, truncated; judged with HELMET's prompt)",
    ),
    "infbench_sum_eng": Variant(
        "infbench_sum_eng",
        SUM_USER,
        "Summary:",
        "\n\n",
        1200,
        1400,
        0,
        "gpt-4-f1 (judged)",
        "HELMET Summ",
        "InfiniteBench En.Sum as HELMET runs it (book summary, judged: fluency x key-point F1)",
    ),
    "multi_lexsum": Variant(
        "multi_lexsum",
        LEX_USER,
        "Summary:",
        "\n\n",
        400,
        700,
        65536,
        "gpt-4-f1 (judged)",
        "HELMET Summ",
        "Multi-LexSum as HELMET runs it (civil-rights case summary, judged: fluency x key-point F1)",
    ),
}
LENGTHS = (8192, 16384, 32768, 65536, 131072)


class JudgedOptions(BaseModel):
    """`options:` of the judged tasks: seed, shots, max_test_samples and the judge's answer budget."""

    model_config = ConfigDict(extra="forbid")

    seed: int = SEED
    shots: int = Field(SHOTS, ge=0)
    max_test_samples: int | None = Field(MAX_TEST_SAMPLES, ge=1)
    judge_max_new_tokens: int | None = Field(None, ge=1)  # default: HELMET's (4096 summaries, 2048 NarrativeQA)


# --- the judge: HELMET's parsing and combination --------------------------------------------------------------------


def longqa_parse_output(output: str, prefix: str = "Answer:") -> str | None:
    """eval_gpt4_longqa.py's parse_output: newlines become spaces first, then utils.py's parse_output."""
    return parse_output(output.replace("\n", " "), prefix)


def longqa_parse_json(text: str) -> dict[str, Any] | None:
    """eval_gpt4_longqa.py's parse_json: the last {...} (non-greedy) as JSON, else None."""
    matches = re.findall(r"\{.*?\}", text, re.DOTALL)
    if not matches:
        return None
    try:
        value = json.loads(matches[-1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def summ_parse_json(text: str) -> dict[str, Any] | None:
    """eval_gpt4_summ.py's parse_json: the last {...}; if that is no JSON, the last ```json fenced block."""
    matches = re.findall(r"\{.*?\}", text, re.DOTALL)
    if not matches:
        return None
    for candidate in (matches[-1], *re.findall(r"(?:```json)(.+)(?:```)", text, re.DOTALL)[-1:]):
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        return value if isinstance(value, dict) else None
    return None


def _numbers(reply: dict[str, Any] | None, *keys: str) -> list[float] | None:
    """The reply's values for keys, or None when one is missing or no number (the official scripts would crash)."""
    if reply is None:
        return None
    values = [reply.get(k) for k in keys]
    if not all(isinstance(v, (int, float)) for v in values):
        return None
    return [float(v) for v in values]  # type: ignore[arg-type]


def longqa_score(reply: str) -> dict[str, float]:
    """One NarrativeQA judgement: fluency x correctness (0-3), judged_ok 0 when the reply has no usable JSON."""
    got = _numbers(longqa_parse_json(reply), "fluency", "correctness")
    if got is None:
        return {"judged_ok": 0.0}
    fluency, correctness = got
    return {
        "judged_ok": 1.0,
        "judge_fluency": fluency,
        "judge_correctness": correctness,
        "judged": fluency * correctness,
    }


def summ_f1(fluency: float, found: float, keypoints: int, supported: float, sentences: float) -> dict[str, float]:
    """eval_gpt4_summ.py's combination: recall over key points, precision over sentences, f1 x fluency."""
    rec = found / keypoints if keypoints > 0 else 0.0
    prec = supported / sentences if sentences > 0 else 0.0
    f1 = fluency * 2 * (rec * prec) / (rec + prec) if rec + prec > 0 else 0.0
    return {"judge_fluency": fluency, "judge_recall": rec, "judge_precision": prec, "judged": f1}


def summ_score(replies: Sequence[str], keypoints: int) -> dict[str, float]:
    """One summary's judgement from its (fluency, recall, precision) replies; judged_ok 0 when one is unusable."""
    f = _numbers(summ_parse_json(replies[0]), "fluency")
    r = _numbers(summ_parse_json(replies[1]), "recall")
    p = _numbers(summ_parse_json(replies[2]), "precision", "sentence_count")
    if f is None or r is None or p is None:
        return {"judged_ok": 0.0}
    return {"judged_ok": 1.0, **summ_f1(f[0], r[0], keypoints, p[0], p[1])}


def longqa_prompt(question: str, answers: Sequence[str], output: str) -> str:
    """The NarrativeQA judge prompt; correct_answers is the answer list as Python prints it, as in the script."""
    return P.LONGQA_JUDGE.format(
        question=question, correct_answers=list(answers), parsed_output=longqa_parse_output(output)
    )


def summ_prompts(book: bool, output: str, keypoints: Sequence[str], expert: str) -> list[str]:
    """The fluency, recall and precision prompts of one summary (the *_book ones for En.Sum)."""
    text = output.strip()
    numbered = "\n".join(f"{i + 1}. {kp}" for i, kp in enumerate(keypoints))
    fp, rp, pp = (
        (P.FLUENCY_PROMPT_BOOK, P.RECALL_PROMPT_BOOK, P.PRECISION_PROMPT_BOOK)
        if book
        else (P.FLUENCY_PROMPT, P.RECALL_PROMPT, P.PRECISION_PROMPT)
    )
    return [
        fp.format(text=text),
        rp.format(keypoints=numbered, summary=text),
        pp.format(expert_summary=expert, summary=text),
    ]


class HelmetJudge:
    """A judge model behind any backend, asked HELMET's prompts as a single user turn (greedy)."""

    def __init__(self, spec: Any, max_new_tokens: int):
        self.spec = spec  # a BackendSpec (the suite's `judge:`), built on first use
        self.max_new_tokens = max_new_tokens
        self._backend: Backend | None = None

    @property
    def label(self) -> str:
        return f"{self.spec.backend}:{self.spec.model or '(served)'}"

    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self.spec.build()
        return self._backend

    def ask(self, prompts: Sequence[str]) -> list[str]:
        reqs = [
            GenerationRequest(messages=[{"role": "user", "content": p}], max_new_tokens=self.max_new_tokens)
            for p in prompts
        ]
        return [c.text for c in self.backend().generate(reqs)]


# --- data -----------------------------------------------------------------------------------------------------------


def _at(path: Path, where: Any) -> str:
    return f"{path}:{where}" if where is not None else str(path)


def _field(row: Any, name: str, kind: type | tuple[type, ...], at: str) -> Any:
    """row[name] checked against the official schema (one-line error naming file and field)."""
    if not isinstance(row, dict):
        raise InputError(f"{at}: expected an object, got {type(row).__name__}")
    if name not in row:
        raise InputError(f"{at}: missing field '{name}'")
    if not isinstance(row[name], kind):
        raise InputError(
            f"{at}: field '{name}': expected {getattr(kind, '__name__', 'a list')}, got {type(row[name]).__name__}"
        )
    return row[name]


def _records(path: Path) -> list[tuple[Any, dict[str, Any]]]:
    """(line or row number, row) of a JSONL, a JSON list (a converted archive member) or a Parquet file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
        return [(f"row {i}", r) for i, r in enumerate(rows)]
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            return [(f"row {i}", r) for i, r in enumerate(json.loads(text))]
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: invalid JSON ({exc.msg})") from None
    from longkit.io import iter_jsonl

    return list(iter_jsonl(path))


def read_narrativeqa(paths: Sequence[Path], with_document: bool) -> list[dict[str, Any]]:
    """NarrativeQA rows as load_narrativeqa maps them: doc id, context, question, answers (all answers' text)."""
    rows = []
    for path in paths:
        for where, r in _records(path):
            at = _at(path, where)
            q = _field(_field(r, "question", dict, at), "text", str, f"{at}: field 'question'")
            answers = _field(r, "answers", list, at)
            texts = [_field(a, "text", str, f"{at}: field 'answers'") for a in answers]
            if not texts:
                raise InputError(f"{at}: field 'answers': expected at least one answer")
            row: dict[str, Any] = {"question": q, "answer": texts}
            if with_document:
                doc = _field(r, "document", dict, at)
                row["doc"] = str(_field(doc, "id", str, f"{at}: field 'document'"))
                row["context"] = _field(doc, "text", str, f"{at}: field 'document'")
            rows.append(row)
    return rows


def read_infbench_sum(path: Path) -> list[dict[str, Any]]:
    """longbook_sum_eng rows: id, context, answer (a list; answer[0] is the expert summary)."""
    rows = []
    for where, r in _records(path):
        at = _at(path, where)
        answer = _field(r, "answer", (list, str), at)
        answer = [answer] if isinstance(answer, str) else answer
        if not answer or not all(isinstance(a, str) for a in answer):
            raise InputError(f"{at}: field 'answer': expected a non-empty list of strings")
        rows.append({"id": _field(r, "id", (int, str), at), "context": _field(r, "context", str, at), "answer": answer})
    return rows


def read_multi_lexsum(cases: Path, sources: Path | None) -> list[dict[str, Any]]:
    """Multi-LexSum cases with a summary/short, as the dataset's loader builds them (sources joined when given)."""
    docs: dict[str, Any] = {}
    if sources is not None:
        try:
            docs = json.loads(sources.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{sources}: invalid JSON ({exc.msg})") from None
        if not isinstance(docs, dict):
            raise InputError(f"{sources}: expected an object of documents by id")
    rows = []
    for where, r in _records(cases):
        at = _at(cases, where)
        short = _field(r, "summary/short", (str, type(None)), at)
        if short is None:  # load_multi_lexsum keeps only cases with a short summary
            continue
        row: dict[str, Any] = {"id": str(_field(r, "case_id", str, at)), "answer": [short]}
        if sources is not None:
            long = _field(r, "summary/long", str, at)
            texts = [
                _field(docs.get(d), "doc_text", str, f"{sources}: document '{d}'")
                for d in _field(r, "case_documents", list, at)
            ]
            row.update(context="\n\n".join(texts), long=long)
        rows.append(row)
    return rows


def read_keypoints(path: Path, field: str, id_field: str) -> dict[str, list[str]]:
    """HELMET's key points by row id (as a string, so En.Sum's int ids match)."""
    out = {}
    for where, r in _records(path):
        at = _at(path, where)
        kps = _field(r, field, list, at)
        if not all(isinstance(k, str) for k in kps):
            raise InputError(f"{at}: field '{field}': expected a list of strings")
        out[str(_field(r, id_field, (int, str), at))] = kps
    return out


def _local(settings: dict[str, Any]) -> Path | None:
    given = settings.get("path") or settings.get("data", {}).get("helmet_judged")
    return Path(given) if given else None


def data_file(name: str, src: DataSource, rel: str, settings: dict[str, Any]) -> Path:
    """One file: under the local copy when one is given, else fetched by name."""
    root = _local(settings)
    if root is not None:
        if not (root / rel).is_file():
            raise InputError(f"HELMET {name}: {rel} not found in {root}")
        return root / rel
    from longkit.eval.fetch import fetch_source

    return fetch_source(name, src)


def keypoints_source(rel: str) -> DataSource:
    member = f"data/{rel}"
    return DataSource(
        HELMET_HUB, "data.tar.gz", member=member + ".json", convert=tar_member(member), setting="helmet_judged"
    )


def _hub(repo: str, file: str) -> DataSource:
    return DataSource(repo, file, setting="helmet_judged")


def primary_source(name: str) -> DataSource:
    first = {"narrativeqa": (NQA_HUB, NQA_TEST[0]), "infbench_sum_eng": (SUM_HUB, "longbook_sum_eng.jsonl")}
    repo, file = first.get(name, (LEX_HUB, f"{LEX_DIR}/dev.json"))
    return _hub(repo, file)


# --- selection and demonstrations -------------------------------------------------------------------------------------


def unseeded_demos(pool: Sequence[str], shots: int, seed: int, row: int) -> list[str]:
    """`shots` of pool for one row: HELMET's seedless shuffle() replaced by default_rng([seed, row])."""
    import numpy as np

    if shots > len(pool):
        raise InputError(f"{shots} demonstrations asked, but the train split has {len(pool)} rows")
    return [pool[int(i)] for i in np.random.default_rng([seed, row]).choice(len(pool), shots, replace=False)]


def other_rows_demos(rows: Sequence[dict[str, Any]], row: dict[str, Any], shots: int, seed: int) -> list[str]:
    """load_infbench's add_demos: other rows in shuffle(seed) order, their first answer stripped."""
    others = [r for r in rows if r["id"] != row["id"]]
    if shots > len(others):
        raise InputError(f"{shots} demonstrations asked, but only {len(others)} other rows")
    return [others[i]["answer"][0].strip() for i in shuffled(len(others), seed)[:shots]]


# --- the task -------------------------------------------------------------------------------------------------------


class HelmetJudgedTask(Task):
    """One of HELMET's judged tasks at one or more input lengths; rows are loaded by a loader function."""

    group_by = ("length",)

    def __init__(
        self,
        name: str,
        load: Callable[[TextTokenizer], list[dict[str, Any]]],
        lengths: Sequence[int],
        options: JudgedOptions | None = None,
        judge: HelmetJudge | None = None,
        limit: int | None = None,
        chat: bool | None = None,
        fingerprint: dict[str, Any] | None = None,
    ):
        self.name = name
        self.variant = VARIANTS[name]
        self.load = load  # the test rows, each with "demo", "context" (untruncated) and "answer"
        self.lengths = list(lengths)
        self.options = options or JudgedOptions()
        self.judge = judge
        self.limit = limit
        self.chat = True if chat is None else bool(chat)  # use_chat_template: true in HELMET's configs
        self._fp = fingerprint or {}
        self._rows: list[dict[str, Any]] | None = None
        self._tokenizer: TextTokenizer | None = None

    def rows(self, tokenizer: TextTokenizer) -> list[dict[str, Any]]:
        if self._rows is None:
            rows = self.load(tokenizer)
            self._rows = rows[: self.limit] if self.limit is not None else rows
        return self._rows

    def plan(self) -> list[dict[str, Any]]:
        # the rows depend on the tokenizer (the length filters), so the plan names positions in the selection
        n = self.options.max_test_samples or 10**9
        n = min(n, self.limit) if self.limit is not None else n
        return [{"id": f"{L}-{i}", "length": L, "row": i} for L in self.lengths for i in range(n)]

    def render(self, ex: dict[str, Any]) -> str:
        user = self.variant.user.format(demo=ex["demo"], context=ex["context"], question=ex.get("question", ""))
        return user if self.chat else user + self.variant.joiner + self.variant.system

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        length, i = int(spec["length"]), int(spec["row"])
        rows = self.rows(tokenizer)
        if i >= len(rows):
            raise InputError(f"{self.name}: only {len(rows)} rows pass HELMET's length filter, not {i + 1}")
        row = rows[i]
        ex = {**row, "context": truncate_context(row["context"], length - self.variant.margin, tokenizer)}
        budget = self.variant.budget
        overhead = tokenizer.count(tokenizer.render_messages([{"role": "user", "content": ""}])) if self.chat else 1
        limit = min(length, max_context) - budget - overhead
        truncated = ex["context"] != row["context"]
        text = self.render(ex)
        full = tokenizer.count(text) + overhead
        excess = tokenizer.count(text) - limit
        if excess > 0:  # model_utils.tokenize(): the context loses its tail
            ids = tokenizer.encode(ex["context"])
            ex["context"] = tokenizer.decode(ids[: max(len(ids) - excess - 8, 0)])
            text, truncated = self.render(ex), True
        meta = {"length": length, "input_tokens": full, "truncated_by_task": truncated, "row": i}
        if "question" in row:
            meta["question"] = row["question"]
        if "keypoints" in row:
            meta["keypoints"] = row["keypoints"]
            meta["expert_summary"] = row["expert"]
        kwargs: dict[str, Any] = {"messages": [{"role": "user", "content": text}]} if self.chat else {"prompt": text}
        return Sample(id=spec["id"], references=list(row["answer"]), meta=meta, max_new_tokens=budget, **kwargs)

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        output = prediction if self.chat else self.variant.system + prediction  # eval.py prepends the system template
        scores = self.free_metrics(output, sample.references)
        if self.judge is None:
            if self.name != "narrativeqa":  # the needs hook refuses this before any generation
                raise ConfigError(f"{self.name}: scored by an LLM judge, and none is configured")
            return {"score": scores["rougeL_f1"], **scores}
        judged = self.judged(output, sample)
        # gpt-4-score is reported x 100/3 (correctness 0-3), gpt-4-f1 x 100: one x100 scale holds both as score
        per = 3.0 if self.name == "narrativeqa" else 1.0
        return {**scores, **judged, "score": judged.get("judged", 0.0) / per}

    def free_metrics(self, output: str, answers: Sequence[str]) -> dict[str, float]:
        """data.py's post-processing columns (the best of the raw and the parsed output)."""
        parsed = parse_output(output, self.variant.system)
        outs = [output] if parsed is None else [output, parsed]
        if self.name == "narrativeqa":
            return {
                "rougeL_f1": max(_rouge_l_f1(o, answers) for o in outs),
                "exact_match": max(_exact(o, answers) for o in outs),
            }
        return {
            "rougeL_f1": max(_rouge_l_f1(o, answers) for o in outs),
            "rougeL_recall": max(_rouge_recall(o, answers) for o in outs),
        }

    def judged(self, output: str, sample: Sample) -> dict[str, float]:
        assert self.judge is not None
        if self.name == "narrativeqa":
            (reply,) = self.judge.ask([longqa_prompt(sample.meta["question"], sample.references, output)])
            return longqa_score(reply)
        kps = sample.meta["keypoints"]
        prompts = summ_prompts(self.name == "infbench_sum_eng", output, kps, sample.meta["expert_summary"])
        return summ_score(self.judge.ask(prompts), len(kps))

    def fingerprint(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lengths": self.lengths,
            "chat": self.chat,
            "limit": self.limit,
            "judge": None
            if self.judge is None
            else {"model": self.judge.label, "max_new_tokens": self.judge.max_new_tokens},
            **self._fp,
            **self.options.model_dump(),
        }

    def describe(self) -> str:
        parts = [] if self.chat else ["chat template off (HELMET's configs: use_chat_template true)"]
        if self.judge is not None:
            parts.append(f"score = judged {self.variant.metric} by {self.judge.label} (HELMET: {JUDGE_MODEL})")
        else:
            parts.append("score = rougeL_f1: no judge configured (HELMET's column is the judged gpt-4-score)")
        return "; ".join(parts)


def _rouge_recall(prediction: str, answers: Sequence[str]) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return max(float(scorer.score(target=a, prediction=prediction)["rougeL"].recall) for a in answers)


# --- loaders: the official selection for each dataset ------------------------------------------------------------------


def _over(tokenizer: TextTokenizer, text: str, n: int, strict: bool) -> bool:
    count = tokenizer.count(text) + 1  # Llama-2's BOS
    return count > n if strict else count >= n


def narrativeqa_loader(
    test: list[Path], train: list[Path], o: JudgedOptions
) -> Callable[[TextTokenizer], list[dict[str, Any]]]:
    def load(tokenizer: TextTokenizer) -> list[dict[str, Any]]:
        rows = read_narrativeqa(test, with_document=True)
        pool = (
            [NQA_DEMO.format(question=r["question"], answer=r["answer"][0]) for r in read_narrativeqa(train, False)]
            if o.shots
            else []
        )
        long_doc: dict[str, bool] = {}  # a document's length is measured once, however many questions it has
        out: list[dict[str, Any]] = []
        for i in shuffled(len(rows), o.seed):
            r = rows[i]
            if r["doc"] not in long_doc:
                long_doc[r["doc"]] = _over(tokenizer, r["context"], VARIANTS["narrativeqa"].min_tokens, strict=True)
            if not long_doc[r["doc"]]:
                continue
            demo = NQA_WRAP.format(demo="\n\n".join(unseeded_demos(pool, o.shots, o.seed, i))) if o.shots else ""
            out.append({**r, "demo": demo})
            if o.max_test_samples is not None and len(out) == o.max_test_samples:
                break
        return out

    return load


def infbench_sum_loader(path: Path, kp_path: Path, o: JudgedOptions) -> Callable[[TextTokenizer], list[dict[str, Any]]]:
    def load(tokenizer: TextTokenizer) -> list[dict[str, Any]]:
        rows = read_infbench_sum(path)
        kps = read_keypoints(kp_path, "keypoints", "id")
        out = []
        for r in rows:
            demos = other_rows_demos(rows, r, o.shots, o.seed) if o.shots else []
            demo = SUM_WRAP.format(demo="\n\n".join(SUM_DEMO.format(answer=d) for d in demos)) if o.shots else ""
            out.append({**r, "demo": demo, "keypoints": _keypoints(kps, r["id"], kp_path), "expert": r["answer"][0]})
        order = shuffled(len(out), o.seed)[: o.max_test_samples] if o.max_test_samples is not None else range(len(out))
        return [out[i] for i in order]

    return load


def multi_lexsum_loader(
    dev: Path, train: Path | None, sources: Path, kp_path: Path, o: JudgedOptions
) -> Callable[[TextTokenizer], list[dict[str, Any]]]:
    def load(tokenizer: TextTokenizer) -> list[dict[str, Any]]:
        rows = [r for r in read_multi_lexsum(dev, sources) if _over(tokenizer, r["context"], 65536, strict=False)]
        pool = [LEX_DEMO.format(answer=r["answer"][0]) for r in read_multi_lexsum(train, None)] if train else []
        kps = read_keypoints(kp_path, "summary/short_keypoints", "id")
        out = []
        for i, r in enumerate(rows):
            demo = LEX_WRAP.format(demo="\n\n".join(unseeded_demos(pool, o.shots, o.seed, i))) if o.shots else ""
            out.append({**r, "demo": demo, "keypoints": _keypoints(kps, r["id"], kp_path), "expert": r["long"]})
        if o.max_test_samples is not None and len(out) > o.max_test_samples:
            out = [out[i] for i in shuffled(len(out), o.seed)[: o.max_test_samples]]
        return out

    return load


def _keypoints(kps: dict[str, list[str]], row_id: Any, path: Path) -> list[str]:
    if str(row_id) not in kps:
        raise InputError(f"{path}: no key points for row id {row_id!r}")
    return kps[str(row_id)]


# --- declaration ----------------------------------------------------------------------------------------------------


def check_lengths(name: str, settings: dict[str, Any]) -> list[int]:
    out = [int(n) for n in settings.get("lengths") or [LENGTHS[0]]]
    v = VARIANTS[name]
    bad = [n for n in out if n <= v.margin + v.budget]
    if bad:
        raise ConfigError(f"{name}: length {bad[0]} leaves no room for the document (HELMET runs 8192-131072)")
    return out


def make_judge(name: str, settings: dict[str, Any], options: JudgedOptions) -> HelmetJudge | None:
    spec = settings.get("judge")
    if spec is None:
        return None
    default = 2048 if name == "narrativeqa" else 4096  # OpenAIModel's default; eval_gpt4_summ.py's 4096
    return HelmetJudge(spec, options.judge_max_new_tokens or default)


def _loader(name: str, settings: dict[str, Any], o: JudgedOptions) -> Callable[[TextTokenizer], list[dict[str, Any]]]:
    def get(repo: str, rel: str) -> Path:
        return data_file(name, _hub(repo, rel), rel, settings)

    if name == "narrativeqa":
        test = [get(NQA_HUB, f) for f in NQA_TEST]
        return narrativeqa_loader(test, [get(NQA_HUB, f) for f in NQA_TRAIN] if o.shots else [], o)
    if name == "infbench_sum_eng":
        kp = "infbench/longbook_sum_eng_keypoints.jsonl"
        return infbench_sum_loader(
            get(SUM_HUB, "longbook_sum_eng.jsonl"), data_file(name, keypoints_source(kp), kp, settings), o
        )
    kp = "multi_lexsum/multi_lexsum_val.jsonl"
    dev, sources = get(LEX_HUB, f"{LEX_DIR}/dev.json"), get(LEX_HUB, f"{LEX_DIR}/sources.json")
    train = get(LEX_HUB, f"{LEX_DIR}/train.json") if o.shots else None
    return multi_lexsum_loader(dev, train, sources, data_file(name, keypoints_source(kp), kp, settings), o)


def _factory(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    options = JudgedOptions(**settings.get("options", {}))
    lengths = check_lengths(spec.name, settings)
    judge = make_judge(spec.name, settings, options)
    if judge is None and spec.needs:
        raise ConfigError(judge_missing(spec.name))
    load = _loader(spec.name, settings, options)
    fp = {"path": str(_local(settings) or "")}
    return HelmetJudgedTask(spec.name, load, lengths, options, judge, settings.get("samples"), settings.get("chat"), fp)


def judge_missing(name: str) -> str:
    """The one line that says a judged task has no judge, and how to give it one."""
    return (
        f"task {name} is scored by an LLM judge (HELMET uses {JUDGE_MODEL}) and no judge is configured; add "
        f"`judge: {{backend: openai, model: {JUDGE_MODEL}, base_url: ...}}` (any backend spec) to the suite config"
    )


def declare() -> list[TaskSpec]:
    """NarrativeQA (judged when a judge is configured) and the two judged summarisation tasks."""
    return [
        TaskSpec(
            v.name,
            "HELMET",
            v.description,
            Metric(v.metric, aggregation="mean_judged", **X100),
            False,
            _factory,
            OfficialCode(
                "princeton-nlp/HELMET",
                "scripts/eval_gpt4_longqa.py" if v.name == "narrativeqa" else "scripts/eval_gpt4_summ.py",
                COMMIT,
            ),
            data=primary_source(v.name),
            options=JudgedOptions,
            answer_budget=v.budget,
            aliases=(f"helmet_{v.name}",),
            average_group=v.group,
            needs=() if v.name == "narrativeqa" else ("judge",),
        )
        for v in VARIANTS.values()
    ]
