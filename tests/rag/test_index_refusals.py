"""A refused `rag index` run into an existing index leaves it byte-identical: bad inputs are all read before the
first write, and a setting that would change the index's results is refused in one line naming it."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from longkit.cli import app

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _tree(path):
    """SHA-256 of every file under path (hidden ones too), by relative path."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _one_line_error(res):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]  # other lines: the embedder's own loading bars
    assert errors == lines[-1:] and "Traceback" not in res.output, res.output
    return errors[0][len("error: ") :]


@pytest.fixture()
def built(tmp_path, topics):
    """A good index over three documents, and the directory they came from."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("pass", "del", "global"):
        (docs / f"{name}.txt").write_text(topics[name])
    ix = tmp_path / "ix"
    res = _invoke("rag", "index", docs, "--out", ix, "--chunk-size", "60")
    assert res.exit_code == 0, res.output
    return docs, ix


def test_a_bad_input_after_good_changed_ones_leaves_the_index_byte_identical(tmp_path, built, topics):
    docs, ix = built
    (docs / "pass.txt").write_text("The pass statement changed: the old code replaced it before meeting the bad file.")
    (docs / "zz-new.txt").write_text(topics["while"])  # new, and read before the bad one
    (docs / "zzz-latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    before = _tree(ix)
    msg = _one_line_error(_invoke("rag", "index", docs, "--out", ix, "--chunk-size", "60"))
    assert msg.endswith("zzz-latin1.txt:1: not valid UTF-8 (byte 0xe9); save the file as UTF-8")
    assert _tree(ix) == before
    rows = tmp_path / "rows.jsonl"  # a JSONL whose last row is bad: every row is read before the first write
    rows.write_text(json.dumps({"id": "a", "text": topics["while"]}) + "\n" + '{"id": "b", "text": \n')
    msg = _one_line_error(_invoke("rag", "index", docs / "pass.txt", rows, "--out", ix, "--chunk-size", "60"))
    assert msg.endswith("rows.jsonl:2: invalid JSON (Expecting value at column 21)") and _tree(ix) == before
    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(json.dumps({"id": "x", "text": t}) + "\n" for t in ("one", "two")))
    msg = _one_line_error(_invoke("rag", "index", docs / "pass.txt", dup, "--out", ix, "--chunk-size", "60"))
    assert msg == "document 'x': appears twice in the input with different text; expected each document id once"
    assert _tree(ix) == before
    (docs / "zzz-latin1.txt").unlink()  # fixed: the same run now goes through
    res = _invoke("rag", "index", docs, "--out", ix, "--chunk-size", "60")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{") :])["documents"] == 4


@pytest.mark.parametrize(
    ("option", "value", "old"),
    [
        ("--kind", "hnsw", "exact"),
        ("--chunk-size", "80", "60"),
        ("--overlap", "10", "0"),
        ("--unit", "word", "token"),
        ("--tolerance", "0.3", "0.15"),
        ("--on-overflow", "split", "error"),
        ("--max-tokens", "128", "256"),
    ],
)
def test_a_setting_that_changes_results_is_refused_naming_it(built, option, value, old):
    docs, ix = built
    before = _tree(ix)
    args = {"--chunk-size": "60", option: value}
    msg = _one_line_error(_invoke("rag", "index", docs, "--out", ix, *[x for kv in args.items() for x in kv]))
    assert msg == (
        f"{option}: this index was built with {old}, not {value}; use a new --out or "
        f"`longkit rag delete {ix} --all` to start fresh"
    )
    assert _tree(ix) == before


def test_another_embedder_is_refused_and_delete_all_starts_fresh(built, tiny_llama_dir):
    docs, ix = built
    before = _tree(ix)
    msg = _one_line_error(
        _invoke(
            "rag",
            "index",
            docs,
            "--out",
            ix,
            "--chunk-size",
            "60",
            "--embedder",
            f"decoder:{tiny_llama_dir}",
            "--max-tokens",
            "128",
        )
    )
    assert msg.startswith("--embedder: this index was built with all-minilm-l6-v2 (dim 384), not ")
    assert msg.endswith(f"(dim 64); use a new --out or `longkit rag delete {ix} --all` to start fresh")
    assert _tree(ix) == before
    assert "Missing argument" in _one_line_error(_invoke("rag", "delete", ix))  # no ids and no --all: nothing goes
    res = _invoke("rag", "delete", ix, "--all")
    assert res.exit_code == 0 and not ix.exists(), res.output
    res = _invoke("rag", "index", docs, "--out", ix, "--chunk-size", "60", "--kind", "hnsw")
    assert res.exit_code == 0, res.output
    assert json.loads((ix / "manifest.json").read_text())["kind"] == "hnsw"


def test_an_hnsw_index_refuses_kind_exact(tmp_path, topics):
    doc = tmp_path / "pass.txt"
    doc.write_text(topics["pass"])
    ix = tmp_path / "ix"
    assert _invoke("rag", "index", doc, "--out", ix, "--kind", "hnsw").exit_code == 0
    before = _tree(ix)
    msg = _one_line_error(_invoke("rag", "index", doc, "--out", ix))  # the default kind is exact
    assert msg.startswith("--kind: this index was built with hnsw, not exact; use a new --out")
    assert _tree(ix) == before
