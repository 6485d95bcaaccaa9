"""Vector index: persist/reopen, incremental add and delete, embedder check, HNSW, crash leftovers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from longkit.errors import InputError
from longkit.rag.chunk import Chunk
from longkit.rag.index import VectorIndex

EMB = {"name": "random-unit", "kind": "test", "dim": 16}


def _docs(n_docs: int, per_doc: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    chunks, vecs = [], []
    for d in range(n_docs):
        for p in range(per_doc):
            chunks.append(Chunk(f"doc{d}", p, p * 10, p * 10 + 9, 5 + p, f"text {d}-{p}"))
            v = rng.normal(size=EMB["dim"])
            vecs.append(v / np.linalg.norm(v))
    return chunks, np.asarray(vecs, dtype=np.float32)


def _hashes(chunks):
    return {c.doc_id: f"h-{c.doc_id}" for c in chunks}


def _brute(vecs, q, k):
    s = vecs @ q
    return list(np.argsort(-s, kind="stable")[:k])


def test_add_search_reopen(tmp_path):
    chunks, vecs = _docs(6, 5)
    idx = VectorIndex.create(tmp_path / "ix", EMB)
    idx.add(chunks[:15], vecs[:15], _hashes(chunks))
    idx.add(chunks[15:], vecs[15:], _hashes(chunks))
    assert len(idx) == 30 and len(idx.manifest["segments"]) == 2
    q = vecs[7] + 0.1 * vecs[20]
    hits = idx.search(q, 5)
    assert [r for r, _ in hits] == _brute(vecs, q, 5)
    assert hits[0][0] == 7 and all(a[1] >= b[1] for a, b in zip(hits, hits[1:]))

    again = VectorIndex.open(tmp_path / "ix", embedder=EMB)
    assert np.array_equal(again._vectors, vecs)
    assert again.search(q, 5) == hits
    assert again.chunk(7) == chunks[7]
    assert again.doc_hashes() == _hashes(chunks)
    assert list(again.doc_rows()["doc3"]) == list(range(15, 20))
    # restricted to documents
    only = again.search(q, 3, doc_ids=["doc4", "doc5"])
    assert {again.chunk(r).doc_id for r, _ in only} <= {"doc4", "doc5"} and len(only) == 3


def test_delete_and_readd(tmp_path):
    chunks, vecs = _docs(4, 3)
    idx = VectorIndex.create(tmp_path / "ix", EMB)
    idx.add(chunks[:6], vecs[:6], _hashes(chunks))
    idx.add(chunks[6:], vecs[6:], _hashes(chunks))
    assert idx.delete(["doc1", "nope"]) == 3
    assert idx.delete(["nope"]) == 0
    assert set(idx.doc_rows()) == {"doc0", "doc2", "doc3"} and len(idx) == 9
    hits = idx.search(vecs[4], 9)
    assert all(idx.chunk(r).doc_id != "doc1" for r, _ in hits)
    files = sorted(p.name for p in (tmp_path / "ix" / "segments").iterdir())
    assert len(files) == 4  # the untouched segment plus the rewritten one, no leftovers
    reopened = VectorIndex.open(tmp_path / "ix", writable=True)
    assert len(reopened) == 9 and "doc1" not in reopened.doc_rows()
    reopened.add(chunks[3:6], vecs[3:6], _hashes(chunks))
    assert reopened.search(vecs[4], 1)[0][0] == len(reopened) - 2
    assert reopened.chunk(reopened.search(vecs[4], 1)[0][0]) == chunks[4]


def test_other_embedder_and_missing_index(tmp_path):
    chunks, vecs = _docs(1, 2)
    VectorIndex.create(tmp_path / "ix", EMB).add(chunks, vecs, _hashes(chunks))
    with pytest.raises(InputError, match="built with embedder 'random-unit'"):
        VectorIndex.open(tmp_path / "ix", embedder={"name": "other", "dim": 16})
    with pytest.raises(InputError, match="no index here"):
        VectorIndex.open(tmp_path / "nothing")
    with pytest.raises(InputError, match="already holds an index"):
        VectorIndex.create(tmp_path / "ix", EMB)


def test_uncommitted_segment_files_are_removed_and_damage_is_reported(tmp_path):
    chunks, vecs = _docs(2, 2)
    idx = VectorIndex.create(tmp_path / "ix", EMB)
    idx.add(chunks, vecs, _hashes(chunks))
    seg = tmp_path / "ix" / "segments"
    (seg / "000007.npy").write_bytes(b"half-written")
    (seg / ".000008.parquet.tmp").write_bytes(b"x")
    VectorIndex.open(tmp_path / "ix")  # a reader leaves files alone
    assert (seg / "000007.npy").exists()
    VectorIndex.open(tmp_path / "ix", writable=True)
    assert sorted(p.name for p in seg.iterdir()) == ["000000.npy", "000000.parquet"]
    (seg / "000000.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"000000\.npy: index segment is 7 bytes, the manifest says"):
        VectorIndex.open(tmp_path / "ix")  # a size change is caught on every open
    (seg / "000000.npy").unlink()
    with pytest.raises(InputError, match=r"000000\.npy: index segment file is missing"):
        VectorIndex.open(tmp_path / "ix")


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_flipped_byte_in_a_segment_is_detected_naming_the_file(tmp_path, suffix):
    chunks, vecs = _docs(3, 2)
    idx = VectorIndex.create(tmp_path / "ix", EMB)
    idx.add(chunks, vecs, _hashes(chunks))
    seg = json.loads((tmp_path / "ix" / "manifest.json").read_text())["segments"][0]
    assert set(seg["files"]) == {"npy", "parquet"} and all(len(f["sha256"]) == 64 for f in seg["files"].values())
    target = tmp_path / "ix" / "segments" / f"000000{suffix}"
    data = bytearray(target.read_bytes())
    data[len(data) - 40] ^= 0x01  # same size, one bit different: inside the vectors / the parquet footer area
    target.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"000000\{suffix}: index segment checksum does not match"):
        VectorIndex.open(tmp_path / "ix", verify=True)
    assert VectorIndex.open(tmp_path / "ix").check_files(full=False) == 2  # sizes alone cannot see it


def test_reopen_after_an_unfinished_build_verifies_checksums(tmp_path):
    chunks, vecs = _docs(2, 2)
    idx = VectorIndex.create(
        tmp_path / "ix",
        EMB,
    )
    idx.begin_build()
    idx.add(chunks, vecs, _hashes(chunks))  # ... and the process dies before end_build()
    target = tmp_path / "ix" / "segments" / "000000.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"000000\.npy: index segment checksum does not match"):
        VectorIndex.open(tmp_path / "ix", writable=True)  # the crash-resume path checks every checksum
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    again = VectorIndex.open(tmp_path / "ix", writable=True)
    again.end_build()
    assert "build_open" not in json.loads((tmp_path / "ix" / "manifest.json").read_text()) and len(again) == 4


def test_hnsw_matches_exact_and_reloads_without_rebuilding(tmp_path):
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(2000, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [Chunk(f"d{i // 10}", i % 10, 0, 1, 1, "t") for i in range(2000)]
    idx = VectorIndex.create(tmp_path / "h", EMB, kind="hnsw", ef_search=128)
    idx.add(chunks[:1000], vecs[:1000], _hashes(chunks))
    idx.add(chunks[1000:], vecs[1000:], _hashes(chunks))
    assert idx.manifest.get("hnsw_state") != idx._fingerprint()  # not saved after every commit
    stale = VectorIndex.open(tmp_path / "h")  # graph not saved yet: rebuilt from the vectors on open
    idx.save_graph()
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    recall = np.mean([len({r for r, _ in idx.search(q, 10)} & set(_brute(vecs, q, 10))) / 10 for q in queries])
    assert recall >= 0.9
    state = json.loads((tmp_path / "h" / "manifest.json").read_text())["hnsw_state"]
    mtime = (tmp_path / "h" / "hnsw.faiss").stat().st_mtime_ns
    again = VectorIndex.open(tmp_path / "h")
    assert (tmp_path / "h" / "hnsw.faiss").stat().st_mtime_ns == mtime and again.manifest["hnsw_state"] == state
    assert [again.search(q, 10) for q in queries[:5]] == [idx.search(q, 10) for q in queries[:5]]
    assert {r for r, _ in stale.search(queries[0], 10)} & {r for r, _ in again.search(queries[0], 10)}
    assert again.chunk(1500) == chunks[1500] and idx.chunk(5) == chunks[5]
    w = VectorIndex.open(tmp_path / "h", writable=True)
    w.delete(["d0"])  # deletion rebuilds the graph without the document
    assert all(w.chunk(r).doc_id != "d0" for r, _ in w.search(vecs[3], 20))


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_damaged_hnsw_graph_is_rebuilt_from_the_vectors(tmp_path, damage):
    chunks, vecs = _docs(40, 5)
    idx = VectorIndex.create(tmp_path / "h", EMB, kind="hnsw", ef_search=64)
    idx.add(chunks, vecs, _hashes(chunks))
    idx.save_graph()
    q = vecs[7]
    expected = idx.search(q, 5)
    graph = tmp_path / "h" / "hnsw.faiss"
    data = graph.read_bytes()
    graph.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00" * len(data))
    again = VectorIndex.open(tmp_path / "h")  # derived data: rebuilt, not an error and not wrong results
    assert again.search(q, 5) == expected


def test_unfinished_documents_relabel_and_delete_keep_the_manifest_consistent(tmp_path):
    chunks, vecs = _docs(3, 4)
    idx = VectorIndex.create(tmp_path / "ix", EMB)
    idx.add(chunks[:6], vecs[:6], _hashes(chunks), unfinished={"doc1"})  # doc1's last two chunks still to come
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["unfinished_docs"] == ["doc1"] and manifest["rows"] == 6
    assert VectorIndex.open(tmp_path / "ix").unfinished_docs() == {"doc1"}
    idx.add(chunks[6:], vecs[6:], _hashes(chunks))
    assert idx.unfinished_docs() == set() and "unfinished_docs" not in idx.manifest
    assert idx.relabel({"doc0": ("/abs/doc0.txt", "sha256:00"), "nope": ("x", "y")}) == 4
    again = VectorIndex.open(tmp_path / "ix")
    assert again.doc_hashes()["/abs/doc0.txt"] == "sha256:00" and "doc0" not in again.doc_rows()
    assert np.array_equal(again._vectors[again.doc_rows()["/abs/doc0.txt"]], vecs[:4])  # not re-embedded
    idx.add(chunks[4:6], vecs[4:6], _hashes(chunks), unfinished={"doc1"})
    assert idx.delete(["doc1"]) == 6 and idx.unfinished_docs() == set()
    assert json.loads((tmp_path / "ix" / "manifest.json").read_text())["rows"] == len(idx) == 8


def test_an_index_without_the_newer_manifest_fields_opens(tmp_path):
    chunks, vecs = _docs(2, 2)
    VectorIndex.create(tmp_path / "ix", EMB).add(chunks, vecs, _hashes(chunks))
    mpath = tmp_path / "ix" / "manifest.json"
    manifest = json.loads(mpath.read_text())
    for s in manifest["segments"]:
        s.pop("files")  # written before checksums were recorded
    mpath.write_text(json.dumps(manifest))
    old = VectorIndex.open(tmp_path / "ix", writable=True)
    assert len(old) == 4 and old.unfinished_docs() == set() and old.doc_hashes() == _hashes(chunks)
    manifest["unfinished_docs"] = "doc0"
    mpath.write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="field 'unfinished_docs' must be a list of document ids"):
        VectorIndex.open(tmp_path / "ix")
