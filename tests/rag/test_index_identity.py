"""`rag index` recognises a document by its resolved path and content hash: a symlink, a relative path or `./`
reach the same document; unchanged ones are skipped, changed ones replaced; indexes written before this open
and are upgraded without re-embedding."""

from __future__ import annotations

import hashlib
import json
import os

from typer.testing import CliRunner

from longkit.cli import app

runner = CliRunner()
NAMES = ("pass", "del", "global", "while")


def _index(*args):
    res = runner.invoke(app, ["rag", "index", *[str(a) for a in args]])
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{") :])


def _docs(tmp_path, topics):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in NAMES:
        (docs / f"{name}.txt").write_text(topics[name])
    (tmp_path / "link").symlink_to(docs, target_is_directory=True)
    return docs


def _tree(path):
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _records(ix):
    import pyarrow as pa
    import pyarrow.parquet as pq

    segs = json.loads((ix / "manifest.json").read_text())["segments"]
    return pa.concat_tables([pq.read_table(ix / "segments" / f"{s['id']}.parquet") for s in segs]).to_pylist()


def test_a_file_through_a_symlink_a_relative_path_or_dot_is_one_document(tmp_path, topics, monkeypatch, minilm):
    docs = _docs(tmp_path, topics)
    ix = tmp_path / "ix"
    first = _index(docs, "--out", ix, "--chunk-size", "60")
    assert (first["added"], first["documents"]) == (4, 4)
    monkeypatch.chdir(tmp_path)
    before = _tree(ix)
    for how in ("link", "docs", "./docs", "./link/../docs"):  # each run: the same 4 documents, nothing added
        again = _index(how, "--out", ix, "--chunk-size", "60")
        assert (again["skipped"], again["added"], again["chunks_added"], again["documents"]) == (4, 0, 0, 4), how
        assert again["chunks"] == first["chunks"] and _tree(ix) == before  # a run with nothing to do writes nothing
    at_once = _index("docs", "link", "./docs/pass.txt", str(docs / "del.txt"), "--out", ix, "--chunk-size", "60")
    assert (at_once["skipped"], at_once["duplicates"], at_once["documents"]) == (4, 6, 4)

    rows = _records(ix)
    assert {r["doc_id"] for r in rows} == {str((docs / f"{n}.txt").resolve()) for n in NAMES}
    for r in rows:  # both recorded: the resolved path (the id) and the SHA-256 of the file's bytes
        assert r["doc_hash"] == "sha256:" + hashlib.sha256(open(r["doc_id"], "rb").read()).hexdigest()
    from longkit.rag.retrieve import Retriever

    hits = Retriever.open(ix, minilm).search("How do I remove a name binding?", k=3)
    assert len({(h.chunk.doc_id, h.chunk.position) for h in hits}) == 3  # not the same chunk three times


def test_changed_content_at_the_same_path_replaces_the_document(tmp_path, topics, minilm):
    docs = _docs(tmp_path, topics)
    ix = tmp_path / "ix"
    _index(docs, "--out", ix, "--chunk-size", "60")
    (tmp_path / "link" / "pass.txt").write_text("The pass statement was rewritten for this test. It does nothing.")
    res = _index(tmp_path / "link", "--out", ix, "--chunk-size", "60")
    assert (res["replaced"], res["skipped"], res["added"], res["documents"]) == (1, 3, 0, 4)
    target = str((docs / "pass.txt").resolve())
    rows = [r for r in _records(ix) if r["doc_id"] == target]
    assert len(rows) == 1 and "rewritten" in rows[0]["text"]  # the old chunks are gone, not kept beside it
    assert res["chunks"] == _index(docs, "--out", tmp_path / "fresh", "--chunk-size", "60")["chunks"]


def _legacy_index(ix, minilm, ids_and_texts):
    """An index as the previous code wrote it: ids as the user typed the path, SHA-1 of the text as hash."""
    from longkit.rag.build import chunking_record
    from longkit.rag.chunk import ChunkConfig, chunk_document
    from longkit.rag.index import VectorIndex

    cfg = ChunkConfig(size=60)
    index = VectorIndex.create(ix, minilm.describe(), chunking_record(cfg, "embedder", "error"))
    for doc_id, text in ids_and_texts:
        chunks = chunk_document(text, doc_id, cfg, minilm.tokenizer)
        index.add(
            chunks,
            minilm.embed_documents([c.text for c in chunks]),
            {doc_id: hashlib.sha1(text.encode("utf-8")).hexdigest()},
        )


def test_an_index_written_before_resolved_ids_opens_and_is_upgraded(tmp_path, topics, monkeypatch, minilm):
    docs = _docs(tmp_path, topics)
    monkeypatch.chdir(tmp_path)
    ix = tmp_path / "ix"
    # the old behaviour: the same files reached three ways became three documents each
    old = [(f"{prefix}/{n}.txt", topics[n]) for prefix in ("docs", "./docs", "link") for n in NAMES]
    _legacy_index(ix, minilm, old)
    before = json.loads(runner.invoke(app, ["rag", "info", str(ix)]).output)
    assert before["documents"] == 12
    (docs / "while.txt").write_text("The while loop was rewritten for this test.")
    res = _index("docs", "--out", ix, "--chunk-size", "60")
    assert (res["skipped"], res["upgraded"], res["replaced"], res["added"], res["documents"]) == (3, 3, 1, 0, 4)
    rows = _records(ix)
    assert {r["doc_id"] for r in rows} == {str((docs / f"{n}.txt").resolve()) for n in NAMES}
    assert all(r["doc_hash"] == "sha256:" + hashlib.sha256(open(r["doc_id"], "rb").read()).hexdigest() for r in rows)
    again = _index(os.path.join(".", "link"), "--out", ix, "--chunk-size", "60")
    assert (again["skipped"], again["upgraded"], again["chunks_added"], again["documents"]) == (4, 0, 0, 4)
