"""LongBench v2 (Bai et al., 2024): 503 four-choice questions over 8K-2M-word contexts, as THUDM/LongBench's v2
code asks and scores them (pred.py and prompts/*.txt at c5ea10bcd06285223c58dfed76bbc92d22273709, result.py at
072a5a739b05ab3c98ff1ea922c5293ebe317b75).

Data: `THUDM/LongBench-v2` `data.json` (a JSON array; fields `_id`, `domain`, `sub_domain`, `difficulty`
easy|hard, `length` short|medium|long, `question`, `choice_A`..`choice_D`, `answer` A-D, `context`).

Modes (option `mode`), each the official template:
- `direct` (prompts/0shot.txt, 128 answer tokens);
- `cot`: two passes, the reasoning (prompts/0shot_cot.txt, 1024 tokens) and then the answer extraction
  (prompts/0shot_cot_ans.txt, 128 tokens, the reasoning in place of the omitted text); a question whose
  reasoning comes back empty is dropped, as pred.py drops it;
- `no_context`: the memorisation control (prompts/0shot_no_context.txt, 128 tokens);
- `rag`: pred.py --rag N (prompts/0shot_rag.txt, 128 tokens): the top N chunks retrieved for the question, put
  back in document order (pred.py sorts by `c_idx`) as "Retrieved chunk i: ..." joined by blank lines. The
  official retrieved chunks are not in the Hub release; longkit retrieves them itself: the context cut into
  `chunk_size`-token chunks of the model's tokenizer (512 by default), embedded with `embedder` (the bundled
  all-MiniLM-L6-v2 by default), the question as the query.

The template is filled with chained string replacements in pred.py's order ($DOC$, $Q$, $C_A$-$C_D$, then
$COT$), so a placeholder inside a document is replaced as the official code replaces it. The answer is the
letter of "The correct answer is (X)" or "... is X" after removing '*' (extract_answer); no letter scores 0.
Accuracy is reported overall, by difficulty and by length category as result.py reports them (x100). Two
differences, said here: longkit decodes greedily where pred.py samples at temperature 0.1, and result.py's
medium bucket never fills (its `elif` tests "short" twice, so medium questions count as long); longkit
reports medium as the data labels it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from longkit.backends.base import Backend, TextTokenizer
from longkit.errors import InputError
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.files import FileTask, file_kwargs, official_file
from longkit.eval.tasks.spec import X100, DataSource, Metric, OfficialCode, TaskSpec

_CODE = OfficialCode("THUDM/LongBench", "pred.py", "c5ea10bcd06285223c58dfed76bbc92d22273709")
_DATA = DataSource("THUDM/LongBench-v2", "data.json", setting="longbench_v2")

# prompts/*.txt verbatim (the files end without a newline; 0shot_cot's "Let’s" has a typographic apostrophe)
TEMPLATES = {
    "direct": 'Please read the following text and answer the question below.\n\n<text>\n$DOC$\n</text>\n\nWhat is the correct answer to this question: $Q$\nChoices:\n(A) $C_A$\n(B) $C_B$\n(C) $C_C$\n(D) $C_D$\n\nFormat your response as follows: "The correct answer is (insert answer here)".',
    "cot": "Please read the following text and answer the questions below.\n\n<text>\n$DOC$\n</text>\n\nWhat is the correct answer to this question: $Q$\nChoices:\n(A) $C_A$\n(B) $C_B$\n(C) $C_C$\n(D) $C_D$\n\nLet’s think step by step:",
    "cot_answer": 'Please read the following text and answer the questions below.\n\nThe text is too long and omitted here.\n\nWhat is the correct answer to this question: $Q$\nChoices:\n(A) $C_A$\n(B) $C_B$\n(C) $C_C$\n(D) $C_D$\n\nLet’s think step by step: $COT$\n\nBased on the above, what is the single, most likely answer choice? Format your response as follows: "The correct answer is (insert answer here)".',
    "rag": 'Please read the following retrieved text chunks and answer the question below.\n\n<text>\n$DOC$\n</text>\n\nWhat is the correct answer to this question: $Q$\nChoices:\n(A) $C_A$\n(B) $C_B$\n(C) $C_C$\n(D) $C_D$\n\nFormat your response as follows: "The correct answer is (insert answer here)".',
    "no_context": 'What is the correct answer to this question: $Q$\nChoices:\n(A) $C_A$\n(B) $C_B$\n(C) $C_C$\n(D) $C_D$\n\nWhat is the single, most likely answer choice? Format your response as follows: "The correct answer is (insert answer here)".',
}
# pred.py: max_new_tokens 1024 for the reasoning pass, 128 for every answer
BUDGETS = {"direct": 128, "cot": 1024, "cot_answer": 128, "no_context": 128, "rag": 128}
REQUIRED = (
    "_id",
    "difficulty",
    "length",
    "question",
    "choice_A",
    "choice_B",
    "choice_C",
    "choice_D",
    "answer",
    "context",
)


def fill(template: str, row: dict[str, Any], reasoning: str = "") -> str:
    """pred.py's chained replacements, in its order."""
    return (
        template.replace("$DOC$", str(row["context"]).strip())
        .replace("$Q$", str(row["question"]).strip())
        .replace("$C_A$", str(row["choice_A"]).strip())
        .replace("$C_B$", str(row["choice_B"]).strip())
        .replace("$C_C$", str(row["choice_C"]).strip())
        .replace("$C_D$", str(row["choice_D"]).strip())
        .replace("$COT$", reasoning)
    )


def extract_answer(response: str) -> str | None:
    """pred.py's extract_answer: the letter of 'The correct answer is (X)', else of '... is X', '*' removed."""
    response = response.replace("*", "")
    match = re.search(r"The correct answer is \(([A-D])\)", response) or re.search(
        r"The correct answer is ([A-D])", response
    )
    return match.group(1) if match else None


class LongBenchV2Options(BaseModel):
    """`options:` of longbench_v2."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["direct", "cot", "no_context", "rag"] = "direct"
    rag_chunks: int = Field(8, ge=1)  # rag: N, the chunks retrieved per question
    chunk_size: int = Field(512, ge=16)  # rag: tokens per chunk
    embedder: str = "all-minilm-l6-v2"  # rag: the retriever's embedder


class LongBenchV2Task(FileTask):
    """One pass of LongBench v2 in one mode (cot_answer: the answer pass over a reasoning pass's responses)."""

    required = REQUIRED
    group_by = ("length", "difficulty")

    def __init__(
        self,
        path: str | Path,
        mode: str = "direct",
        reasoning: dict[str, str] | None = None,
        rag: LongBenchV2Options | None = None,
        **kwargs: Any,
    ):
        super().__init__(path, **kwargs)
        self.name = "longbench_v2"
        self.mode = mode
        self.max_new_tokens = BUDGETS[mode]
        self.reasoning = reasoning or {}
        self.rag = rag or LongBenchV2Options(mode="rag")
        self._tokenizer: TextTokenizer | None = None
        self._embedder: Any = None

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """FileTask's build; the rag mode chunks with this model's tokenizer."""
        self._tokenizer = tokenizer
        return super().build(spec, tokenizer, max_context)

    def retrieved(self, row: dict[str, Any]) -> str:
        """pred.py's RAG context: the top chunks for the question, in document order, numbered."""
        import numpy as np

        from longkit.rag.chunk import ChunkConfig, chunk_document
        from longkit.rag.embed import load_embedder

        if self._embedder is None:
            self._embedder = load_embedder(self.rag.embedder)
        hf = getattr(self._tokenizer, "hf", self._tokenizer)
        chunks = chunk_document(str(row["context"]), str(row["_id"]), ChunkConfig(size=self.rag.chunk_size), hf)
        docs = self._embedder.embed_documents([c.text for c in chunks], pool_long=True)
        query = self._embedder.embed_queries([str(row["question"])])[0]
        top = np.argsort(-(docs @ query), kind="stable")[: self.rag.rag_chunks]
        kept = sorted((chunks[i] for i in top), key=lambda c: c.position)
        return "\n\n".join(f"Retrieved chunk {i + 1}: {c.text}" for i, c in enumerate(kept))

    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        """data.json's items (a JSON array; numbered from 1 as 'line' in messages), or JSONL rows."""
        if self._rows is None and self.path.suffix == ".json":
            self._rows = self._array_rows()
        return super().rows()

    def _array_rows(self) -> list[tuple[int, dict[str, Any]]]:
        from longkit.io import read_text

        try:
            items = json.loads(read_text(self.path, "LongBench v2 data"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{self.path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(items, list):
            raise InputError(f"{self.path}: expected a JSON array of questions, got {type(items).__name__}")
        rows = []
        for i, row in enumerate(items, start=1):
            if not isinstance(row, dict):
                raise InputError(f"{self.path}: item {i}: expected an object, got {type(row).__name__}")
            missing = next((f for f in REQUIRED if f not in row), None)
            if missing:
                raise InputError(f"{self.path}: item {i}: missing field '{missing}'")
            self.check(row, i)
            rows.append((i, row))
            if self.limit is not None and len(rows) >= self.limit:
                break
        if not rows:
            raise InputError(f"{self.path}: no samples")
        return rows

    def check(self, row: dict[str, Any], lineno: int) -> None:
        """The answer is one of A-D."""
        if row["answer"] not in ("A", "B", "C", "D"):
            raise self.bad(lineno, "answer", f"expected one of A, B, C, D, got {row['answer']!r}")

    def plan(self) -> list[dict[str, Any]]:
        """Every question; the answer pass only those whose reasoning came back."""
        specs = super().plan()
        if self.mode == "cot_answer":
            specs = [s for s in specs if self.reasoning.get(s["id"], "").strip()]
        return specs

    def user_text(self, row: dict[str, Any]) -> str:
        """The mode's official template (the reasoning of the first pass in the answer pass)."""
        reasoning = self.reasoning.get(str(row["_id"]), "").strip()
        if self.mode == "rag":
            return fill(TEMPLATES["rag"], {**row, "context": self.retrieved(row)})
        return fill(TEMPLATES[self.mode], row, reasoning)

    def references(self, row: dict[str, Any]) -> list[str]:
        """The correct letter."""
        return [str(row["answer"])]

    def length_of(self, row: dict[str, Any], tokens: int) -> Any:
        """LongBench v2's own length category (short | medium | long), as result.py groups."""
        return row["length"]

    def extra_meta(self, row: dict[str, Any]) -> dict[str, Any]:
        """Difficulty and domain for the breakdowns; the question for judges."""
        return {"difficulty": row["difficulty"], "domain": row.get("domain"), "question": row["question"]}

    def fingerprint(self) -> dict[str, Any]:
        """The file task's settings and the mode."""
        fp = {**super().fingerprint(), "mode": self.mode}
        if self.mode == "rag":
            fp["rag"] = {
                "chunks": self.rag.rag_chunks,
                "chunk_size": self.rag.chunk_size,
                "embedder": self.rag.embedder,
            }
        return fp

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """1 when the extracted letter is the answer (pred.py's judge); 'answered' when any letter was found."""
        pred = extract_answer(prediction.strip())
        return {"score": float(pred == sample.references[0]), "answered": float(pred is not None)}


def _task(spec: TaskSpec, settings: dict[str, Any], mode: str, reasoning: dict[str, str] | None = None) -> Task:
    path = official_file(spec, settings, ["data.json", "longbench_v2.jsonl"])
    options = LongBenchV2Options(**settings.get("options", {}))
    return LongBenchV2Task(path, mode=mode, reasoning=reasoning, rag=options, **file_kwargs(settings))


def _factory(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    return _task(spec, settings, LongBenchV2Options(**settings.get("options", {})).mode)


def _run(
    spec: TaskSpec,
    settings: dict[str, Any],
    backend: Backend,
    out_dir: Path,
    *,
    model_name: str = "",
    batch_size: int = 1,
    progress: bool = True,
    on_first_write: Callable[[], None] | None = None,
    **_: object,
) -> dict[str, Any]:
    """direct and no_context: one pass. cot: the reasoning pass into out_dir/reasoning, then the answer pass."""
    from longkit.eval.runner import run_task
    from longkit.io import ResultLog

    mode = LongBenchV2Options(**settings.get("options", {})).mode
    if mode != "cot":
        return run_task(
            _task(spec, settings, mode),
            backend,
            out_dir,
            batch_size=batch_size,
            progress=progress,
            model_name=model_name,
            on_first_write=on_first_write,
        )
    first = _task(spec, settings, "cot")
    run_task(
        first,
        backend,
        out_dir / "reasoning",
        batch_size=batch_size,
        progress=progress,
        model_name=model_name,
        on_first_write=on_first_write,
    )
    reasoning = {
        str(r["key"]).split("/", 1)[1]: str(r.get("prediction", ""))
        for r in ResultLog(out_dir / "reasoning" / "results.jsonl").records()
    }
    return run_task(
        _task(spec, settings, "cot_answer", reasoning),
        backend,
        out_dir,
        batch_size=batch_size,
        progress=progress,
        model_name=model_name,
    )


def declare() -> list[TaskSpec]:
    """longbench_v2, in the mode its options choose."""
    return [
        TaskSpec(
            "longbench_v2",
            "LongBench v2",
            "four-choice questions over 8K-2M-word contexts",
            Metric("accuracy", **X100),
            False,
            _factory,
            _CODE,
            data=_DATA,
            options=LongBenchV2Options,
            answer_budget=128,
            aliases=("LongBench-v2",),
            run=_run,
            extra={"report_by": ("difficulty",)},
        )
    ]
