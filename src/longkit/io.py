"""JSONL/JSON readers and writers, atomic writes and append-only result logs."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from longkit.errors import InputError


def iter_jsonl(path: str | Path, required: Iterable[str] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, row) from a JSONL file; a bad row raises InputError naming file and line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    required = tuple(required)
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            for field in required:
                if field not in row:
                    raise InputError(f"{path}:{lineno}: missing field '{field}'")
            yield lineno, row


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Read a whole JSONL file into a list of dicts (validated like iter_jsonl)."""
    return [row for _, row in iter_jsonl(path, required)]


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write text to path atomically (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes to path atomically (temp file in the same directory, fsync, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write obj as pretty JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as JSONL, atomically."""
    text = "".join(json.dumps(r, ensure_ascii=False, default=_json_default) + "\n" for r in rows)
    atomic_write_text(path, text)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class ResultLog:
    """Append-only JSONL log of per-sample results keyed by a stable string key.

    Each record is written with one write() + flush + fsync, so a crash (even SIGKILL) loses at most
    the record in flight; a torn last line is ignored on reopen and overwritten by the next append.
    """

    def __init__(self, path: str | Path, key_field: str = "key"):
        self.path = Path(path)
        self.key_field = key_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        good_bytes = 0
        with self.path.open("rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # torn write from a crash: drop it
                try:
                    rec = json.loads(raw)
                except json.JSONDecodeError:
                    break
                good_bytes += len(raw)
                if isinstance(rec, dict) and self.key_field in rec:
                    self._records[str(rec[self.key_field])] = rec
        if good_bytes != self.path.stat().st_size:
            with self.path.open("r+b") as fh:
                fh.truncate(good_bytes)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the record stored under key, if any."""
        return self._records.get(key)

    def records(self) -> list[dict[str, Any]]:
        """All records, in the order they were first written."""
        return list(self._records.values())

    def append(self, record: dict[str, Any]) -> None:
        """Append one record durably."""
        key = str(record[self.key_field])
        line = json.dumps(record, ensure_ascii=False, default=_json_default) + "\n"
        with self.path.open("ab") as fh:
            fh.write(line.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        self._records[key] = record
