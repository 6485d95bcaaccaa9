"""The QA sets the RAG-versus-long-context sweep reads: `{document | document_path, question, answers[, id]}` rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from longkit.errors import ConfigError, InputError
from longkit.io import iter_jsonl
from longkit.rag.sources import doc_hash, resolve_document


@dataclass
class QAItem:
    """One question about one document."""

    id: str
    question: str | list[dict[str, str]]
    answers: list[str]
    document: str

    @property
    def doc_id(self) -> str:
        """Stable id of the document (its content hash)."""
        return "doc-" + doc_hash(self.document)[:16]


def load_qa(path: str | Path, limit: int | None = None) -> list[QAItem]:
    """Read `{document | document_path, question, answers[, id]}` rows; errors name file and line."""
    from longkit.rag.prompt import as_messages

    path = Path(path)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit: expected a positive number of questions, got {limit}")
    items: list[QAItem] = []
    docs: dict[str, str] = {}
    seen: dict[str, int] = {}
    for lineno, row in iter_jsonl(path, required=("question", "answers")):
        where = f"{path}:{lineno}"
        q = row["question"]
        if not (isinstance(q, str) and q.strip()) and not (isinstance(q, list) and q):
            raise InputError(f"{where}: field 'question' must be a non-empty string or a list of messages")
        if isinstance(q, list):
            if not all(isinstance(m, dict) for m in q):
                raise InputError(f"{where}: field 'question': every message must be an object {{role, content}}")
            try:
                as_messages(q)
            except InputError as exc:
                raise InputError(f"{where}: field 'question': {exc}") from None
        qid = str(row.get("id", f"{path.name}:{lineno}"))
        if qid in seen:
            raise InputError(f"{where}: field 'id': '{qid}' already used on line {seen[qid]}; ids must be unique")
        seen[qid] = lineno
        answers = row["answers"]
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
            raise InputError(f"{where}: field 'answers' must be a non-empty list of strings")
        key = row.get("document_path") if isinstance(row.get("document_path"), str) else None
        if key is not None and key in docs:
            text = docs[key]
        else:
            text = resolve_document(row, path.parent, where)
            if key is not None:
                docs[key] = text
        items.append(QAItem(qid, q, answers, text))
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise InputError(f"{path}: no questions")
    return items
