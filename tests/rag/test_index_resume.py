"""`--commit-every` counts chunks, so one long document is committed in pieces; a run stopped between commits
keeps every committed chunk, and a rerun skips committed documents and redoes a partly committed one cleanly."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from longkit.cli import app
from longkit.rag.build import chunking_record, index_documents, open_or_create
from longkit.rag.chunk import ChunkConfig
from longkit.rag.index import VectorIndex

CFG = ChunkConfig(size=40)
runner = CliRunner()


class Stop(Exception):
    """The simulated kill."""


def _build(path, minilm, docs, commit_every=4, progress=None):
    index = open_or_create(path, minilm, chunking_record(CFG, "embedder", "error"))
    return index, index_documents(index, docs, minilm, CFG, commit_every=commit_every, progress=progress)


def _by_chunk(index):
    """(doc_id, position) -> vector, checking that no chunk is stored twice."""
    keys = [(index.chunk(r).doc_id, index.chunk(r).position) for r in range(len(index))]
    assert len(set(keys)) == len(keys), "a chunk is stored twice"
    return dict(zip(keys, index._vectors))


@pytest.mark.parametrize("stop_in", ["progress callback", "document iterator"])
def test_a_run_stopped_inside_a_document_keeps_its_commits_and_the_rerun_redoes_it(tmp_path, minilm, topics, stop_in):
    big = "\n\n".join(topics.values())
    docs = [("a", topics["pass"]), ("big", big), ("c", topics["del"])]
    fresh, fresh_stats = _build(tmp_path / "fresh", minilm, docs)
    assert fresh_stats.commits == math.ceil(len(fresh) / 4) and len(fresh.doc_rows()["big"]) > 8

    def stop_after_two_commits(done, chunks):
        if chunks >= 8:
            raise Stop

    def stop_after_big():
        yield from docs[:2]
        raise Stop

    n_a, n_big = len(fresh.doc_rows()["a"]), len(fresh.doc_rows()["big"])
    every = next(c for c in (4, 5, 6, 7) if (n_a + n_big) % c)  # so that big's last chunks are still queued
    with pytest.raises(Stop):
        if stop_in == "progress callback":
            _build(tmp_path / "ix", minilm, docs, progress=stop_after_two_commits)
        else:
            _build(tmp_path / "ix", minilm, stop_after_big(), commit_every=every)
    stopped = VectorIndex.open(tmp_path / "ix")  # every committed chunk is there, whole commits only
    committed = 8 if stop_in == "progress callback" else every * ((n_a + n_big) // every)
    assert len(stopped) == committed and stopped.unfinished_docs() == {"big"}
    assert len(stopped.doc_rows()["a"]) == n_a and 0 < len(stopped.doc_rows()["big"]) < len(fresh.doc_rows()["big"])
    _by_chunk(stopped)

    index, stats = _build(tmp_path / "ix", minilm, docs)
    assert (stats.skipped, stats.redone, stats.added, stats.replaced) == (1, 1, 1, 0)
    assert index.unfinished_docs() == set() and "unfinished_docs" not in index.manifest
    got, want = _by_chunk(index), _by_chunk(fresh)
    assert got.keys() == want.keys() and all(np.allclose(got[k], want[k], atol=1e-5) for k in want)
    _, again = _build(tmp_path / "ix", minilm, docs)  # and now there is nothing left to do
    assert (again.skipped, again.chunks, again.commits) == (3, 0, 0)


def test_commit_every_counts_chunks_on_the_command_line(tmp_path, topics):
    doc = tmp_path / "reference.txt"
    doc.write_text("\n\n".join(topics.values()))
    res = runner.invoke(
        app, ["rag", "index", str(doc), "--out", str(tmp_path / "ix"), "--chunk-size", "40", "--commit-every", "4"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{") :])
    assert out["documents"] == 1 and out["commits"] == math.ceil(out["chunks"] / 4) > 2  # one document, many commits
    helptext = runner.invoke(app, ["rag", "index", "--help"]).output
    assert "Chunks per commit" in " ".join(helptext.split())


def test_a_killed_indexing_process_resumes_without_duplicates(tmp_path, topics, minilm):
    from longkit.rag.chunk import chunk_document

    text = "\n\n".join([*topics.values()] * 3)
    doc = tmp_path / "reference.txt"
    doc.write_text(text)
    ix = tmp_path / "ix"
    argv = ["rag", "index", str(doc), "--out", str(ix), "--chunk-size", "20", "--commit-every", "4"]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from longkit.cli import main; main()", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            m = ix / "manifest.json"
            if m.exists() and len(json.loads(m.read_text())["segments"]) >= 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed = VectorIndex.open(ix)
    assert len(killed) >= 12 and len(killed) % 4 == 0 and killed.unfinished_docs() == {str(doc.resolve())}
    res = runner.invoke(app, argv)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{") :])
    assert (out["redone"], out["documents"], out["chunks_before"]) == (1, 1, len(killed))
    assert out["chunks"] == len(chunk_document(text, "d", ChunkConfig(size=20), minilm.tokenizer))
    index = VectorIndex.open(ix)
    positions = sorted(index.chunk(r).position for r in range(len(index)))
    assert positions == list(range(len(index)))  # each chunk once
