"""LV-Eval (Yuan et al., 2024): the English datasets at their five length levels (16k-256k).

Official files (huggingface.co/datasets/Infinigence/LVEval) are `{dataset}_{level}.jsonl` with
`input`, `context`, `answers`, `length`, `dataset`, `language`, `answer_keywords` (and
`confusing_facts` in some). Prompts and answer budgets come from LVEval's config.py; the score is
its keyword-recall-gated F1 against the first answer (qa_f1_score_with_gold_ans), plain F1 for
factrecall_en. The Chinese datasets need jieba and are not included.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from longkit.errors import ConfigError
from longkit.eval.metrics import lveval_f1, token_f1
from longkit.eval.tasks.base import Sample
from longkit.eval.tasks.files import FileTask, str_list
from longkit.eval.tasks.spec import DataSource, Metric, OfficialCode, TaskSpec

_ONE = (
    "Please answer the following question based on the given passages. Questions and answers are only relevant to "
    "one passage. Only give me the answer and do not output any other explanation and evidence.\n\nArticle: "
    "{context}\n\nPlease answer the following question based on the above passages. Questions and answers are only "
    "relevant to one passage. Only give me the answer and do not output any other explanation and evidence.\n\n"
    "Question: {input}\nAnswer:"
)
PROMPTS = {
    "hotpotwikiqa_mixup": (
        "Answer the question based on the given passages. Questions and answers are only relevant to "
        "some passages. Only give me the answer and do not output any other explanation and evidence."
        "\n\nArticle: {context}\n\nPlease answer the following question based on the above passages. "
        "Questions and answers are only relevant to some passages. Only give me the answer and do not "
        "output any other explanation and evidence.\n\nQuestion: {input}\nAnswer:"
    ),
    "loogle_SD_mixup": _ONE,
    "loogle_CR_mixup": _ONE,
    "loogle_MIR_mixup": _ONE,
    "multifieldqa_en_mixup": _ONE,
    "factrecall_en": (
        "Please answer the following questions based on the given article.\n\nArticle: {context}\n\n"
        "Please answer the following questions based on the above article.\n\nQuestion: {input}\nAnswer:"
    ),
}
MAXGEN = {name: (16 if name == "factrecall_en" else 64) for name in PROMPTS}
LEVELS = ("16k", "32k", "64k", "128k", "256k")


class LVEvalTask(FileTask):
    """One LV-Eval dataset at one or more length levels (one file per level)."""

    required = ("input", "context", "answers")

    def __init__(self, dataset: str, data: Any, levels: list[str] | None = None, **kwargs: Any):
        if dataset not in PROMPTS:
            raise ConfigError(f"unknown LV-Eval dataset '{dataset}' (known: {', '.join(PROMPTS)})")
        levels = levels or list(LEVELS)
        bad = [lv for lv in levels if lv not in LEVELS]
        if bad:
            raise ConfigError(f"LV-Eval levels {bad}: expected some of {', '.join(LEVELS)}")
        root = Path(data) if data else None
        if root is None:
            raise ConfigError(
                f"LV-Eval {dataset}: no data path given (set data.lveval to the directory of {dataset}_16k.jsonl ...)"
            )
        files = []
        for lv in levels:
            for cand in (root / f"{dataset}_{lv}.jsonl", root / dataset / f"{dataset}_{lv}.jsonl"):
                if cand.is_file():
                    files.append((lv, cand))
                    break
        if not files:
            from longkit.errors import InputError

            raise InputError(f"LV-Eval {dataset}: no {dataset}_<level>.jsonl files under {root}")
        super().__init__(files[0][1], **kwargs)
        self.files = files
        self.name = dataset
        self.max_new_tokens = MAXGEN[dataset]

    def fingerprint(self) -> dict[str, Any]:
        """Files and settings."""
        return {**super().fingerprint(), "files": [str(f) for _, f in self.files]}

    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        """Rows of every level's file, each tagged with its level."""
        if self._rows is None:
            from longkit.io import iter_jsonl

            rows = []
            for lv, path in self.files:
                count = 0
                for lineno, row in iter_jsonl(path, self.required):
                    if not isinstance(row["answers"], list) or not row["answers"]:
                        from longkit.errors import InputError

                        raise InputError(f"{path}:{lineno}: field 'answers': expected a non-empty list")
                    rows.append((lineno, {**row, "_level": lv, "_file": path.name}))
                    count += 1
                    if self.limit is not None and count >= self.limit:
                        break
            self._rows = rows
        return self._rows

    def row_id(self, row: dict[str, Any], lineno: int) -> str:
        """Level and line (LV-Eval rows carry no id)."""
        return f"{row['_level']}-{lineno}"

    def user_text(self, row: dict[str, Any]) -> str:
        """LVEval's config.py prompt."""
        return PROMPTS[self.name].format(context=row["context"], input=row["input"])

    def references(self, row: dict[str, Any]) -> list[str]:
        """The answers (only the first is scored, as in LVEval's evaluation.py)."""
        return str_list(row["answers"])

    def extra_meta(self, row: dict[str, Any]) -> dict[str, Any]:
        """Answer keywords for the gate, the question for judges."""
        return {"answer_keywords": row.get("answer_keywords"), "question": row["input"]}

    def length_of(self, row: dict[str, Any], tokens: int) -> Any:
        """LV-Eval's own length level, as tokens (16k -> 16384)."""
        return int(re.match(r"(\d+)k", row["_level"]).group(1)) * 1024  # type: ignore[union-attr]

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """Keyword-gated F1 against the first answer (plain F1 for factrecall_en)."""
        first = sample.references[0]
        if self.name == "factrecall_en":
            return {"score": token_f1(prediction, [first])}
        kw = sample.meta.get("answer_keywords")
        return {"score": lveval_f1(prediction, first, kw if isinstance(kw, str) else None)}


# --- declarations (eval.tasks.spec) ------------------------------------------------------------------------------

_CODE = OfficialCode("infinigence/LVEval", "config.py", "25aebcb36acbbb8338712736cfdd31e06e236df5")


def _lveval_task(spec: TaskSpec, settings: dict[str, Any]) -> LVEvalTask:
    root = settings.get("path") or settings.get("data", {}).get("lveval")
    if not root:
        from longkit.eval.fetch import fetch

        root = fetch(spec.name)
    return LVEvalTask(
        spec.name,
        root,
        levels=settings.get("levels"),
        limit=settings.get("samples"),
        max_length=settings.get("max_length"),
        chat=settings.get("chat"),
    )


def declare() -> list[TaskSpec]:
    """The English LV-Eval datasets at their five length levels (one zip each on the Hub)."""
    return [
        TaskSpec(
            name,
            "LV-Eval",
            f"{name} at 16k-256k",
            Metric("token F1" if name == "factrecall_en" else "keyword-gated F1", scale=100.0, scale_label="x100"),
            False,
            _lveval_task,
            _CODE,
            data=DataSource("Infinigence/LVEval", f"{name}.zip", ".", setting="lveval"),
            answer_budget=MAXGEN[name],
            average_group="LV-Eval",
        )
        for name in PROMPTS
    ]
