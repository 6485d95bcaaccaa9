"""HELMET's citation category (Yen et al., ICLR 2025, arXiv:2410.02694): ALCE's ASQA and QAMPARI (Gao et al., 2023)
over HELMET's top-2000 GTR passages, answered with citations ("[1][2]") and scored as HELMET's eval_alce.py scores
them: correctness without a model, citation recall and precision by an NLI model (here: the suite's `judge:`).

Official code (princeton-nlp/HELMET at 4526dfbdc512bd9ff721da336bff4e3e75ecfd27):
- configs/cite.yaml, cite_short.yaml and scripts/generate_configs.py: datasets alce_asqa_<k> / alce_qampari_<k>
  with k passages per input length (4096: 8, 8192: 30, 16384: 75, 32768: 165, 65536: 345, 131072: 700; cite*.yaml
  run 8K-128K), test files data/alce/asqa_eval_gtr_top2000.json and qampari_eval_gtr_top2000.json, demo files
  prompts/asqa_revised.json and qampari_revised.json, generation_max_length 300, use_chat_template true,
  max_test_samples 100, shots 2, stop_new_line false.
- data.py load_alce: user_template "{demo_text}{instruction}\\n\\nQuestion: {question}\\n\\n{context}", system
  "Answer:", prompt_template = user + "\\n\\n" + system; context = the row's first k docs as the demo file's
  doc_prompt "Document [{ID}](Title: {title}): {text}" joined by "\\n\\n"; per row (file order, after eval.py's
  random.seed(42)) random.sample(demos, shots), each demo the demo_prompt with all its 5 docs, joined and followed
  by "\\n\\n\\n". load_data then shuffle(seed=42).select(range(min(100, n))).
- eval.py: without the chat template "Answer:" is prepended to the output; the chat template is the user turn.
  model_utils.py tokenize(): a prompt over input length - 300 tokens loses the tail of its passages.
- eval_alce.py main(--citations, at_most_citations 3): newlines become one space and "<|im_end|>" is dropped;
  utils.py remove_citations for the correctness metrics: compute_str_em (ASQA: the share of qa_pairs with a
  normalised short answer inside the normalised output, str_hit when all are) and compute_qampari_f1 (the output
  split on commas; qampari_prec, _rec, _rec_top5, _f1, _f1_top5, num_preds). compute_autoais: sentences by NLTK's
  sent_tokenize (ASQA; those under 5 characters dropped) or question + each comma item (QAMPARI); per sentence the
  cited "[n" ids (out of range of the row's docs, or none: not supported), at most 3 kept, premise the cited docs
  "Title: {title}\\n{text}" joined by "\\n", hypothesis the sentence without citations, TRUE's input
  "premise: {premise} hypothesis: {hypothesis}" (google/t5_xxl_true_nli_mixture, "1" = entailed); recall = share
  of supported sentences; precision: a sentence with several citations that the joint premise supports counts each
  citation unless that doc alone fails and the others without it still entail (over-cited); precision divides by
  the citations kept. A sample with no sentence is left out of both; each is x100 over the samples.
- scripts/collect_results.py: alce_asqa reports str_em, citation_rec, citation_prec; alce_qampari
  qampari_rec_top5, citation_rec, citation_prec; "Cite" is the mean of these six columns, so each task's own
  contribution is the mean of its three, which is this task's official score.

Data, fetched by name: `princeton-nlp/HELMET` data.tar.gz members data/alce/{asqa,qampari}_eval_gtr_top2000.json (a
JSON list of ALCE rows: question, docs [{title, text}], and qa_pairs [{short_answers}] (ASQA) or answers (a list of
lists, QAMPARI)), read once and kept in longkit's cache; `data.helmet` (or the task's `path`) may name the unpacked
data/ directory instead. The demo files are not in the Hub release: helmet_alce_demos.py carries them verbatim (a
local copy's prompts/ directory wins). The archive's members were not downloaded to check their fields here.

Differences, deliberately: citation recall and precision are judged by the suite's `judge:` model sent TRUE's input
string verbatim (a raw prompt; option nli_chat sends it as a user turn) and greedily decoded, a reply starting with
"1" counting as entailed (TRUE itself answers "1" or "0"); without a judge the correctness columns are still scored,
the citation columns are absent, the task's `score` is the correctness column alone and the official Cite score is
reported as not judged. ASQA's rougeLsum (bootstrap-aggregated, not in HELMET's tables) is not computed.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from longkit.backends.base import GenerationRequest, TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.tasks import helmet_alce_demos
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.helmet import input_tokens, shuffled, tar_member
from longkit.eval.tasks.helmet_judged import HelmetJudge
from longkit.eval.tasks.spec import X100, DataSource, Metric, OfficialCode, TaskSpec

COMMIT = "4526dfbdc512bd9ff721da336bff4e3e75ecfd27"
REPO = HUB = "princeton-nlp/HELMET"
ARCHIVE = "data.tar.gz"
SEED = 42
SHOTS = 2
MAX_TEST_SAMPLES = 100
BUDGET = 300  # generation_max_length
AT_MOST_CITATIONS = 3  # eval_alce.py --at_most_citations default
NLI_MAX_NEW_TOKENS = 10  # _run_nli_autoais: generate(max_new_tokens=10)
NLI_MODEL = "google/t5_xxl_true_nli_mixture"
NUM_DOCS = {4096: 8, 8192: 30, 16384: 75, 32768: 165, 65536: 345, 131072: 700}  # generate_configs.py name_postfix

# data.py load_alce and eval_alce.py, verbatim
USER = "{demo_text}{instruction}\n\nQuestion: {question}\n\n{context}"
SYSTEM = "Answer:"
PROMPT = USER + "\n\n" + SYSTEM
DEMO_SEP = "\n\n\n"
NLI_INPUT = "premise: {} hypothesis: {}"
NLI_DOC = "Title: %s\n%s"


@dataclass(frozen=True)
class Variant:
    name: str
    test: str  # under the archive's data/
    demo: str  # under HELMET's repository
    demo_text: str  # the demo file as helmet_alce_demos carries it
    correct: str  # the correctness column collect_results.py reports
    description: str


VARIANTS = {
    "alce_asqa": Variant(
        "alce_asqa",
        "alce/asqa_eval_gtr_top2000.json",
        "prompts/asqa_revised.json",
        helmet_alce_demos.ASQA_REVISED,
        "str_em",
        "ASQA long-form answers with citations over retrieved passages (str_em; citation recall/precision judged)",
    ),
    "alce_qampari": Variant(
        "alce_qampari",
        "alce/qampari_eval_gtr_top2000.json",
        "prompts/qampari_revised.json",
        helmet_alce_demos.QAMPARI_REVISED,
        "qampari_rec_top5",
        "QAMPARI answer lists with citations over retrieved passages (recall@5; citation recall/precision judged)",
    ),
}


class AlceOptions(BaseModel):
    """`options:` of the ALCE tasks: HELMET's draw and demonstrations, and how the NLI judge is asked."""

    model_config = ConfigDict(extra="forbid")

    seed: int = SEED
    shots: int = Field(SHOTS, ge=0)
    max_test_samples: int | None = Field(MAX_TEST_SAMPLES, ge=1)
    at_most_citations: int = Field(AT_MOST_CITATIONS, ge=1)
    nli_chat: bool = False  # send TRUE's input as a user turn (chat-only servers) instead of a raw prompt
    nli_max_new_tokens: int = Field(NLI_MAX_NEW_TOKENS, ge=1)


# --- eval_alce.py / utils.py: the correctness metrics ----------------------------------------------------------------


def normalize_answer(s: str) -> str:
    """utils.py's normalize_answer: lower, drop punctuation, drop articles, squeeze whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def remove_citations(sent: str) -> str:
    """utils.py's remove_citations (every "]" goes too, as there)."""
    return re.sub(r"\[\d+", "", re.sub(r" \[\d+", "", sent)).replace(" |", "").replace("]", "")


def alce_output(output: str) -> str:
    """eval_alce.py main's clean-up before any metric: runs of newlines become one space, <|im_end|> is dropped."""
    return re.sub(r"\n+", " ", output).replace("<|im_end|>", "")


def exact_presence(short_answers: Sequence[str], context: str) -> bool:
    """Whether a normalised short answer is a substring of the normalised context."""
    text = normalize_answer(context)
    return any(normalize_answer(a) in text for a in short_answers)


def str_em(output: str, qa_pairs: Sequence[Sequence[str]]) -> dict[str, float]:
    """compute_str_em for one sample (the output with citations removed): the share of qa_pairs answered."""
    acc = sum(exact_presence(shorts, output) for shorts in qa_pairs) / len(qa_pairs)
    return {"str_em": acc, "str_hit": float(acc == 1)}


def qampari_scores(output: str, answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """compute_qampari_f1 for one sample (cot off): comma-split predictions against the answer groups."""
    preds = [normalize_answer(x.strip()) for x in output.rstrip().rstrip(".").rstrip(",").split(",")]
    preds = [p for p in preds if p]
    groups = [[normalize_answer(x) for x in group] for group in answers]
    flat = [x for group in groups for x in group]
    hits = sum(any(x in preds for x in group) for group in groups)
    prec = sum(p in flat for p in preds) / len(preds) if preds else 0.0
    rec = hits / len(groups)
    rec5 = min(5, hits) / min(5, len(groups))
    return {
        "num_preds": float(len(preds)),
        "qampari_prec": prec,
        "qampari_rec": rec,
        "qampari_rec_top5": rec5,
        "qampari_f1": _f1(prec, rec),
        "qampari_f1_top5": _f1(prec, rec5),
    }


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


# --- eval_alce.py compute_autoais: citation recall and precision -------------------------------------------------------

Entails = Callable[[list[str]], list[bool]]  # TRUE inputs -> entailed?


def split_sentences(text: str) -> list[str]:
    """NLTK's sent_tokenize (Punkt, English), as eval_alce.py splits ASQA answers."""
    from nltk import sent_tokenize

    return list(sent_tokenize(text))


def check_punkt() -> None:
    """NLTK's Punkt data must be installed before a judged ASQA run starts (it is data, not a package)."""
    try:
        split_sentences("A check. Done.")
    except LookupError:
        raise ConfigError(
            "alce_asqa: citation scoring splits answers with NLTK's Punkt model as eval_alce.py does, and its data "
            "is not installed; run `python -m nltk.downloader punkt_tab` (or score without `judge:`)"
        ) from None


def citation_sentences(output: str, question: str, qampari: bool) -> list[str]:
    """The claims compute_autoais checks: question + each comma item (QAMPARI), else sentences of >= 5 characters."""
    if qampari:
        return [question + " " + x.strip() for x in output.rstrip().rstrip(".").rstrip(",").split(",")]
    return [s for s in split_sentences(output) if len(s.strip()) >= 5]


def cited_ids(sent: str) -> list[int]:
    """0-based document ids of the "[n" markers ("[0" gives -1, which Python's indexing reads as the last doc)."""
    return [int(r[1:]) - 1 for r in re.findall(r"\[\d+", sent)]


def nli_document(doc: dict[str, Any]) -> str:
    """_format_document: the title and the text (or a QA-extracted `sent`)."""
    return NLI_DOC % (doc["title"], doc["sent"] if "sent" in doc else doc["text"])


def nli_input(docs: Sequence[dict[str, Any]], ids: Sequence[int], hypothesis: str) -> str:
    """TRUE's input for the cited docs (joined by newlines) and a claim."""
    return NLI_INPUT.format("\n".join(nli_document(docs[i]) for i in ids), hypothesis)


def without_first(ids: Sequence[int], pid: int) -> list[int]:
    """ids less the first occurrence of pid (list.remove, as the official subset_exclude)."""
    out = list(ids)
    out.remove(pid)
    return out


def citation_scores(
    sents: Sequence[str], docs: Sequence[dict[str, Any]], entails: Entails, at_most: int = AT_MOST_CITATIONS
) -> dict[str, float] | None:
    """compute_autoais for one sample: citation recall and precision in [0, 1], None when it has no sentence.
    The NLI calls go in three rounds (joint premises, then single docs, then the subsets left), each one batch."""
    if not sents:
        return None
    targets = [remove_citations(s).strip() for s in sents]
    refs: list[list[int] | None] = []
    for s in sents:
        ids = cited_ids(s)
        # no citation, or one past the row's docs: unsupported without asking the model
        refs.append(None if not ids or any(i >= len(docs) for i in ids) else ids[:at_most])
    valid = [k for k, r in enumerate(refs) if r is not None]
    joint = _ask(entails, {k: nli_input(docs, refs[k] or [], targets[k]) for k in valid})
    multi = [k for k in valid if joint[k] and len(refs[k] or []) > 1]
    pairs = [(k, j) for k in multi for j in range(len(refs[k] or []))]
    single = _ask(entails, {(k, j): nli_input(docs, [(refs[k] or [])[j]], targets[k]) for k, j in pairs})
    rest = [(k, j) for k, j in pairs if not single[(k, j)]]
    subset = _ask(
        entails,
        {(k, j): nli_input(docs, without_first(refs[k] or [], (refs[k] or [])[j]), targets[k]) for k, j in rest},
    )
    recall = sum(joint.get(k, False) for k in range(len(sents)))
    precision = 0
    for k in valid:
        if k in multi:  # each citation counts unless it is unnecessary (condition A fails and B holds)
            precision += sum(not subset.get((k, j), False) for j in range(len(refs[k] or [])))
        else:
            precision += joint[k]
    total = sum(len(refs[k] or []) for k in valid)
    return {"citation_rec": recall / len(sents), "citation_prec": precision / total if total > 0 else 0.0}


def _ask(entails: Entails, inputs: dict[Any, str]) -> dict[Any, bool]:
    keys = list(inputs)
    return dict(zip(keys, entails([inputs[k] for k in keys]), strict=True)) if keys else {}


def entailed(reply: str) -> bool:
    """TRUE answers "1" for entailment; a judge's reply counts when it starts with "1"."""
    return reply.strip().startswith("1")


class NliJudge(HelmetJudge):
    """The suite's judge asked TRUE's inputs (greedy), each distinct input once per sample."""

    def __init__(self, spec: Any, max_new_tokens: int, chat: bool):
        super().__init__(spec, max_new_tokens)
        self.chat = chat

    def ask(self, prompts: Sequence[str]) -> list[str]:
        reqs = [
            GenerationRequest(messages=[{"role": "user", "content": p}], max_new_tokens=self.max_new_tokens)
            if self.chat
            else GenerationRequest(prompt=p, max_new_tokens=self.max_new_tokens)
            for p in prompts
        ]
        return [c.text for c in self.backend().generate(reqs)]

    def entails(self, inputs: list[str]) -> list[bool]:
        distinct = list(dict.fromkeys(inputs))
        verdict = dict(zip(distinct, (entailed(r) for r in self.ask(distinct)), strict=True))
        return [verdict[i] for i in inputs]


# --- data --------------------------------------------------------------------------------------------------------------


def _bad(at: str, field: str, why: str) -> InputError:
    return InputError(f"{at}: field '{field}': {why}")


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def check_row(row: Any, qampari: bool, at: str) -> dict[str, Any]:
    """One ALCE row checked for the fields load_alce and eval_alce.py read; one line naming place and field."""
    if not isinstance(row, dict):
        raise InputError(f"{at}: expected an object, got {type(row).__name__}")
    need = ("question", "docs", "answers" if qampari else "qa_pairs")
    missing = next((f for f in need if f not in row), None)
    if missing:
        raise InputError(f"{at}: missing field '{missing}'")
    if not isinstance(row["question"], str):
        raise _bad(at, "question", f"expected a string, got {type(row['question']).__name__}")
    if not isinstance(row["docs"], list):
        raise _bad(at, "docs", "expected a list of passages")
    for j, d in enumerate(row["docs"]):
        gone = "title" if not isinstance(d, dict) else next((f for f in ("title", "text") if f not in d), None)
        if gone:
            raise _bad(at, f"docs[{j}].{gone}", "missing")
    if qampari:
        if not row["answers"] or not all(_strings(g) for g in row["answers"]):
            raise _bad(at, "answers", "expected a non-empty list of lists of strings")
    elif not row["qa_pairs"] or not all(
        isinstance(p, dict) and _strings(p.get("short_answers")) for p in row["qa_pairs"]
    ):
        raise _bad(at, "qa_pairs", "expected a non-empty list of {short_answers: [strings]}")
    return row


def read_alce(path: Path, qampari: bool) -> list[dict[str, Any]]:
    """The rows of an ALCE file (a JSON list as published, or JSONL), checked."""
    text = path.read_text(encoding="utf-8")
    try:
        items = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(x) for x in text.splitlines() if x.strip()]
        )
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not items:
        raise InputError(f"{path}: no samples")
    return [check_row(r, qampari, f"{path}: item {i}") for i, r in enumerate(items)]


def read_demos(text: str, where: str) -> dict[str, Any]:
    """A demo file: instruction, demo_prompt, doc_prompt and demos [{question, answer, docs}]."""
    try:
        demos = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON ({exc.msg})") from None
    for f in ("instruction", "demo_prompt", "doc_prompt", "demos"):
        if not isinstance(demos, dict) or f not in demos:
            raise InputError(f"{where}: missing field '{f}'")
    return dict(demos)


def source(rel: str) -> DataSource:
    member = f"data/{rel}"
    return DataSource(HUB, ARCHIVE, member=member, convert=tar_member(member, json.loads), setting="helmet")


def _local(settings: dict[str, Any]) -> Path | None:
    given = settings.get("path") or settings.get("data", {}).get("helmet")
    return Path(given) if given else None


def alce_file(name: str, settings: dict[str, Any]) -> Path:
    """The test file: under the local copy (data/ or its parent) when one is given, else fetched by name."""
    rel = VARIANTS[name].test
    root = _local(settings)
    if root is not None:
        for cand in (root / rel, root / "data" / rel):
            if cand.is_file():
                return cand
        raise InputError(f"HELMET {name}: {rel} not found under {root} (nor under {root / 'data'})")
    from longkit.eval.fetch import fetch_source

    return fetch_source(name, source(rel))


def demo_text(name: str, settings: dict[str, Any]) -> tuple[str, str]:
    """(text, where) of the demo file: a local copy's prompts/ file, else the verbatim copy longkit carries."""
    v = VARIANTS[name]
    root = _local(settings)
    for cand in (root / v.demo, root.parent / v.demo) if root is not None else ():
        if cand.is_file():
            return cand.read_text(encoding="utf-8"), str(cand)
    return v.demo_text, f"{REPO}@{COMMIT[:12]} {v.demo}"


# --- prompts -----------------------------------------------------------------------------------------------------------


def passages(doc_prompt: str, docs: Sequence[dict[str, Any]]) -> str:
    """Docs as "Document [i](Title: ...): text", numbered from 1, joined by blank lines."""
    return "\n\n".join(doc_prompt.format(**d, ID=i + 1) for i, d in enumerate(docs))


def demonstrations(demos: dict[str, Any], picked: Sequence[dict[str, Any]]) -> str:
    """load_alce's demo_text: each demo with all its docs, separated and followed by three newlines."""
    text = DEMO_SEP.join(
        demos["demo_prompt"].format(
            **d, instruction=demos["instruction"], context=passages(demos["doc_prompt"], d["docs"])
        )
        for d in picked
    )
    return text + DEMO_SEP if picked else text


def demo_draws(demos: Sequence[Any], rows: int, shots: int, seed: int) -> list[list[Any]]:
    """random.sample(demos, shots) for every row in file order after random.seed(seed) (eval.py, then data.map)."""
    if shots > len(demos):
        raise ConfigError(f"HELMET ALCE: {shots} demonstrations asked, the demo file has {len(demos)}")
    rng = random.Random(seed)
    return [rng.sample(list(demos), shots) for _ in range(rows)]


# --- the task ----------------------------------------------------------------------------------------------------------


class AlceTask(Task):
    """ASQA or QAMPARI at one or more input lengths (the number of passages follows the length)."""

    group_by = ("length",)

    def __init__(
        self,
        variant: Variant,
        path: Path,
        demos: dict[str, Any],
        lengths: Sequence[int],
        options: AlceOptions | None = None,
        judge: NliJudge | None = None,
        limit: int | None = None,
        chat: bool | None = None,
        fingerprint: dict[str, Any] | None = None,
    ):
        self.variant = variant
        self.name = variant.name
        self.qampari = variant.name == "alce_qampari"
        self.path = path
        self.demos = demos
        self.lengths = list(lengths)
        self.options = options or AlceOptions()
        self.judge = judge
        self.limit = limit
        self.chat = True if chat is None else bool(chat)  # use_chat_template: true in cite*.yaml
        self._fp = fingerprint or {}
        self._rows: list[tuple[int, dict[str, Any], str]] | None = None

    def rows(self) -> list[tuple[int, dict[str, Any], str]]:
        """(file index, row, demo text) of HELMET's draw, in the order HELMET runs them."""
        if self._rows is None:
            o = self.options
            rows = read_alce(self.path, self.qampari)
            draws = demo_draws(self.demos["demos"], len(rows), o.shots, o.seed)
            order = shuffled(len(rows), o.seed)
            n = len(rows) if o.max_test_samples is None else min(o.max_test_samples, len(rows))
            n = min(n, self.limit) if self.limit is not None else n
            self._rows = [(i, rows[i], demonstrations(self.demos, draws[i])) for i in order[:n]]
        return self._rows

    def plan(self) -> list[dict[str, Any]]:
        return [
            {"id": f"{L}-{i}", "length": L, "row": k} for L in self.lengths for k, (i, _, _) in enumerate(self.rows())
        ]

    def render(self, values: dict[str, Any]) -> str:
        return (USER if self.chat else PROMPT).format(**values)

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        length = int(spec["length"])
        index, row, demo = self.rows()[int(spec["row"])]
        docs = row["docs"][: NUM_DOCS[length]]
        values = {
            "demo_text": demo,
            "instruction": self.demos["instruction"],
            "question": row["question"],
            "context": passages(self.demos["doc_prompt"], docs),
        }
        text = self.render(values)
        total = self._count(tokenizer, text)
        limit = min(length, max_context) - BUDGET
        if total > limit:  # model_utils.tokenize(): the passages lose their tail, by the excess
            ids = tokenizer.encode(values["context"])
            values["context"] = tokenizer.decode(ids[: max(len(ids) - (total - limit), 0)])
            text = self.render(values)
        groups = row["answers"] if self.qampari else [p["short_answers"] for p in row["qa_pairs"]]
        meta = {
            "length": length,
            "row": int(spec["row"]),
            "file_index": index,
            "question": row["question"],
            "passages": len(docs),
            "input_tokens": total,
            "truncated_by_task": total > limit,
            "answer_groups": groups,
        }
        kwargs: dict[str, Any] = {"messages": [{"role": "user", "content": text}]} if self.chat else {"prompt": text}
        refs = [a for g in groups for a in g]
        return Sample(id=spec["id"], references=refs, meta=meta, max_new_tokens=BUDGET, **kwargs)

    def _count(self, tokenizer: TextTokenizer, text: str) -> int:
        return input_tokens(tokenizer, text, self.chat)

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        output = alce_output(prediction if self.chat else SYSTEM + prediction)  # eval.py, then eval_alce.py
        plain = remove_citations(output)
        groups = sample.meta["answer_groups"]
        scores = qampari_scores(plain, groups) if self.qampari else str_em(plain, groups)
        correct = scores[self.variant.correct]
        if self.judge is None:
            return {**scores, "score": correct}
        cite = self.citations(output, sample)
        if cite is None:  # no sentence: left out of the citation means (eval_alce.py's `continue`)
            return {**scores, "cited": 0.0, "score": correct / 3}
        return {**scores, **cite, "cited": 1.0, "score": (correct + cite["citation_rec"] + cite["citation_prec"]) / 3}

    def citations(self, output: str, sample: Sample) -> dict[str, float] | None:
        assert self.judge is not None
        _, row, _ = self.rows()[int(sample.meta["row"])]
        sents = citation_sentences(output, row["question"], self.qampari)
        return citation_scores(sents, row["docs"], self.judge.entails, self.options.at_most_citations)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": str(self.path),
            "lengths": self.lengths,
            "chat": self.chat,
            "limit": self.limit,
            "judge": None
            if self.judge is None
            else {"model": self.judge.label, "max_new_tokens": self.judge.max_new_tokens, "chat": self.judge.chat},
            **self._fp,
            **self.options.model_dump(),
        }

    def describe(self) -> str:
        parts = [] if self.chat else ["chat template off (HELMET's cite configs: use_chat_template true)"]
        if self.judge is None:
            parts.append(
                f"citation not judged (no `judge:`): score = {self.variant.correct} only; HELMET's Cite column also "
                "needs citation recall/precision, so the official score is not reported"
            )
        else:
            parts.append(
                f"citation recall/precision judged (NLI via {self.judge.label}, HELMET: {NLI_MODEL}); "
                f"score = mean of {self.variant.correct}, citation_rec, citation_prec"
            )
        return "; ".join(parts)


# --- HELMET's columns per length (the .score file eval_alce.py writes) -------------------------------------------------


def _mean(values: Sequence[float]) -> float:
    return 100 * sum(values) / len(values) if values else 0.0


def alce_columns(scores: Sequence[dict[str, float]]) -> dict[str, Any]:
    """eval_alce.py's columns (x100) over a run's samples; the citation ones and `cite` only where judged."""
    keys = ("str_em", "str_hit", "qampari_rec_top5", "qampari_prec", "qampari_f1")
    out: dict[str, Any] = {k: round(_mean([s[k] for s in scores]), 2) for k in keys if scores and k in scores[0]}
    if not any("cited" in s for s in scores):
        return {**out, "cite": "not judged"}
    kept = [s for s in scores if s.get("cited")]
    for k in ("citation_rec", "citation_prec"):
        out[k] = round(_mean([s[k] for s in kept]), 2)
    correct = out.get("str_em", out.get("qampari_rec_top5", 0.0))
    out["cite"] = round((correct + out["citation_rec"] + out["citation_prec"]) / 3, 2)
    return out


def alce_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """HELMET's columns overall and by input length (collect_results.py reads them per length)."""
    by: dict[int, list[dict[str, float]]] = {}
    for r in records:
        by.setdefault(int(r["meta"]["length"]), []).append(r["scores"])
    overall = alce_columns([r["scores"] for r in records])
    return {**overall, "by_length": {str(k): alce_columns(v) for k, v in sorted(by.items())}}


# --- declaration -------------------------------------------------------------------------------------------------------


def check_lengths(name: str, settings: dict[str, Any]) -> list[int]:
    """The suite's lengths, each one HELMET publishes a passage count for."""
    out = [int(n) for n in settings.get("lengths") or [8192]]
    bad = [n for n in out if n not in NUM_DOCS]
    if bad:
        published = ", ".join(f"{n} ({k} passages)" for n, k in NUM_DOCS.items())
        raise ConfigError(f"{name}: HELMET publishes ALCE at {published}; length {bad[0]} is none of them")
    return out


def _factory(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    options = AlceOptions(**settings.get("options", {}))
    lengths = check_lengths(spec.name, settings)
    judge = None
    if settings.get("judge") is not None:
        if spec.name == "alce_asqa":
            check_punkt()
        judge = NliJudge(settings["judge"], options.nli_max_new_tokens, options.nli_chat)
    text, where = demo_text(spec.name, settings)
    demos = read_demos(text, where)
    path = alce_file(spec.name, settings)
    return AlceTask(
        VARIANTS[spec.name], path, demos, lengths, options, judge, settings.get("samples"), settings.get("chat")
    )


def declare() -> list[TaskSpec]:
    """ASQA and QAMPARI; their official score (HELMET's Cite share) needs the NLI judge."""
    return [
        TaskSpec(
            v.name,
            "HELMET",
            v.description,
            Metric(
                f"mean of {v.correct}, citation_rec, citation_prec (citation judged)", aggregation="helmet_cite", **X100
            ),
            False,
            _factory,
            OfficialCode(REPO, "eval_alce.py", COMMIT),
            data=source(v.test),
            options=AlceOptions,
            answer_budget=BUDGET,
            aliases=(f"helmet_{v.name}",),
            average_group="HELMET Cite",
            summarize=alce_summary,
        )
        for v in VARIANTS.values()
    ]
