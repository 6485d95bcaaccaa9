"""Reading documents to index: text files, directories, JSONL, and Python's own language reference."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from longkit.errors import InputError
from longkit.io import iter_jsonl

PYDOC_SOURCE = "pydoc:topics"
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".text", ".markdown", ".html", ".htm", ".py", ".tex", ".csv", ""}


def python_reference_text() -> str:
    """Python's language reference as shipped in `pydoc_data.topics`: every topic, sorted by name."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k].strip() for k in sorted(topics))


def doc_hash(text: str) -> str:
    """Content hash used to skip unchanged documents on re-indexing."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def read_text_file(path: Path) -> str:
    """UTF-8 text of a file; binary or undecodable files raise an error naming the file."""
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise InputError(f"{path}: binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def iter_documents(inputs: Sequence[str | Path]) -> Iterator[tuple[str, str]]:
    """Yield (doc_id, text) from files, directories (recursively, sorted), JSONL files with a 'text'
    field (and optional 'id'), and the special source 'pydoc:topics'."""
    for item in inputs:
        if str(item) == PYDOC_SOURCE:
            yield PYDOC_SOURCE, python_reference_text()
            continue
        p = Path(item)
        if not p.exists():
            raise InputError(f"{p}: file not found")
        files = sorted(f for f in p.rglob("*") if f.is_file() and not any(x.startswith(".") for x in f.relative_to(p).parts)) if p.is_dir() else [p]
        for f in files:
            if f.suffix == ".jsonl":
                for lineno, row in iter_jsonl(f, required=("text",)):
                    if not isinstance(row["text"], str):
                        raise InputError(f"{f}:{lineno}: field 'text' must be a string")
                    yield str(row.get("id", row.get("doc_id", f"{f}:{lineno}"))), row["text"]
            elif p.is_dir() and f.suffix.lower() not in TEXT_SUFFIXES:
                continue  # a directory may hold images etc.; files named explicitly are always read
            else:
                yield str(f), read_text_file(f)


def resolve_document(row: dict, base: Path, where: str) -> str:
    """The document text of a QA row: 'document' inline, or 'document_path' (relative to the QA file,
    or 'pydoc:topics')."""
    if isinstance(row.get("document"), str):
        if not row["document"].strip():
            raise InputError(f"{where}: field 'document' is empty")
        return row["document"]
    path = row.get("document_path")
    if not isinstance(path, str):
        raise InputError(f"{where}: needs a 'document' or a 'document_path' field")
    if path == PYDOC_SOURCE:
        return python_reference_text()
    p = Path(path)
    if not p.is_absolute():
        p = base / p
    if not p.exists():
        raise InputError(f"{where}: document_path '{path}' not found")
    text = read_text_file(p)
    if not text.strip():
        raise InputError(f"{where}: document '{p}' is empty")
    return text
