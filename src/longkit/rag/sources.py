"""Reading documents to index: text files, directories, JSONL, and Python's own language reference."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from longkit.errors import InputError, located
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
    """UTF-8 text of a file; missing, unreadable, binary or undecodable files raise an error naming the file."""
    from longkit.io import decode_utf8, read_bytes

    data = read_bytes(path, "document")
    if b"\x00" in data[:8192]:
        raise InputError(f"{path}: binary file (NUL bytes), not text")
    return decode_utf8(data, path)


def list_sources(inputs: Sequence[str | Path], exclude: Path | None = None) -> list[Path | str]:
    """The files (and 'pydoc:topics') that `iter_documents` will read, checked before any is read.

    Missing paths, unreadable files and inputs that hold no readable document raise an error naming
    the input, so an indexing run fails before it loads a model or writes anything. Files under `exclude`
    (the index being written, when it lies inside an input directory) are not documents."""
    import os

    skip = exclude.resolve() if exclude is not None else None

    if not inputs:
        raise InputError("no documents given")
    out: list[Path | str] = []
    for item in inputs:
        if str(item) == PYDOC_SOURCE:
            out.append(PYDOC_SOURCE)
            continue
        p = Path(item)
        if not p.exists():
            raise InputError(f"{p}: file not found")
        if p.is_dir():
            if not os.access(p, os.R_OK | os.X_OK):
                raise InputError(f"{p}: directory is not readable (permission denied)")
            files = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and not any(x.startswith(".") for x in f.relative_to(p).parts)
                and (f.suffix == ".jsonl" or f.suffix.lower() in TEXT_SUFFIXES)
                and not (skip is not None and f.resolve().is_relative_to(skip))
            )
            if not files:
                suffixes = ", ".join(sorted(x for x in TEXT_SUFFIXES if x))
                raise InputError(
                    f"{p}: no documents in this directory (text files {suffixes}, or .jsonl with a 'text' field)"
                )
        else:
            files = [p]
        for f in files:
            if not f.is_file():  # a FIFO or device would block or never end
                raise InputError(f"{f}: not a regular file")
            if not os.access(f, os.R_OK):
                raise InputError(f"{f}: document is not readable (permission denied)")
        out.extend(files)
    return out


def iter_documents(inputs: Sequence[str | Path], exclude: Path | None = None) -> Iterator[tuple[str, str]]:
    """Yield (doc_id, text) from files, directories (recursively, sorted), JSONL files with a 'text'
    field (and optional 'id'), and the special source 'pydoc:topics'.

    A file's id is its resolved path, so a symlink, a relative path or `./` name the same document."""
    for f in list_sources(inputs, exclude):
        if f == PYDOC_SOURCE:
            yield PYDOC_SOURCE, python_reference_text()
            continue
        assert isinstance(f, Path)
        if f.suffix == ".jsonl":
            for lineno, row in iter_jsonl(f, required=("text",)):
                if not isinstance(row["text"], str):
                    raise InputError(f"{f}:{lineno}: field 'text' must be a string")
                doc_id = row.get("id", row.get("doc_id", f"{f.resolve()}:{lineno}"))
                if not isinstance(doc_id, (str, int)):
                    raise InputError(f"{f}:{lineno}: field 'id' must be a string")
                yield str(doc_id), row["text"]
        else:
            yield str(f.resolve()), read_text_file(f)


def resolve_document(row: dict[str, Any], base: Path, where: str | None = None) -> str:
    """A QA row's document: 'document' inline, or 'document_path' (relative to base, or 'pydoc:topics')."""
    with located(where):  # the row's file:line, for errors about the row's own fields
        found = _document_source(row, base)
    if isinstance(found, str):
        return found
    text = read_text_file(found)  # its errors name the document's own file
    if not text.strip():
        with located(where):
            raise InputError(f"document '{found}' is empty")
    return text


def _document_source(row: dict[str, Any], base: Path) -> str | Path:
    """The inline text of a QA row's document, or the path of its existing file."""
    doc = row.get("document")
    if isinstance(doc, str):
        if not doc.strip():
            raise InputError("field 'document' is empty")
        return doc
    path = row.get("document_path")
    if not isinstance(path, str):
        raise InputError("needs a 'document' or a 'document_path' field")
    if path == PYDOC_SOURCE:
        return python_reference_text()
    p = Path(path)
    if not p.is_absolute():
        p = base / p
    if not p.exists():
        raise InputError(f"document_path '{path}' not found")
    if not p.is_file():
        raise InputError(f"document_path '{path}' is not a regular file; expected a text file")
    return p
