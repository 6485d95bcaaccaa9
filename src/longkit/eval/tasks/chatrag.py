"""ChatRAG Bench (Liu et al., ChatQA, 2024): conversational QA over given or retrieved contexts.

Official files (huggingface.co/datasets/nvidia/ChatRAG-Bench, data/<dataset>/*.json) are JSON lists
(JSONL is accepted too) of items with `messages` (user/assistant turns, the last from the user),
`answers` and `ctxs` (`title`, `text`); ConvFinQA items also carry `exe_answer`, the executed number
that is its gold answer. The prompt is ChatQA's (evaluation/dataset.py of the ChatQA evaluation scripts
in the nvidia/Llama3-ChatQA-1.5-8B Hub repository): the system line, the top-k contexts as
"title: ..., source: ...", the last 7 turns with the dataset's instruction -- before the first user turn
for the long-answer sets (ConvFinQA included), before the last user turn for TopiOCQA, SQA and CoQA --
then "Assistant:". The context is cut from its end when the prompt would not fit (as ChatQA
does). For the long-document sets (doc2dial, quac, qrecc, topiocqa, inscit) the contexts are the
top-5 chunks: the ones given in `ctxs`, or -- with `index:` set to a `longkit rag` index of the
documents -- the ones retrieved through `longkit.rag.pipeline` for the conversation.
Scores: ChatRAG's F1 (unanswerable handling for QuAC/DoQA/INSCIT), exact match for ConvFinQA. Turns
without any non-empty answer are left out, as the official mean leaves them out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.metrics import CHATRAG_NO_ANSWER, chatrag_f1, convfinqa_match
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.files import official_file
from longkit.eval.tasks.spec import DataSource, Metric, OfficialCode, TaskSpec

SYSTEM = (
    "System: This is a chat between a user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions based on the context. The assistant should also "
    "indicate when the answer cannot be found in the context."
)
LONG_ANSWER = "Please give a full and complete answer for the question. "
INSTRUCTIONS = {
    **{
        d: LONG_ANSWER
        for d in (
            "doc2dial",
            "quac",
            "qrecc",
            "inscit",
            "doqa_movies",
            "doqa_travel",
            "doqa_cooking",
            "hybridial",
            "convfinqa",
        )
    },
    "topiocqa": "Answer the following question with a short span, or a full and complete answer. ",
    "sqa": "Answer the following question with one or a list of items. ",
    "coqa": "Answer the following question with a short span. The answer needs to be just in a few words. ",
}
# reformat_question prefixes these sets' instruction to the LAST user turn (the others: the first user turn)
LAST_TURN = ("topiocqa", "sqa", "coqa")
LONG_DOCUMENT = ("doc2dial", "quac", "qrecc", "topiocqa", "inscit")
DATASETS = tuple(INSTRUCTIONS)
REPO = "nvidia/ChatRAG-Bench"
# ChatRAG Bench's own file list (get_scores.py's dataset_paths in the ChatQA evaluation scripts), under data/.
CHATRAG_FILES = {
    "convfinqa": "convfinqa/dev.json",
    "coqa": "coqa/dev.json",
    "doc2dial": "doc2dial/test.json",
    "doqa_cooking": "doqa/test_cooking.json",
    "doqa_movies": "doqa/test_movies.json",
    "doqa_travel": "doqa/test_travel.json",
    "hybridial": "hybridial/test.json",
    "inscit": "inscit/dev.json",
    "qrecc": "qrecc/test.json",
    "quac": "quac/test.json",
    "sqa": "sqa/test.json",
    "topiocqa": "topiocqa/dev.json",
}


def file_candidates(name: str) -> list[str]:
    """Where a dataset's file may sit under the ChatRAG Bench directory (the official layout first, e.g.
    doqa/test_cooking.json, with or without the repository's data/ folder)."""
    official = CHATRAG_FILES.get(name)
    first = [official, f"data/{official}"] if official else []
    return first + [
        f"{name}.json",
        f"{name}.jsonl",
        f"{name}/test.json",
        f"data/{name}/test.json",
        f"{name}/dev.json",
        f"data/{name}/dev.json",
    ]


def read_items(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, item) pairs from a JSON list or a JSONL file; `where` is 'item N' or 'line N'."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        return [(f"item {i}", d) for i, d in enumerate(data)]
    from longkit.io import iter_jsonl

    return [(f"line {n}", row) for n, row in iter_jsonl(path)]


class ChatRAGTask(Task):
    """One ChatRAG Bench dataset."""

    group_by = ("turns",)

    def __init__(
        self,
        dataset: str,
        path: str | Path,
        num_ctx: int | None = None,
        max_length: int = 4096,
        limit: int | None = None,
        index: str | None = None,
        max_new_tokens: int = 64,
    ):
        if dataset not in INSTRUCTIONS:
            raise ConfigError(f"unknown ChatRAG Bench dataset '{dataset}' (known: {', '.join(DATASETS)})")
        self.name = dataset
        self.path = Path(path)
        self.num_ctx = num_ctx or 5
        self.max_length = max_length  # ChatQA evaluates ChatRAG at a 4K window
        self.limit = limit
        self.index = index
        self.max_new_tokens = max_new_tokens
        self._items: list[tuple[str, dict[str, Any]]] | None = None
        self._pipeline: Any = None

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        """The validated items."""
        if self._items is None:
            items = []
            for where, item in read_items(self.path):
                for f in ("messages", "answers"):
                    if f not in item:
                        raise InputError(f"{self.path}: {where}: missing field '{f}'")
                if self.name == "convfinqa" and "exe_answer" not in item:
                    raise InputError(f"{self.path}: {where}: missing field 'exe_answer' (ConvFinQA's gold number)")
                if "ctxs" not in item and self.index is None:
                    raise InputError(
                        f"{self.path}: {where}: missing field 'ctxs' (or set 'index' to retrieve contexts)"
                    )
                msgs = item["messages"]
                if not isinstance(msgs, list) or not msgs or msgs[-1].get("role") != "user":
                    raise InputError(f"{self.path}: {where}: field 'messages': must end with a user turn")
                for m in msgs:
                    if m.get("role") not in ("user", "assistant") or "content" not in m:
                        raise InputError(
                            f"{self.path}: {where}: field 'messages': each turn needs role user|assistant and content"
                        )
                items.append((where, item))
                if self.limit is not None and len(items) >= self.limit:
                    break
            if not items:
                raise InputError(f"{self.path}: no items")
            self._items = items
        return self._items

    def fingerprint(self) -> dict[str, Any]:
        """File and prompt settings."""
        return {
            "name": self.name,
            "path": str(self.path),
            "num_ctx": self.num_ctx,
            "max_length": self.max_length,
            "index": self.index,
        }

    def answers(self, item: dict[str, Any]) -> list[str]:
        """The item's answers as strings."""
        return [str(a) for a in item["answers"]] if isinstance(item["answers"], list) else [str(item["answers"])]

    def scored(self, item: dict[str, Any]) -> bool:
        """Whether the official mean counts this item: ConvFinQA needs exe_answer, the rest a non-empty answer
        (after INSCIT's no-answer sentence is dropped)."""
        if self.name == "convfinqa":
            return True
        return chatrag_f1("", self.answers(item), self.name) is not None

    def plan(self) -> list[dict[str, Any]]:
        """One spec per item the official mean counts (items without an answer are left out, not scored 0)."""
        return [
            {"id": str(item.get("id", i)), "item": i} for i, (_, item) in enumerate(self.items()) if self.scored(item)
        ]

    def question(self, messages: list[dict[str, str]]) -> str:
        """ChatQA's reformat_question: last 7 turns, the instruction before the first user turn, or before the
        last one for TopiOCQA, SQA and CoQA."""
        turns = [dict(m) for m in messages[-7:]]
        if self.name in LAST_TURN:
            turns[-1]["content"] = INSTRUCTIONS[self.name] + turns[-1]["content"]
        else:
            for t in turns:
                if t["role"] == "user":
                    t["content"] = INSTRUCTIONS[self.name] + t["content"]
                    break
        return "\n\n".join(("User: " if t["role"] == "user" else "Assistant: ") + t["content"] for t in turns).strip()

    def contexts(self, item: dict[str, Any]) -> list[str]:
        """The item's top contexts as 'title: ..., source: ...' (retrieved when an index is set)."""
        if self.index is not None:
            if self._pipeline is None:
                # only retrieval is needed here (no generator): the RAG pipeline's retriever over the index
                from longkit.rag.retrieve import Retriever

                self._pipeline = Retriever.open(self.index)
            doc = item.get("document") or item.get("doc_id")
            hits = self._pipeline.search(item["messages"], k=self.num_ctx, doc_ids=[str(doc)] if doc else None)
            return [f"title: {h.chunk.doc_id}, source: {h.chunk.text}" for h in hits]
        k = self.num_ctx if self.name in LONG_DOCUMENT else max(self.num_ctx, 1)
        return [f"title: {c.get('title', '')}, source: {c.get('text', '')}" for c in item["ctxs"][:k]]

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """ChatQA's prompt, context cut from its end to fit min(window, max_length)."""
        where, item = self.items()[spec["item"]]
        question = self.question(item["messages"])
        context = "\n\n".join(self.contexts(item))
        window = min(max_context, self.max_length)
        room = window - self.max_new_tokens - tokenizer.count(SYSTEM) - tokenizer.count(question) - 8
        ids = tokenizer.encode(context)
        cut = len(ids) > room
        if cut:
            context = tokenizer.decode(ids[: max(room, 0)])
        prompt = SYSTEM + "\n\n" + context + "\n\n" + question + "\n\nAssistant:"
        answers = self.answers(item)
        turns = sum(1 for m in item["messages"] if m["role"] == "user")
        meta = {
            "turns": turns,
            "where": where,
            "context_cut": cut,
            "question": item["messages"][-1]["content"],
            "unanswerable": any(a == CHATRAG_NO_ANSWER for a in answers),
        }
        if self.name == "convfinqa":
            # get_scores.py's evaluate_convfinqa: gold = exe_answer (kept as its JSON number), formula = answers[0]
            meta["gold"] = item["exe_answer"]
            meta["formula"] = answers[0] if answers else ""
            answers = [str(item["exe_answer"])]
        return Sample(
            id=spec["id"],
            references=answers,
            prompt=prompt,
            meta=meta,
            max_new_tokens=self.max_new_tokens,
            stop=["\n\nUser:"],
        )

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """ChatRAG's F1 (0-1) or ConvFinQA exact match."""
        if self.name == "convfinqa":
            return {
                "score": convfinqa_match(
                    prediction,
                    sample.meta.get("gold", sample.references[0]),
                    sample.meta.get("formula", ""),
                    sample.meta.get("question", ""),
                )
            }
        f1 = chatrag_f1(prediction, sample.references, self.name)
        return {"score": 0.0 if f1 is None else f1}


# --- declarations (eval.tasks.spec) ------------------------------------------------------------------------------

# ChatQA's evaluation scripts ship in a Hub model repository without a pinned revision here.
_CODE = OfficialCode("hf:nvidia/Llama3-ChatQA-1.5-8B", "evaluation/dataset.py", None)


class ChatRAGOptions(BaseModel):
    """`options:` of a ChatRAG Bench task: how many contexts, and a `longkit rag` index to retrieve them from."""

    model_config = ConfigDict(extra="forbid")

    num_ctx: int | None = None
    index: str | None = None


def _chatrag_task(spec: TaskSpec, settings: dict[str, Any]) -> ChatRAGTask:
    opts = settings.get("options", {})
    return ChatRAGTask(
        spec.name,
        official_file(spec, settings, file_candidates(spec.name)),
        num_ctx=opts.get("num_ctx"),
        max_length=int(settings.get("max_length") or 4096),
        limit=settings.get("samples"),
        index=opts.get("index"),
    )


def declare() -> list[TaskSpec]:
    """ChatRAG Bench's datasets: F1, and exact match on the executed answer for ConvFinQA."""
    return [
        TaskSpec(
            name,
            "ChatRAG Bench",
            f"conversational QA ({name})",
            Metric("exact match" if name == "convfinqa" else "F1", scale=100.0, scale_label="x100"),
            False,
            _chatrag_task,
            _CODE,
            data=DataSource(REPO, f"data/{CHATRAG_FILES[name]}", setting="chatrag"),
            options=ChatRAGOptions,
            answer_budget=64,
            average_group="ChatRAG Bench",
        )
        for name in DATASETS
    ]
