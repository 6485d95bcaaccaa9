"""JSONL/JSON readers and writers, atomic writes and append-only result logs."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from longkit.errors import InputError


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """Read a whole file, gunzipped when its name ends in .gz (Hub corpora often ship as .jsonl.gz); a missing,
    unreadable, directory or damaged gzip path raises InputError naming it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: {what} not found")
    if path.is_dir():
        raise InputError(f"{path}: expected a {what}, got a directory")
    try:
        data = path.read_bytes()
    except PermissionError:
        raise InputError(f"{path}: {what} is not readable (permission denied)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    return gunzip(data, path) if path.suffix == ".gz" else data


def gunzip(data: bytes, path: str | Path) -> bytes:
    """The decompressed content of a .gz file; a file that is not gzip, or is cut short, is named in one line."""
    import gzip
    import zlib

    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a readable gzip file ({exc}); decompress it, or fix the download") from None


def decode_utf8(data: bytes, path: str | Path) -> str:
    """Decode UTF-8 (a leading BOM is dropped); bad bytes raise InputError naming file and line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None


def read_text(path: str | Path, what: str = "file") -> str:
    """Read a UTF-8 text file with one-line errors for missing, unreadable and non-UTF-8 files."""
    return decode_utf8(read_bytes(path, what), path)


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parse a JSON file; bad JSON raises InputError naming file, line and column."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None


def iter_jsonl(path: str | Path, required: Iterable[str] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, row) from a JSONL file; a bad row raises InputError naming file and line."""
    path = Path(path)
    data = read_bytes(path, "JSONL file")
    required = tuple(required)
    for lineno, raw in enumerate(data.splitlines(), start=1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
            ) from None
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


def output_dir(path: str | Path, option: str = "--out") -> Path:
    """Check that path can be used as an output directory (absent or a directory) and create it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: exists and is not a directory; choose a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{option} {path}: a parent of it is a file, not a directory") from None
    except NotADirectoryError:
        raise InputError(f"{option} {path}: a parent of it is a file, not a directory") from None
    except PermissionError:
        raise InputError(f"{option} {path}: cannot create it (permission denied)") from None
    if not os.access(path, os.W_OK):
        raise InputError(f"{option} {path}: directory is not writable")
    return path


def output_file(path: str | Path, option: str = "--out") -> Path:
    """Check that path can be written as a file (absent or a regular file, parent creatable)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory; expected a file path")
    output_dir(path.parent if str(path.parent) else Path("."), option)
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    import hashlib

    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Read a whole JSONL file into a list of dicts (validated like iter_jsonl)."""
    return [row for _, row in iter_jsonl(path, required)]


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write text to path atomically (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes to path atomically (temp file in the same directory, fsync, then rename)."""
    with atomic_writer(path, binary=True) as fh:
        fh.write(data)


@contextlib.contextmanager
def atomic_writer(path: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A file to write that appears at `path` only when the block ends without an error (temp file in the same
    directory, fsync, then rename); an error leaves nothing behind. Text mode writes UTF-8."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~current_umask())  # mkstemp makes 0600; outputs follow the umask
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@functools.lru_cache(maxsize=1)
def current_umask() -> int:
    """The process umask, read once (reading it means setting it, which is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
        if self.path.is_dir():
            raise InputError(f"{self.path}: expected a results file, got a directory")
        data = self.path.read_bytes()
        good_bytes = 0
        lines = data.split(b"\n")
        # the last element is b"" when the file ends with a newline, else the torn tail of a crashed write
        for lineno, raw in enumerate(lines[:-1], start=1):
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if lineno == len(lines) - 1 and lines[-1] == b"":
                    # a complete-looking last line that is not JSON: a torn write whose newline landed
                    break
                raise InputError(
                    f"{self.path}:{lineno}: garbled result line (not JSON); fix or remove that "
                    "line, or start fresh with another --out"
                ) from None
            good_bytes += len(raw) + 1
            if isinstance(rec, dict) and self.key_field in rec:
                self._records[str(rec[self.key_field])] = rec
        if good_bytes != len(data):
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
