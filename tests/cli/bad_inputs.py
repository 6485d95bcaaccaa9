"""Fixture files for the bad-input table: each name builds one file or directory a careless user might pass.

A case's argv names them as `{name}`; the harness builds each one once per test in tmp_path. Adding a kind of
bad file is one entry in BUILDERS; adding a case is one line in test_bad_inputs.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

NON_UTF8 = b"name: caf\xe9\n\xff\xfe broken\n"


def _write(p: Path, data: bytes | str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return p


def _qa(p: Path) -> Path:
    rows = [{"question": "What does the nonlocal statement do?", "answers": ["binds names in the enclosing scope"],
             "doc": "pydoc:topics/nonlocal"}]
    return _write(p, "".join(json.dumps(r) + "\n" for r in rows))


def _npz_truncated(p: Path) -> Path:
    import io

    buf = io.BytesIO()
    np.savez(buf, input_ids=np.arange(100, dtype=np.int32), labels=np.arange(100, dtype=np.int32))
    return _write(p, buf.getvalue()[: len(buf.getvalue()) // 2])


BUILDERS: dict[str, Callable[[Path], Path]] = {
    # generic files
    "missing": lambda d: d / "does-not-exist.yaml",
    "missing_dir": lambda d: d / "no-such-dir",
    "empty": lambda d: _write(d / "empty.txt", b""),
    "empty_dir": lambda d: (d / "empty-dir").mkdir() or d / "empty-dir",
    "a_file": lambda d: _write(d / "existing-file.txt", "I am a regular file, not a directory.\n"),
    # YAML configs
    "nonutf8_yaml": lambda d: _write(d / "nonutf8.yaml", NON_UTF8),
    "bad_yaml": lambda d: _write(d / "bad.yaml", "a: [1, 2\nb: 3\n"),
    "list_yaml": lambda d: _write(d / "list.yaml", "- 1\n- 2\n"),
    "unknown_key_yaml": lambda d: _write(d / "unknown.yaml", "no_such_field_anywhere: 1\n"),
    # JSON / JSONL
    "nonutf8_jsonl": lambda d: _write(d / "nonutf8.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n'),
    "bad_jsonl": lambda d: _write(d / "bad.jsonl", '{"text": "ok"}\n{"text": \n'),
    "array_jsonl": lambda d: _write(d / "array.jsonl", '[1, 2, 3]\n'),
    "nonutf8_json": lambda d: _write(d / "nonutf8.json", b'[{"role": "user", "content": "caf\xe9"}]'),
    "object_json": lambda d: _write(d / "object.json", '{"role": "user", "content": "hi"}'),
    "qa_jsonl": lambda d: _qa(d / "qa.jsonl"),
    # binary formats
    "zero_gguf": lambda d: _write(d / "zero.gguf", b""),
    "random_gguf": lambda d: _write(d / "random.gguf", np.random.default_rng(0).bytes(4096)),
    "truncated_npz": lambda d: _npz_truncated(d / "shard-00000.npz"),
    "zero_npy": lambda d: _write(d / "zero.npy", b""),
    "zero_npz": lambda d: _write(d / "empty.npz", b""),
}


def build(name: str, root: Path) -> Path:
    """Build fixture `name` under root (once) and return its path."""
    if name not in BUILDERS:
        raise KeyError(f"unknown bad-input fixture {{{name}}}; add it to BUILDERS")
    return BUILDERS[name](root)


def snapshot(path: Path) -> dict[str, bytes] | None:
    """The bytes of a file, or of every file under a directory (None when absent)."""
    if path.is_file():
        try:
            return {"": path.read_bytes()}
        except PermissionError:
            return {"": b"<unreadable>"}
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return None


# --- data, sft, model, train, demo: builders live in bad_inputs_data.py ---------------------------------------
from bad_inputs_data import DATA_BUILDERS  # noqa: E402

BUILDERS.update(DATA_BUILDERS)
