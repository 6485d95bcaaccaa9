"""ChatQA 2's long-context set: QMSum, Qasper and QuALITY from SCROLLS; MuSiQue, HotpotQA and
MultiFieldQA-en from LongBench; plus any other LongBench English dataset by its own name.

LongBench rows (THUDM/LongBench data/*.jsonl): `input`, `context`, `answers`, `length`, `dataset`,
`language`, `all_classes`, `_id`; prompts from config/dataset2prompt.json, budgets from
config/dataset2maxlen.json, QA scored with SQuAD token F1 (max over answers), summaries with ROUGE-L.
SCROLLS rows (tau/scrolls): `id`, `pid`, `input` (query or question+options followed by the
document), `output`; rows sharing an `id` are one sample with several references (SCROLLS's
drop_duplicates). QMSum is scored with SCROLLS's geometric mean of the corpus-averaged ROUGE-1/2/L,
Qasper with token F1, QuALITY with exact match (a lenient score that also accepts the option letter
is kept beside it, named 'lenient').
ChatQA 2 evaluates these at 32K tokens (`max_length: 32768`); LongBench's own prompts are cut in the
middle to its official 31,500-token budget for 32K models, SCROLLS's to what fits the window.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from longkit.errors import ConfigError
from longkit.eval.metrics import exact_match, longbench_rouge_l, normalize_answer, scrolls_rouge, token_f1
from longkit.eval.tasks.base import Sample
from longkit.eval.tasks.files import FileTask, file_kwargs, official_file, str_list
from longkit.eval.tasks.spec import DataSource, Metric, OfficialCode, TaskSpec
from longkit.io import iter_jsonl

# THUDM/LongBench config/dataset2prompt.json@f6227eb7a25cacbd96310aea2c59af003f8d8925, verbatim, typos included:
# narrativeqa's "asconcisely" (twice) is LongBench's own string, and the prompt a model is scored under
# (tests/eval/test_longbench_fidelity.py pins every English template against tests/eval/fixtures/longbench/).
LONGBENCH_PROMPTS = {
    "narrativeqa": (
        "You are given a story, which can be either a novel or a movie script, and a question. Answer "
        "the question asconcisely as you can, using a single phrase if possible. Do not provide any "
        "explanation.\n\nStory: {context}\n\nNow, answer the question based on the story asconcisely "
        "as you can, using a single phrase if possible. Do not provide any explanation.\n\nQuestion: "
        "{input}\n\nAnswer:"
    ),
    "qasper": (
        "You are given a scientific article and a question. Answer the question as concisely as you can, "
        "using a single phrase or sentence if possible. If the question cannot be answered based on the "
        'information in the article, write "unanswerable". If the question is a yes/no question, answer '
        '"yes", "no", or "unanswerable". Do not provide any explanation.\n\nArticle: {context}\n\n '
        "Answer the question based on the above article as concisely as you can, using a single phrase or "
        "sentence if possible. If the question cannot be answered based on the information in the article, "
        'write "unanswerable". If the question is a yes/no question, answer "yes", "no", or '
        '"unanswerable". Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:'
    ),
    "multifieldqa_en": (
        "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following "
        "question based on the above text, only give me the answer and do not output any other "
        "words.\n\nQuestion: {input}\nAnswer:"
    ),
    "hotpotqa": (
        "Answer the question based on the given passages. Only give me the answer and do not output any "
        "other words.\n\nThe following are given passages.\n{context}\n\nAnswer the question based on the "
        "given passages. Only give me the answer and do not output any other words.\n\nQuestion: {input}"
        "\nAnswer:"
    ),
    "gov_report": (
        "You are given a report by a government agency. Write a one-page summary of the report.\n\n"
        "Report:\n{context}\n\nNow, write a one-page summary of the report.\n\nSummary:"
    ),
    "qmsum": (
        "You are given a meeting transcript and a query containing a question or instruction. Answer the query "
        "in one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the query based on the above "
        "meeting transcript in one or more sentences.\n\nQuery: {input}\nAnswer:"
    ),
}
LONGBENCH_PROMPTS["2wikimqa"] = LONGBENCH_PROMPTS["hotpotqa"]
LONGBENCH_PROMPTS["musique"] = LONGBENCH_PROMPTS["hotpotqa"]
LONGBENCH_MAXLEN = {
    "narrativeqa": 128,
    "qasper": 128,
    "multifieldqa_en": 64,
    "hotpotqa": 32,
    "2wikimqa": 32,
    "musique": 32,
    "gov_report": 512,
    "qmsum": 512,
}
LONGBENCH_SUMMARY = ("gov_report", "qmsum")
# LongBench's truncation budget for 32K-window models (THUDM/LongBench config/model2maxlen.json, e.g.
# "chatglm2-6b-32k": 31500; pred.py cuts the prompt in the middle to it before the chat template).
LONGBENCH_32K_BUDGET = 31500

# SCROLLS feeds `input` (query first, then the document) as is; these instructions go before it.
SCROLLS_PROMPTS = {
    "qmsum": (
        "You are given a meeting transcript preceded by a query. Answer the query in one or more sentences."
        "\n\n{input}\n\nNow, answer the query above based on the transcript in one or more sentences.\nAnswer:"
    ),
    "qasper": (
        "You are given a question followed by a scientific article. Answer the question as concisely as you can, "
        "using a single phrase or sentence if possible. If the question cannot be answered based on the article, "
        'write "unanswerable". If it is a yes/no question, answer "yes", "no", or "unanswerable".'
        "\n\n{input}\n\nAnswer the question at the top as concisely as you can.\nAnswer:"
    ),
    "quality": (
        "You are given a multiple-choice question with its options followed by a story. Answer with the correct "
        "option, copied exactly.\n\n{input}\n\nAnswer the question at the top with the correct option.\nAnswer:"
    ),
}
SCROLLS_MAXLEN = {"qmsum": 512, "qasper": 128, "quality": 64}

_OPTION = re.compile(r"^\s*\(([A-D])\)\s*(.+?)\s*$", re.MULTILINE)


class LongBenchTask(FileTask):
    """A LongBench English dataset from its official JSONL file."""

    required = ("input", "context", "answers", "_id")

    def __init__(self, dataset: str, path: Any, **kwargs: Any):
        if dataset not in LONGBENCH_PROMPTS:
            raise ConfigError(f"unknown LongBench dataset '{dataset}' (known: {', '.join(sorted(LONGBENCH_PROMPTS))})")
        super().__init__(path, **kwargs)
        self.name = dataset
        self.max_new_tokens = LONGBENCH_MAXLEN[dataset]

    def check(self, row: dict[str, Any], lineno: int) -> None:
        """answers must be a non-empty list."""
        if not isinstance(row["answers"], list) or not row["answers"]:
            raise self.bad(lineno, "answers", "expected a non-empty list")

    def user_text(self, row: dict[str, Any]) -> str:
        """dataset2prompt.json's template."""
        return LONGBENCH_PROMPTS[self.name].format(context=row["context"], input=row["input"])

    def references(self, row: dict[str, Any]) -> list[str]:
        """The row's answers."""
        return str_list(row["answers"])

    def extra_meta(self, row: dict[str, Any]) -> dict[str, Any]:
        """The question (for judges) and LongBench's word-count length."""
        return {"question": row["input"], "words": row.get("length")}

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """LongBench's dataset2metric, max over answers: the `rouge` package's ROUGE-L F for summaries
        (longbench_rouge_l), else QA token F1 (THUDM/LongBench eval.py and metrics.py)."""
        if self.name in LONGBENCH_SUMMARY:
            return {"score": max(longbench_rouge_l(prediction, r) for r in sample.references)}
        return {"score": token_f1(prediction, sample.references)}


class ScrollsTask(FileTask):
    """QMSum, Qasper or QuALITY from SCROLLS's JSONL (id, pid, input, output)."""

    required = ("id", "pid", "input", "output")

    def __init__(self, dataset: str, path: Any, **kwargs: Any):
        if dataset not in SCROLLS_PROMPTS:
            raise ConfigError(f"unknown SCROLLS dataset '{dataset}' (known: {', '.join(SCROLLS_PROMPTS)})")
        super().__init__(path, **kwargs)
        self.name = dataset
        self.max_new_tokens = SCROLLS_MAXLEN[dataset]
        self._grouped: list[tuple[int, dict[str, Any]]] | None = None

    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        """Rows merged by id, every output kept as a reference (SCROLLS's duplicates)."""
        if self._grouped is None:
            by_id: dict[str, tuple[int, dict[str, Any]]] = {}
            for lineno, row in iter_jsonl(self.path, self.required):
                if not isinstance(row["output"], str):
                    raise self.bad(lineno, "output", "expected a string")
                rid = str(row["id"])
                if rid in by_id:
                    by_id[rid][1]["outputs"].append(row["output"])
                    continue
                if self.limit is not None and len(by_id) >= self.limit:
                    continue
                by_id[rid] = (lineno, {**row, "outputs": [row["output"]]})
            if not by_id:
                from longkit.errors import InputError

                raise InputError(f"{self.path}: no samples")
            self._grouped = list(by_id.values())
        return self._grouped

    def user_text(self, row: dict[str, Any]) -> str:
        """Instruction around SCROLLS's input."""
        return SCROLLS_PROMPTS[self.name].format(input=row["input"])

    def references(self, row: dict[str, Any]) -> list[str]:
        """All outputs of the id."""
        return list(row["outputs"])

    def extra_meta(self, row: dict[str, Any]) -> dict[str, Any]:
        """For QuALITY, the letter of the correct option."""
        if self.name != "quality":
            return {}
        options = {text.strip(): letter for letter, text in _OPTION.findall(row["input"])}
        letters = sorted({options[o.strip()] for o in row["outputs"] if o.strip() in options})
        return {"letters": letters}

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """SCROLLS's metrics: ROUGE geometric mean (QMSum; the reported score is the corpus-level one,
        metrics.scrolls_corpus_score over rouge1/rouge2/rougeL), token F1 (Qasper), exact match (QuALITY).

        QuALITY's reported score is SCROLLS's exact match (normalised option text); 'lenient' also accepts the
        bare option letter or '(B) text', which SCROLLS does not -- a separate, named number."""
        if self.name == "qmsum":
            r = scrolls_rouge(prediction, sample.references)
            return {"score": r["geometric_mean"], "rouge1": r["rouge1"], "rouge2": r["rouge2"], "rougeL": r["rougeL"]}
        if self.name == "qasper":
            return {"score": token_f1(prediction, sample.references)}
        em = exact_match(prediction, sample.references)
        pred = prediction.strip()
        m = re.match(r"^\(?([A-D])[).:\s]", pred + " ")
        letter = float(m is not None and m.group(1) in sample.meta.get("letters", []))
        text = float(
            any(
                normalize_answer(r) and normalize_answer(r) == normalize_answer(re.sub(r"^\(?[A-D][).:]\s*", "", pred))
                for r in sample.references
            )
        )
        return {"score": em, "exact_match": em, "lenient": max(em, letter, text)}


# ChatQA 2's 32K benchmark set: name -> (source, file candidates)
CHATQA2_32K = {
    "qmsum": "scrolls",
    "qasper": "scrolls",
    "quality": "scrolls",
    "musique": "longbench",
    "hotpotqa": "longbench",
    "multifieldqa_en": "longbench",
}


def scrolls_candidates(name: str) -> list[str]:
    """Where a SCROLLS dataset's file may sit under a data directory."""
    return [f"{name}.jsonl", f"{name}/validation.jsonl", f"{name}/test.jsonl", f"{name}_validation.jsonl"]


def longbench_candidates(name: str) -> list[str]:
    """Where a LongBench dataset's file may sit under a data directory."""
    return [f"{name}.jsonl", f"data/{name}.jsonl"]


def is_file(p: str | Path) -> bool:
    """Whether p is an existing file."""
    return Path(p).is_file()


# --- declarations (eval.tasks.spec) ------------------------------------------------------------------------------

_LONGBENCH_CODE = OfficialCode(
    "THUDM/LongBench", "config/dataset2prompt.json", "f6227eb7a25cacbd96310aea2c59af003f8d8925"
)
_SCROLLS_CODE = OfficialCode(
    "tau-nlp/scrolls", "evaluator/dataset_evaluator.py", "c672c8b457ad8003659ddf6b7985ddc7c46a277e"
)
_METRICS = {
    "qmsum": Metric("ROUGE-1/2/L geometric mean", aggregation="corpus_rouge_geomean", scale=100.0, scale_label="x100"),
    "qasper": Metric("token F1", scale=100.0, scale_label="x100"),
    "quality": Metric("exact match", scale=100.0, scale_label="x100"),
    "musique": Metric("token F1", scale=100.0, scale_label="x100"),
    "hotpotqa": Metric("token F1", scale=100.0, scale_label="x100"),
    "multifieldqa_en": Metric("token F1", scale=100.0, scale_label="x100"),
}


def _chatqa2_task(spec: TaskSpec, settings: dict[str, Any]) -> FileTask:
    scrolls = spec.extra["source"] == "scrolls"
    # LongBench's official budget for 32K models (config/model2maxlen.json: 31500); SCROLLS defines none
    kwargs = file_kwargs(settings, None if scrolls else LONGBENCH_32K_BUDGET)
    if kwargs["max_length"] is None:
        kwargs["max_length"] = 32768  # ChatQA 2 evaluates this set at 32K
    if scrolls:
        return ScrollsTask(spec.name, official_file(spec, settings, scrolls_candidates(spec.name)), **kwargs)
    return LongBenchTask(spec.name, official_file(spec, settings, longbench_candidates(spec.name)), **kwargs)


def declare() -> list[TaskSpec]:
    """ChatQA 2's 32K set: three SCROLLS datasets (validation split) and three LongBench ones."""
    specs = []
    for name, source in CHATQA2_32K.items():
        if source == "scrolls":  # SCROLLS zips hold <name>/{train,validation,test}.jsonl; scores are on validation
            data = DataSource("tau/scrolls", f"{name}.zip", f"{name}/validation.jsonl", setting="scrolls")
            bench, code, budget = "ChatQA 2 32K (SCROLLS)", _SCROLLS_CODE, SCROLLS_MAXLEN[name]
        else:  # LongBench's data.zip holds data/<dataset>.jsonl
            data = DataSource("THUDM/LongBench", "data.zip", f"data/{name}.jsonl", setting="longbench")
            bench, code, budget = "ChatQA 2 32K (LongBench)", _LONGBENCH_CODE, LONGBENCH_MAXLEN[name]
        src = "SCROLLS" if source == "scrolls" else "LongBench"
        specs.append(
            TaskSpec(
                name,
                bench,
                f"{name} from {src}",
                _METRICS[name],
                False,
                _chatqa2_task,
                code,
                data=data,
                answer_budget=budget,
                average_group="ChatQA 2 32K",
                extra={"source": source},
            )
        )
    return specs
