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
    rows = [
        {
            "question": "What does the nonlocal statement do?",
            "answers": ["binds names in the enclosing scope"],
            "doc": "pydoc:topics/nonlocal",
        }
    ]
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
    "array_jsonl": lambda d: _write(d / "array.jsonl", "[1, 2, 3]\n"),
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


# --- rag, eval: documents, QA sets, histories and indexes ------------------------------------------------------


def _index(d: Path, damage: str | None = None) -> Path:
    """A small real index (random unit vectors, no embedder needed); optionally with a damaged segment."""
    from longkit.rag.chunk import Chunk
    from longkit.rag.index import VectorIndex

    path = d / f"index-{damage or 'ok'}"
    rng = np.random.default_rng(0)
    chunks = [Chunk(f"doc{i // 2}", i % 2, 0, 9, 3, f"text {i}") for i in range(6)]
    vecs = rng.normal(size=(6, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    idx = VectorIndex.create(
        path,
        {"name": "all-minilm-l6-v2", "kind": "sentence-transformers", "dim": 384},
        {
            "size": 200,
            "overlap": 0,
            "unit": "token",
            "tolerance": 0.15,
            "tokenizer": "embedder",
            "on_overflow": "error",
        },
    )
    idx.add(chunks, vecs, {c.doc_id: f"h{c.doc_id}" for c in chunks})
    seg = path / "segments" / "000000.npy"
    if damage == "flipped":
        data = bytearray(seg.read_bytes())
        data[-5] ^= 0x10
        seg.write_bytes(bytes(data))
    elif damage == "truncated":
        seg.write_bytes(seg.read_bytes()[:-16])
    elif damage == "manifest":
        (path / "manifest.json").write_text('{"format": 1, "segments": [')
    return path


def _jsonl(p: Path, rows: list) -> Path:
    return _write(p, "".join(json.dumps(r) + "\n" for r in rows))


_DOC = "The pass statement is a null operation; nothing happens when it executes."

BUILDERS.update(
    {
        "doc_txt": lambda d: _write(d / "doc.txt", _DOC + "\n"),
        "nonutf8_txt": lambda d: _write(d / "latin1.txt", b"caf\xe9 au lait\n"),
        "nul_txt": lambda d: _write(d / "nul.txt", b"text\x00with a NUL byte\n"),
        "notext_dir": lambda d: (_write(d / "images" / "a.png", b"\x89PNG\r\n\x1a\n"), d / "images")[1],
        "docs_dir": lambda d: (_write(d / "mydocs" / "notes.txt", _DOC), d / "mydocs")[1],
        "notext_jsonl": lambda d: _jsonl(d / "notext.jsonl", [{"id": "a", "body": "no text field"}]),
        "blank_jsonl": lambda d: _jsonl(d / "blank.jsonl", [{"id": "a", "text": "   "}, {"id": "b", "text": ""}]),
        "rag_index": lambda d: _index(d),
        "flipped_index": lambda d: _index(d, "flipped"),
        "truncated_index": lambda d: _index(d, "truncated"),
        "bad_manifest_index": lambda d: _index(d, "manifest"),
        "qa_good": lambda d: _jsonl(
            d / "qa-good.jsonl",
            [{"id": "q1", "document": _DOC, "question": "What is pass?", "answers": ["a null operation"]}],
        ),
        "qa_no_answers": lambda d: _jsonl(d / "qa-noans.jsonl", [{"document": _DOC, "question": "q", "answers": []}]),
        "qa_dup_ids": lambda d: _jsonl(
            d / "qa-dup.jsonl",
            [
                {"id": "x", "document": _DOC, "question": "q", "answers": ["a"]},
                {"id": "x", "document": _DOC, "question": "r", "answers": ["b"]},
            ],
        ),
        "qa_bad_turns": lambda d: _jsonl(
            d / "qa-turns.jsonl",
            [{"document": _DOC, "answers": ["a"], "question": [{"role": "robot", "content": "hi"}]}],
        ),
        "qa_missing_doc": lambda d: _jsonl(
            d / "qa-missing.jsonl", [{"document_path": "nowhere.txt", "question": "q", "answers": ["a"]}]
        ),
        "qa_dir_doc": lambda d: (
            _write(d / "sub" / "x.txt", "x"),
            _jsonl(d / "qa-dirdoc.jsonl", [{"document_path": "sub", "question": "q", "answers": ["a"]}]),
        )[1],
        "qa_nonutf8_doc": lambda d: (
            _write(d / "latin1-doc.txt", b"caf\xe9\n"),
            _jsonl(d / "qa-latin.jsonl", [{"document_path": "latin1-doc.txt", "question": "q", "answers": ["a"]}]),
        )[1],
        "qa_nonutf8": lambda d: _write(
            d / "qa-latin1.jsonl",
            b'{"document": "x", "question": "q", "answers": ["a"]}\n'
            b'{"document": "caf\xe9", "question": "q", "answers": ["a"]}\n',
        ),
        "qa_bad_json": lambda d: _write(
            d / "qa-bad.jsonl", '{"document": "x", "question": "q", "answers": ["a"]}\n{"document": "x", "question": \n'
        ),
        "bad_json": lambda d: _write(d / "bad.json", '[{"role": "user", "content": "hi"'),
        "bad_role_json": lambda d: _write(d / "role.json", '[{"role": "robot", "content": "hi"}]'),
        "content_list_json": lambda d: _write(d / "content.json", '[{"role": "user", "content": ["hi"]}]'),
    }
)


# --- data, sft, model, train, demo: builders live in bad_inputs_data.py ---------------------------------------
from bad_inputs_data import DATA_BUILDERS, DATA_RERUN_BUILDERS, TRAIN_RERUN_BUILDERS  # noqa: E402

BUILDERS.update(DATA_BUILDERS)
BUILDERS.update(TRAIN_RERUN_BUILDERS)
BUILDERS.update(DATA_RERUN_BUILDERS)


def _index_with_manifest(d: Path, name: str, change) -> Path:  # noqa: ANN001
    path = _index(d)
    m = json.loads((path / "manifest.json").read_text())
    change(m)
    (path / "manifest.json").write_text(json.dumps(m))
    return path.rename(d / name)


BUILDERS.update(
    {
        "index_bad_segments": lambda d: _index_with_manifest(
            d, "index-bad-segments", lambda m: m["segments"][0].pop("rows")
        ),
        "index_bad_tuned": lambda d: _index_with_manifest(
            d, "index-bad-tuned", lambda m: m.update(tuned={"token_budget": "lots"})
        ),
        "index_no_segments_dir": lambda d: (lambda p: (__import__("shutil").rmtree(p / "segments"), p)[1])(_index(d)),
    }
)


def _fifo(p: Path) -> Path:
    import os

    os.mkfifo(p)
    return p


def _broken_link(p: Path) -> Path:
    p.symlink_to(p.parent / "link-target-that-does-not-exist.txt")
    return p


BUILDERS.update(
    {
        "fifo": lambda d: _fifo(d / "pipe.txt"),
        "broken_link": lambda d: _broken_link(d / "dangling.txt"),
    }
)

BUILDERS.update(
    {
        "suite_yaml": lambda d: _write(
            d / "suite.yaml",
            "models:\n  - {name: m, model: smollm2-135m-instruct}\n"
            "lengths: [512]\ntasks: [niah_single_1]\nout: runs/suite\n",
        ),
        "suite_no_models": lambda d: _write(d / "s.yaml", "models: []\nlengths: [512]\ntasks: [niah_single_1]\n"),
        "suite_missing_model": lambda d: _write(
            d / "s.yaml",
            "models: [{model: smollm2-135m-instruct}, "
            f"{{model: {d / 'no-such-model'}}}]\nlengths: [512]\ntasks: [vt]\n"
            f"out: {d / 'suite-out'}\n",
        ),
        "suite_no_tasks": lambda d: _write(d / "s.yaml", "lengths: [512]\ntasks: []\n"),
        "suite_zero_samples": lambda d: _write(d / "s.yaml", "lengths: [512]\nsamples: 0\ntasks: [vt]\n"),
        "suite_neg_length": lambda d: _write(d / "s.yaml", "lengths: [-512]\ntasks: [vt]\n"),
        "suite_task_neg_length": lambda d: _write(d / "s.yaml", "tasks: [{name: vt, lengths: [0]}]\n"),
        "suite_bad_option": lambda d: _write(
            d / "s.yaml", "lengths: [512]\ntasks: [{name: vt, options: {bogus: 1}}]\n"
        ),
        "suite_file_task_option": lambda d: _write(d / "s.yaml", "tasks: [{name: En.QA, options: {depths: [1]}}]\n"),
        "suite_unknown_task": lambda d: _write(d / "s.yaml", "lengths: [512]\ntasks: [niah_single_9]\n"),
        "suite_bad_workers": lambda d: _write(d / "s.yaml", "lengths: [512]\ntasks: [vt]\nworkers: 0\n"),
    }
)


# --- eval reruns: earlier outputs that another run's settings must not touch ---------------------------------

_SERVED = "{name: m, backend: openai, base_url: 'http://127.0.0.1:9/v1', model: %s}"


def _previous_needle_run(d: Path) -> Path:
    """A finished `eval passkey --lengths 512` output (run record, results, summary, report)."""
    out = d / "passkey-512"
    _write(
        out / "run.json", json.dumps({"task": {"name": "passkey"}, "grid": {"lengths": [512], "depths": [0, 50, 100]}})
    )
    _write(
        out / "results.jsonl", json.dumps({"key": "passkey/L512-D0", "task": "passkey", "scores": {"score": 1}}) + "\n"
    )
    _write(out / "report.md", "# passkey\n")
    return out


def _previous_suite(d: Path) -> Path:
    """A finished suite output of model `m` (served as old-model) at 512 tokens; the same bytes on every call."""
    out = d / "suite-prev"
    record = {
        "kind": "suite",
        "models": {"m": {"backend": "openai", "model": "old-model"}},
        "tasks": {"niah_single_1": {}},
        "lengths": [512],
    }
    _write(out / "run.json", json.dumps(record))
    _write(
        out / "m" / "niah_single_1" / "results.jsonl",
        json.dumps(
            {"key": "niah_single_1/L512-0", "task": "niah_single_1", "meta": {"length": 512}, "scores": {"score": 1}}
        )
        + "\n",
    )
    for name in ("report.md", "suite.json", "cache.json", "skipped.json"):
        _write(out / name, "[]\n" if name.endswith(".json") else "# old report\n")
    return out


def _suite_into_previous(d: Path, name: str, model: str, lengths: str) -> Path:
    _previous_suite(d)
    return _write(
        d / name, f"models: [{_SERVED % model}]\nlengths: {lengths}\ntasks: [niah_single_1]\nout: {d / 'suite-prev'}\n"
    )


BUILDERS.update(
    {
        "passkey_needle_yaml": lambda d: _write(d / "pk.yaml", "needles: ['The code is 7.']\n"),
        "niah_key_digits_yaml": lambda d: _write(d / "niah.yaml", "key_digits: 6\n"),
        "passkey_run_512": _previous_needle_run,
        "suite_prev_out": _previous_suite,
        "suite_changed_model": lambda d: _suite_into_previous(d, "changed.yaml", "new-model", "[512]"),
        "suite_longer_lengths": lambda d: _suite_into_previous(d, "longer.yaml", "old-model", "[100000]"),
        "suite_dup_models": lambda d: _write(
            d / "s.yaml", f"models: [{_SERVED % 'a'}, {_SERVED % 'b'}]\ntasks: [vt]\n"
        ),
        "suite_dup_tasks": lambda d: _write(d / "s.yaml", "lengths: [512]\ntasks: [vt, {name: vt, samples: 2}]\n"),
        "suite_passkey_needle": lambda d: _write(d / "s.yaml", "tasks: [{name: passkey, options: {needles: [x.]}}]\n"),
        "suite_unreachable": lambda d: _write(
            d / "s.yaml",
            "models: [{backend: openai, base_url: 'http://127.0.0.1:9/v1'}]"
            f"\nlengths: [512]\ntasks: [niah_single_1]\nout: {d / 'unreachable-out'}\n",
        ),
    }
)
