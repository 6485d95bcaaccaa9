"""Reading an index never writes to it: `rag ask`, `rag info` and the server's `--index` (RagPipeline.from_index)
leave every file byte-identical, even when a writer would repair something (a stale HNSW graph, leftovers of a
killed run)."""

from __future__ import annotations

import hashlib
import json

from typer.testing import CliRunner

from longkit.cli import app
from longkit.rag.build import chunking_record, index_documents, open_or_create
from longkit.rag.chunk import ChunkConfig

runner = CliRunner()


def _tree(path):
    """SHA-256 of every file under path (hidden ones too), by relative path."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_reading_an_index_never_writes_to_it(tmp_path, minilm, topics, tiny_llama_dir, tiny_backend):
    from longkit.rag.pipeline import RagPipeline

    ix = tmp_path / "ix"
    cfg = ChunkConfig(size=60)
    index = open_or_create(ix, minilm, chunking_record(cfg, "embedder", "error"), kind="hnsw")
    index_documents(index, list(topics.items()), minilm, cfg, commit_every=5)
    index.begin_build()  # as if a later run had been killed: a reopen verifies every checksum
    (ix / "hnsw.faiss").unlink()  # a stale graph: readers rebuild it in memory
    (ix / "segments" / "000099.npy").write_bytes(b"left by a killed run")  # a writer would remove it
    before = _tree(ix)

    res = runner.invoke(
        app,
        [
            "rag",
            "ask",
            str(ix),
            "What does the del statement do?",
            "--model",
            str(tiny_llama_dir),
            "-k",
            "2",
            "--max-new-tokens",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output[res.output.index("{") :])["citations"]) == 2
    res = runner.invoke(app, ["rag", "info", str(ix), "--verify", "--documents"])
    assert res.exit_code == 0 and json.loads(res.output)["documents"] == len(topics), res.output
    pipe = RagPipeline.from_index(ix, tiny_backend, embedder=minilm, top_k=2, max_new_tokens=2)  # `serve --index`
    assert pipe.retriever.search("What does the del statement do?", k=1)[0].chunk.doc_id == "del"
    assert _tree(ix) == before
