"""HELMET (Yen et al., ICLR 2025, "HELMET: How to Evaluate Long-Context Language Models Effectively and Thoroughly",
arXiv:2410.02694): the synthetic recall, RAG and passage re-ranking categories, one task per HELMET dataset, each at
the input lengths HELMET's configs run (4k-128k; the paper reports 8k-128k), one data file per length, built and
scored as princeton-nlp/HELMET builds and scores them. (HELMET's in-context learning tasks live in helmet_icl.py.)

Official code (princeton-nlp/HELMET at 4526dfbdc512bd9ff721da336bff4e3e75ecfd27; data.py, utils.py, eval.py,
model_utils.py, arguments.py, configs/ and scripts/ read there):
- configs/recall.yaml, rag.yaml, rerank.yaml and scripts/generate_configs.py (master_mapping, helmet_configs): the
  datasets per category, the test and demo file of each length, generation_max_length (ruler_niah_mk_2 50,
  ruler_niah_mk_3 100, ruler_niah_mv 50, json_kv 100, kilt_* 20, msmarco_rerank_psg 200), shots 2 (RULER ignores
  it), use_chat_template false in all three categories (for instruct models too), stop_new_line false for recall and
  true for RAG and re-ranking (generation stops at "\\n"), max_test_samples 100.
- data.py: load_json_kv, load_ruler, load_qa and load_msmarco_rerank: user_template, system_template,
  prompt_template = user_template + "\\n" + system_template, the demonstrations (json_kv: the row's own `demos`
  [:shots]; kilt_*: `shots` rows of the train demo file (popqa: the test file less the question itself), shuffled
  with the seed sha256(question or id) % 2**31 and de-duplicated; msmarco: `shots` queries of the k10 file with
  their passages and gold ranking, the same way by qid), popqa's popularity filter log10(s_pop) < 3 (kilt_popqa_3),
  the max_test_samples draw (ruler and json_kv: Dataset.shuffle(seed=42); kilt_* and msmarco: random.sample of
  the sorted keys after random.seed(42)), and the post-processing: without the chat template the system_template is
  prepended to the output (eval.py) before scoring.
- model_utils.py tokenize(): a prompt longer than input_max_length - generation_max_length tokens loses the end of
  its context (the passages / haystack), by that many tokens; the chat template, when on, is the user turn alone
  (arguments.py's system_message defaults to None).
- utils.py: normalize_answer, substring_exact_match_score, drqa_metric_max_over_ground_truths, parse_output,
  parse_rankings and calculate_retrieval_metrics (pytrec_eval's ndcg_cut_10, i.e. trec_eval: gain = the label,
  discount log2(rank + 1), 0 when the query has no relevant passage; rounded to 5 places); data.py's RULER recall
  (share of the answers found, lowercased substring) for the RULER variants, substring exact match (the best of the
  raw and the parsed output) for json_kv and kilt_*; eval.py averages per sample x100; scripts/collect_results.py's
  dataset_to_metrics and custom_avgs ("Recall", "RAG", "Re-rank") name each task's metric and category average.

Data, fetched by name: the Hub dataset `princeton-nlp/HELMET`, file `data.tar.gz` (11 GB; scripts/download_data.sh
downloads and unpacks it); each length's file is read from the archive's `data/...` member once (streamed through
gzip, minutes per file) and kept as JSON in longkit's cache. A local copy (`data.helmet`, or a task's `path`) is
the unpacked `data/` directory (or its parent). Row formats (as data.py reads them): RULER `validation_<n>.jsonl`
{context, query, type_needle_v, outputs (or answer), example}; json_kv {context, question, answer, demos, num_kvs};
kilt {question, answers, ctxs: [{title, text}], id (when present), s_pop (popqa)}; msmarco {qid, query, ctxs: [{id,
title (optional), text, label}]}. A suite length maps to HELMET's length label (8192 -> 8k); lengths HELMET has no
file for are refused in one line; each sample's length is its label in tokens.

Differences, deliberately: a model window shorter than the length cuts the context further (to the window less the
answer budget); `samples` draws HELMET's subset of that size (100 in its configs) and no `samples` runs the whole
file; generation stops at a newline through longkit's stop strings (HELMET uses stop tokens of "\\n" and "\\n\\n");
the suite's `chat: true` sends the user template as the user turn (HELMET's use_chat_template), while `chat` unset
or false follows HELMET's configs (no chat template, also for instruct models). The rows' field names above follow
data.py; the archive itself (11 GB) was not downloaded to check them.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.metrics import normalize_answer  # SQuAD normalisation, as HELMET utils.py normalize_answer
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.spec import X100, DataSource, Metric, OfficialCode, TaskSpec

COMMIT = "4526dfbdc512bd9ff721da336bff4e3e75ecfd27"
REPO = "princeton-nlp/HELMET"
HUB = "princeton-nlp/HELMET"
ARCHIVE = "data.tar.gz"
SEED = 42  # arguments.py --seed
SHOTS = 2  # configs: shots 2
POPULARITY_THRESHOLD = 3.0  # kilt_popqa_3
LEVELS = {"4k": 4096, "8k": 8192, "16k": 16384, "32k": 32768, "64k": 65536, "128k": 131072}  # lengths_mapping

# --- data.py's templates (verbatim, typos included: "relelvant") ---------------------------------------------------

JSON_KV_USER = "{context}\n\nExtract the value corresponding to the specified key in the JSON object below.\n\n{demos}Key: {question}"
JSON_KV_SYSTEM = "Corresponding value:"
JSON_KV_DEMO = "Key: {key}\nCorresponding value:{value}"

RULER_NIAH_USER = "A special magic {type_needle_v} is hidden within the following text. Make sure to memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat is the special magic {type_needle_v} for {query} mentioned in the provided text?"
RULER_NIAH_SYSTEM = "The special magic {type_needle_v} for {query} mentioned in the provided text is"
RULER_MV_USER = "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} mentioned in the provided text?"
RULER_MV_SYSTEM = "The special magic {type_needle_v} for {query} mentioned in the provided text are"

QA_USER = "Use the given documents to write a concise and short answer to the question. Write your answer in the following format:\nAnswer: [answer]\n\n{demos}{context}\n\nQuestion: {question}"
QA_SYSTEM = "Answer:"
QA_DEMO = "{documents}\n\nQuestion: {question}\nAnswer: {answer}"
QA_PASSAGE = "Document (Title: {title}): {text}"

RERANK_USER = "You are provided with a list of documents, each indicated by their ID. Rank each document based on their relevance to the question in descending order from most relelvant to least relevant texts. Include all documents in the rankings. Write your answer using the unique IDs, with the following format:\nRanking: ID3 > ID1 > ID2\n\n{demos}{context}\n\nQuery: {question}"
RERANK_SYSTEM = "Ranking:"
RERANK_PASSAGE_TITLE = "[ID: {id}] Document (Title: {title}): {text}"
RERANK_PASSAGE = "[ID: {id}] Document: {text}"

STOP_NEWLINE = ["\n", "\n\n"]  # model_utils.py: stop_newline


@dataclass(frozen=True)
class Variant:
    """One HELMET dataset: its kind, files per length, answer budget, newline stop and metric."""

    name: str
    kind: str  # ruler | json_kv | qa | rerank
    category: str  # collect_results.py's custom_avgs group
    test: dict[str, str]  # length label -> file under data/
    demo: str | None
    budget: int
    stop_newline: bool
    metric: str
    description: str


def _per_level(pattern: str, ks: list[str]) -> dict[str, str]:
    return {lv: pattern.format(k=k, n=n) for (lv, n), k in zip(LEVELS.items(), ks, strict=True)}


_KILT_K = ["20", "50", "105", "220", "440", "1000"]
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "ruler_niah_mk_2",
            "ruler",
            "Recall",
            _per_level("ruler/niah_multikey_2/validation_{n}.jsonl", ["", "", "", "", "", ""]),
            None,
            50,
            False,
            "ruler recall",
            "RULER multi-key needle (needle keys among needle distractors)",
        ),
        Variant(
            "ruler_niah_mk_3",
            "ruler",
            "Recall",
            _per_level("ruler/niah_multikey_3/validation_{n}.jsonl", ["", "", "", "", "", ""]),
            None,
            100,
            False,
            "ruler recall",
            "RULER multi-key UUID needle",
        ),
        Variant(
            "ruler_niah_mv",
            "ruler",
            "Recall",
            _per_level("ruler/niah_multivalue/validation_{n}.jsonl", ["", "", "", "", "", ""]),
            None,
            50,
            False,
            "ruler recall",
            "RULER multi-value needle (all four values)",
        ),
        Variant(
            "json_kv",
            "json_kv",
            "Recall",
            _per_level("json_kv/test_k{k}_dep6.jsonl", ["50", "105", "220", "440", "900", "1800"]),
            None,
            100,
            False,
            "substring exact match",
            "UUID key-value lookup in a JSON object",
        ),
        Variant(
            "kilt_nq",
            "qa",
            "RAG",
            _per_level("kilt/nq-dev-multikilt_1000_k{k}_dep6.jsonl", _KILT_K),
            "kilt/nq-train-multikilt_1000_k3_dep6.jsonl",
            20,
            True,
            "substring exact match",
            "Natural Questions over retrieved KILT passages",
        ),
        Variant(
            "kilt_triviaqa",
            "qa",
            "RAG",
            _per_level("kilt/triviaqa-dev-multikilt_1000_k{k}_dep6.jsonl", _KILT_K),
            "kilt/triviaqa-train-multikilt_1000_k3_dep6.jsonl",
            20,
            True,
            "substring exact match",
            "TriviaQA over retrieved KILT passages",
        ),
        Variant(
            "kilt_hotpotqa",
            "qa",
            "RAG",
            _per_level("kilt/hotpotqa-dev-multikilt_1000_k{k}_dep3.jsonl", _KILT_K),
            "kilt/hotpotqa-train-multikilt_1000_k3_dep3.jsonl",
            20,
            True,
            "substring exact match",
            "HotpotQA over retrieved KILT passages",
        ),
        Variant(
            "kilt_popqa_3",
            "qa",
            "RAG",
            _per_level("kilt/popqa_test_1000_k{k}_dep6.jsonl", _KILT_K),
            "kilt/popqa_test_1000_k3_dep6.jsonl",
            20,
            True,
            "substring exact match",
            "PopQA (log10 popularity < 3) over retrieved KILT passages",
        ),
        Variant(
            "msmarco_rerank_psg",
            "rerank",
            "Re-rank",
            _per_level("msmarco/test_reranking_data_k{k}_dep3.jsonl", ["14", "50", "130", "285", "600", "1000"]),
            "msmarco/test_reranking_data_k10_dep3.jsonl",
            200,
            True,
            "NDCG@10",
            "MS MARCO passage re-ranking",
        ),
    )
}

REQUIRED = {
    "ruler": ("context", "query", "type_needle_v"),
    "json_kv": ("context", "question", "answer", "demos"),
    "qa": ("question", "answers", "ctxs"),
    "rerank": ("qid", "query", "ctxs"),
}


# --- utils.py's metrics --------------------------------------------------------------------------------------------


def _flatten(ground_truths: Any) -> list[str]:
    if isinstance(ground_truths, str):
        return [ground_truths]
    if ground_truths and isinstance(ground_truths[0], list):
        return [str(g) for gs in ground_truths for g in gs]
    return [str(g) for g in ground_truths]


def substring_exact_match(prediction: str, ground_truths: Any) -> bool:
    """drqa_metric_max_over_ground_truths(substring_exact_match_score, ...)."""
    return max(normalize_answer(g) in normalize_answer(prediction) for g in _flatten(ground_truths))


def parse_output(output: str, prefix: str = "Answer:") -> str | None:
    """utils.py's parse_output: the rest of the line after the prefix, else the first line."""

    def lstrip_string(s: str, sub: str) -> str:
        return re.sub(f"^{re.escape(sub)}", "", s, flags=re.IGNORECASE)

    patterns = [re.compile(f"(?:{prefix})(.*)(?:\n|$)", flags=re.IGNORECASE), re.compile(r"(?:^)(.*)(?:\n|$)")]
    for pat in patterns:
        m = pat.search(output)
        if m is not None:
            return lstrip_string(m[1].strip(), prefix).strip()
    return None


def sub_em_post_process(output: str, answers: Any, prefix: str = "Answer:") -> float:
    """default_post_process (and load_json_kv's post_process): the best of the raw and the parsed output."""
    score = substring_exact_match(output, answers)
    parsed = parse_output(output, prefix)
    if parsed is not None:
        score = max(score, substring_exact_match(parsed, answers))
    return float(score)


def ruler_recall(output: str, answers: list[str]) -> float:
    """load_ruler's post_process: the share of answers found in the output (lowercased substring)."""
    return sum(a.lower() in output.lower() for a in answers) / len(answers)


def parse_rankings(output: str) -> dict[str, int]:
    """utils.py's parse_rankings: the longest 'n > n > ...' run, scored len - position, first occurrence kept."""
    output = re.sub(r"[\[\]:]", "", output)
    output = output.lower().replace("id", "")
    longest = ""
    for m in re.finditer(r"(\d+)(?:\s*>\s*(\d+))*", output):
        if len(m.group(0)) > len(longest):
            longest = m.group(0)
    if longest:
        rankings = [n.strip() for n in longest.split(">") if n.strip().isdigit()]
    else:
        rankings = [output]
    results: dict[str, int] = {}
    for i, rank in enumerate(rankings):
        if rank not in results:
            results[rank] = len(rankings) - i
    return results


def ndcg_at_k(ranking: dict[str, float], qrels: dict[str, int], k: int = 10) -> float:
    """trec_eval's ndcg_cut.k as pytrec_eval computes it for one query: documents by score (ties: docid descending),
    gain = the relevance label, discount log2(rank + 1), over the ideal ordering of the labels; rounded to 5 places
    as calculate_retrieval_metrics rounds its mean (one query per sample)."""
    ordered = sorted(ranking.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:k]
    dcg = sum(max(qrels.get(doc, 0), 0) / math.log2(i + 2) for i, (doc, _) in enumerate(ordered))
    ideal = sorted((r for r in qrels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return round(dcg / idcg, 5) if idcg > 0 else 0.0


# --- sample selection and demonstrations ---------------------------------------------------------------------------


def shuffled(n: int, seed: int) -> list[int]:
    """The order datasets' Dataset.shuffle(seed=seed) gives n rows (numpy default_rng(seed).permutation)."""
    import numpy as np

    return [int(i) for i in np.random.default_rng(seed).permutation(n)]


def demo_seed(key: Any) -> int:
    """load_qa / load_msmarco_rerank's per-sample seed: sha256 of the key, mod 2**31."""
    return int(hashlib.sha256(str(key).encode("utf-8")).hexdigest(), 16) % 2**31


def pick_demos(demos: list[dict[str, Any]], key: str, seed: int, shots: int) -> list[dict[str, Any]]:
    """demos.shuffle(seed=h), drop_duplicates(key), select(range(shots))."""
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for i in shuffled(len(demos), seed):
        d = demos[i]
        k = d[key]
        if k in seen:
            continue
        seen.add(k)
        out.append(d)
        if len(out) == shots:
            break
    if len(out) < shots:
        raise InputError(f"HELMET: only {len(out)} distinct demonstrations available, {shots} needed")
    return out


def qa_passages(ctxs: list[dict[str, Any]]) -> str:
    """load_qa's passage text."""
    return "\n\n".join(QA_PASSAGE.format(**c) for c in ctxs)


def qa_demo_text(demos: list[dict[str, Any]]) -> str:
    """load_qa's demo text (empty without shots)."""
    if not demos:
        return ""
    parts = [
        QA_DEMO.format(question=d["question"], documents=qa_passages(d["ctxs"]), answer=d["answers"][0]) for d in demos
    ]
    return "\n\n".join(parts) + "\n\n"


def rerank_template(ctxs: list[dict[str, Any]]) -> str:
    """The passage template load_msmarco_rerank picks from the sample's first passage."""
    return RERANK_PASSAGE_TITLE if "title" in ctxs[0] else RERANK_PASSAGE


def gold_ranking(ctxs: list[dict[str, Any]]) -> str:
    """IDs by label, highest first (stable)."""
    return " > ".join(str(c["id"]) for c in sorted(ctxs, key=lambda c: c["label"], reverse=True))


def rerank_demo_text(demos: list[dict[str, Any]], template: str) -> str:
    """load_msmarco_rerank's demo text."""
    text = ""
    for d in demos:
        passages = "\n\n".join(template.format(**c) for c in d["ctxs"])
        text += passages + f"\n\nQuery: {d['query']}\nRanking: {gold_ranking(d['ctxs'])}" + "\n\n"
    return text


def json_kv_demo_text(demos: list[Any], shots: int) -> str:
    """load_json_kv's demo text from the row's own (key, value) pairs."""
    text = "\n\n".join(JSON_KV_DEMO.format(key=k, value=" " + v) for k, v in demos[:shots])
    return text + ("\n\n" if shots > 0 else "")


# --- rows ----------------------------------------------------------------------------------------------------------


def read_rows(path: Path, kind: str) -> list[tuple[int, dict[str, Any]]]:
    """(line or item, row) of a HELMET file (JSONL as published, or the JSON array longkit's cache keeps)."""
    from longkit.io import read_text

    text = read_text(path, "HELMET data")
    rows: list[tuple[int, dict[str, Any]]] = []
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        numbered = [(i, item, f"{path}: item {i}") for i, item in enumerate(items, start=1)]
    else:
        numbered = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{i}: invalid JSON ({exc.msg})") from None
            numbered.append((i, item, f"{path}:{i}"))
    for i, item, at in numbered:
        if not isinstance(item, dict):
            raise InputError(f"{at}: expected an object, got {type(item).__name__}")
        check_row(item, kind, at)
        rows.append((i, item))
    if not rows:
        raise InputError(f"{path}: no samples")
    return rows


def check_row(row: dict[str, Any], kind: str, at: str) -> None:
    """The fields data.py reads, with their types; one line naming the place and the field."""
    missing = next((f for f in REQUIRED[kind] if f not in row), None)
    if kind == "ruler" and missing is None and "outputs" not in row and "answer" not in row:
        missing = "outputs"
    if missing:
        raise InputError(f"{at}: missing field '{missing}'")

    def bad(field: str, why: str) -> InputError:
        return InputError(f"{at}: field '{field}': {why}")

    if kind in ("qa", "rerank"):
        ctxs = row["ctxs"]
        if not isinstance(ctxs, list) or not all(isinstance(c, dict) for c in ctxs):
            raise bad("ctxs", "expected a list of passages")
        need = ("title", "text") if kind == "qa" else ("id", "text", "label")
        for j, c in enumerate(ctxs):
            gone = next((f for f in need if f not in c), None)
            if gone:
                raise bad(f"ctxs[{j}].{gone}", "missing")
        if kind == "rerank" and not ctxs:
            raise bad("ctxs", "no passages")
    if kind == "qa" and (not isinstance(row["answers"], list) or not row["answers"]):
        raise bad("answers", "expected a non-empty list")
    if kind == "ruler":
        answers = row["answer"] if "answer" in row else row["outputs"]
        if not isinstance(answers, list) or not answers:
            raise bad("answer" if "answer" in row else "outputs", "expected a non-empty list")
    if kind == "json_kv" and not isinstance(row["demos"], list):
        raise bad("demos", "expected a list of [key, value] pairs")
    for f in ("context", "question", "query"):
        if f in REQUIRED[kind] and not isinstance(row[f], str):
            raise bad(f, f"expected a string, got {type(row[f]).__name__}")


def select(rows: list[tuple[int, dict[str, Any]]], kind: str, n: int | None, seed: int = SEED) -> list[int]:
    """The indices of HELMET's max_test_samples draw (all rows when n is None), in the order HELMET runs them."""
    if n is None:
        return list(range(len(rows)))
    if kind in ("ruler", "json_kv"):  # data.shuffle(seed).select(range(n))
        return shuffled(len(rows), seed)[: min(n, len(rows))]
    if kind == "rerank":
        key = "qid" if all("qid" in r for _, r in rows) else "query"
    else:
        key = "id" if all("id" in r for _, r in rows) else "question"
    keys = sorted({r[key] for _, r in rows})
    chosen = set(random.Random(seed).sample(keys, min(n, len(keys))))  # random.seed(seed); random.sample(...)
    return [i for i, (_, r) in enumerate(rows) if r[key] in chosen]  # data.filter keeps file order


# --- the task ------------------------------------------------------------------------------------------------------


class HelmetOptions(BaseModel):
    """`options:` of the HELMET tasks: the number of demonstrations (configs: 2; RULER takes none)."""

    model_config = ConfigDict(extra="forbid")

    shots: int = SHOTS


class HelmetTask(Task):
    """One HELMET dataset at one or more lengths (one file each)."""

    def __init__(
        self,
        variant: Variant,
        files: list[tuple[str, Path]],
        demo_file: Path | None = None,
        options: HelmetOptions | None = None,
        limit: int | None = None,
        chat: bool | None = None,
        seed: int = SEED,
    ):
        self.variant = variant
        self.name = variant.name
        self.files = files
        self.demo_file = demo_file
        self.options = options or HelmetOptions()
        self.limit = limit
        self.chat = bool(chat)  # HELMET's configs: use_chat_template false unless asked
        self.seed = seed
        self._rows: list[tuple[str, int, dict[str, Any]]] | None = None
        self._demos: list[dict[str, Any]] | None = None

    @property
    def shots(self) -> int:
        return 0 if self.variant.kind == "ruler" else self.options.shots

    def rows(self) -> list[tuple[str, int, dict[str, Any]]]:
        """(length label, line, row) of each length's file: HELMET's draw of `samples` rows, popqa filtered."""
        if self._rows is None:
            out = []
            for level, path in self.files:
                rows = read_rows(path, self.variant.kind)
                if self.variant.name.startswith("kilt_popqa"):
                    rows = [(i, r) for i, r in rows if math.log10(_pop(r, path, i)) < POPULARITY_THRESHOLD]
                out += [(level, rows[j][0], rows[j][1]) for j in select(rows, self.variant.kind, self.limit, self.seed)]
            self._rows = out
        return self._rows

    def demos(self) -> list[dict[str, Any]]:
        """The demonstration file's rows (kilt_*, msmarco)."""
        if self._demos is None:
            if self.demo_file is None or self.shots == 0:
                self._demos = []
            else:
                kind = self.variant.kind
                rows = read_rows(self.demo_file, kind)
                if self.variant.name.startswith("kilt_popqa"):
                    rows = [(i, r) for i, r in rows if math.log10(_pop(r, self.demo_file, i)) < POPULARITY_THRESHOLD]
                self._demos = [r for _, r in rows]
        return self._demos

    def plan(self) -> list[dict[str, Any]]:
        """One spec per drawn row per length."""
        return [{"id": f"{level}-{line}", "row": i} for i, (level, line, _) in enumerate(self.rows())]

    def fields(self, row: dict[str, Any], level: str) -> dict[str, Any]:
        """The values HELMET formats its templates with (data.py's map step)."""
        kind, shots = self.variant.kind, self.shots
        if kind == "ruler":
            example = row.get("example", "")
            return {
                **row,
                "question": row.get("query", row.get("question", "")),
                "example": example + "\n\n" if example else "",
                "answer": row["answer"] if "answer" in row else row["outputs"],
            }
        if kind == "json_kv":
            return {**row, "demos": json_kv_demo_text(row["demos"], shots)}
        if kind == "qa":
            key = "id" if all("id" in r for _, _, r in self.rows()) else "question"
            demo_text = ""
            if shots > 0:
                pool = self.demos()
                if self.variant.name.startswith("kilt_popqa"):  # popqa's demos come from its test split
                    pool = [d for d in pool if d.get(key) != row[key]]
                demo_text = qa_demo_text(pick_demos(pool, key, demo_seed(row[key]), shots))
            context = qa_passages(row["ctxs"]) if row["ctxs"] else ""
            return {**row, "demos": demo_text, "context": context, "answer": row["answers"]}
        # rerank
        template = rerank_template(row["ctxs"])
        demo_text = ""
        if shots > 0:
            pool = self.demos()
            drawn = [r["qid"] for lv, _, r in self.rows() if lv == level]  # this length's data after the draw
            if len(pool) > 2 * len(drawn):
                pool = [d for d in pool if d["qid"] not in set(drawn)]
            else:
                pool = [d for d in pool if d["qid"] != row["qid"]]
            demo_text = rerank_demo_text(pick_demos(pool, "qid", demo_seed(row["qid"]), shots), template)
        return {
            **row,
            "context": "\n\n".join(template.format(**c) for c in row["ctxs"]),
            "question": row["query"],
            "demos": demo_text,
            "answer": gold_ranking(row["ctxs"]),
        }

    def templates(self) -> tuple[str, str]:
        """(user_template, system_template) of this dataset."""
        kind = self.variant.kind
        if kind == "ruler":
            mv = "niah_mv" in self.name
            return (RULER_MV_USER, RULER_MV_SYSTEM) if mv else (RULER_NIAH_USER, RULER_NIAH_SYSTEM)
        return {
            "json_kv": (JSON_KV_USER, JSON_KV_SYSTEM),
            "qa": (QA_USER, QA_SYSTEM),
            "rerank": (RERANK_USER, RERANK_SYSTEM),
        }[kind]

    def render(self, values: dict[str, Any]) -> str:
        """prompt_template (no chat) or user_template (chat) filled with the values."""
        user, system = self.templates()
        return user.format(**values) if self.chat else (user + "\n" + system).format(**values)

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """The prompt, its context cut from the end to input length - answer budget (model_utils.py tokenize)."""
        level, line, row = self.rows()[spec["row"]]
        values = self.fields(row, level)
        budget = self.variant.budget
        limit = min(LEVELS[level], max_context) - budget
        text = self.render(values)
        total = self._count(tokenizer, text)
        truncated = False
        if total > limit:
            cut = total - limit
            ids = tokenizer.encode(values["context"])
            values = {**values, "context": tokenizer.decode(ids[: max(len(ids) - cut, 0)])}
            text = self.render(values)
            truncated = True
        _, system = self.templates()
        meta = {
            "length": LEVELS[level],
            "level": level,
            "line": line,
            "input_tokens": total,
            "truncated_by_task": truncated,
            "prefix": "" if self.chat else system.format(**values),
        }
        if self.variant.kind == "rerank":
            meta["qrels"] = {str(c["id"]): int(c["label"]) for c in row["ctxs"]}
        refs = [values["answer"]] if isinstance(values["answer"], str) else _flatten(values["answer"])
        kwargs: dict[str, Any] = {"messages": [{"role": "user", "content": text}]} if self.chat else {"prompt": text}
        return Sample(
            id=spec["id"],
            references=refs,
            meta=meta,
            max_new_tokens=budget,
            stop=list(STOP_NEWLINE) if self.variant.stop_newline else [],
            **kwargs,
        )

    def _count(self, tokenizer: TextTokenizer, text: str) -> int:
        return input_tokens(tokenizer, text, self.chat)

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """The system template prepended (no chat), then the dataset's metric."""
        output = str(sample.meta.get("prefix", "")) + prediction
        kind = self.variant.kind
        if kind == "ruler":
            return {"score": ruler_recall(output, sample.references)}
        if kind == "json_kv":
            return {"score": sub_em_post_process(output, sample.references, "corresponding value:")}
        if kind == "qa":
            return {"score": sub_em_post_process(output, sample.references)}
        qrels = {str(k): int(v) for k, v in dict(sample.meta["qrels"]).items()}
        ranking = parse_rankings(output)
        return {"score": ndcg_at_k({k: float(v) for k, v in ranking.items()}, qrels, 10), "num_preds": len(ranking)}

    def fingerprint(self) -> dict[str, Any]:
        """Files, lengths, draw, shots and chat."""
        return {
            "name": self.name,
            "files": [str(p) for _, p in self.files],
            "demo_file": str(self.demo_file) if self.demo_file else None,
            "levels": [lv for lv, _ in self.files],
            "samples": self.limit,
            "seed": self.seed,
            "chat": self.chat,
            **self.options.model_dump(),
        }

    def describe(self) -> str:
        """Said where the run leaves HELMET's setup."""
        parts = []
        if self.chat:
            parts.append("chat template on (HELMET's configs run these without)")
        if self.shots != (0 if self.variant.kind == "ruler" else SHOTS):
            parts.append(f"{self.shots} demonstrations (HELMET: {SHOTS})")
        return "; ".join(parts)


def _pop(row: dict[str, Any], path: Path, line: int) -> float:
    if "s_pop" not in row:
        raise InputError(f"{path}:{line}: missing field 's_pop'")
    try:
        return float(row["s_pop"])
    except (TypeError, ValueError):
        raise InputError(f"{path}:{line}: field 's_pop': expected a number") from None


# --- data ----------------------------------------------------------------------------------------------------------


def _jsonl(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def input_tokens(tokenizer: TextTokenizer, text: str, chat: bool) -> int:
    """Tokens of an input as HELMET counts them: through the chat template, or with the special tokens the
    tokenizer adds (model_utils.py tokenize)."""
    if chat:
        return tokenizer.count(tokenizer.render_messages([{"role": "user", "content": text}]))
    try:
        specials = len(tokenizer.hf("")["input_ids"])
    except Exception:  # noqa: BLE001 -- a tokenizer without the HF call counts no specials
        specials = 0
    return tokenizer.count(text) + specials


def tar_member(member: str, parse: Callable[[str], Any] = _jsonl) -> Callable[[Path], Any]:
    """A DataSource convert: one member of data.tar.gz (matched by its path under data/), parsed by `parse` (JSON
    lines by default; `json.loads` for the members that hold one JSON document)."""

    def convert(archive: Path) -> Any:
        import tarfile

        try:
            with tarfile.open(archive, "r:*") as tf:
                for info in tf:
                    if info.isfile() and (info.name == member or info.name.endswith("/" + member)):
                        fh = tf.extractfile(info)
                        assert fh is not None
                        return parse(fh.read().decode("utf-8"))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InputError(f"{archive}: not a readable tar.gz archive ({type(exc).__name__})") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{archive}: {member}: invalid JSON ({exc.msg})") from None
        raise InputError(f"{archive}: {member} not found in dataset {HUB}, file {ARCHIVE}")

    return convert


def source(rel: str) -> DataSource:
    """One file under the archive's data/ directory."""
    member = f"data/{rel}"
    return DataSource(HUB, ARCHIVE, member=member + ".json", convert=tar_member(member), setting="helmet")


def choose_levels(name: str, settings: dict[str, Any]) -> list[str]:
    """The entry's `levels`, else the suite's lengths as HELMET's labels (8192 -> 8k); others refused."""
    where = f"{name}: HELMET runs {name} at {', '.join(LEVELS)}"
    levels = settings.get("levels")
    if levels is None:
        levels = []
        for n in settings.get("lengths") or [8192]:
            label = next((lv for lv, t in LEVELS.items() if t == int(n)), None)
            if label is None:
                raise ConfigError(f"{where}; length {n} is none of them (4096-131072 tokens)")
            levels.append(label)
    bad = next((lv for lv in levels if lv not in LEVELS), None)
    if bad is not None:
        raise ConfigError(f"{where}; length {bad} is not one of them")
    return list(dict.fromkeys(levels))


def _file(name: str, rel: str, settings: dict[str, Any]) -> Path:
    given = settings.get("path") or settings.get("data", {}).get("helmet")
    if given:
        root = Path(given)
        for cand in (root / rel, root / "data" / rel):
            if cand.is_file():
                return cand
        raise InputError(f"HELMET {name}: {rel} not found under {root} (nor under {root / 'data'})")
    from longkit.eval.fetch import fetch_source

    return fetch_source(name, source(rel))


def _factory(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    options = HelmetOptions(**settings.get("options", {}))
    variant = VARIANTS[spec.name]
    levels = choose_levels(spec.name, settings)
    files = [(lv, _file(spec.name, variant.test[lv], settings)) for lv in levels]
    demo = _file(spec.name, variant.demo, settings) if variant.demo and options.shots > 0 else None
    return HelmetTask(variant, files, demo, options, limit=settings.get("samples"), chat=settings.get("chat"))


def declare() -> list[TaskSpec]:
    """The recall, RAG and re-ranking datasets of HELMET; each category is one HELMET average."""
    code = OfficialCode(REPO, "data.py", COMMIT)
    return [
        TaskSpec(
            v.name,
            "HELMET",
            f"{v.description}, 4k-128k",
            Metric(v.metric, **X100),
            False,
            _factory,
            code,
            data=source(v.test["8k"]),
            options=HelmetOptions,
            answer_budget=v.budget,
            aliases=(f"helmet_{v.name}",),
            average_group=f"HELMET {v.category}",
        )
        for v in VARIANTS.values()
    ]
