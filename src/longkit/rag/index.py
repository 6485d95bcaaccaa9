"""A persistent vector index: exact inner-product search by default, FAISS HNSW for large collections.

Layout of an index directory::

    manifest.json            embedder (name, kind, dim), chunking, index kind, segment list, tuned settings
    segments/000000.npy      float32 unit vectors of one committed batch of chunks
    segments/000000.parquet  their chunks: doc_id, position, start, end, n_tokens, text, doc_hash
    hnsw.faiss               (hnsw kind) the graph, with the segment list it was built from

A commit writes a segment's files first and then swaps the manifest atomically, so an interrupted
indexing run leaves the index as of its last commit (files of an uncommitted segment are removed on
the next write). A document whose chunks span several commits is listed in the manifest's
`unfinished_docs` until its last chunk is committed. Deleting a document rewrites only the segments
that hold it. Opening an index read-only never writes to it.

Integrity: the manifest records each segment file's size and SHA-256. Every open checks the sizes;
the full checksums are checked by `verify()` (`longkit rag index --verify`, `rag info --verify`) and
automatically when an index is reopened after an indexing run that did not finish.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longkit.errors import ConfigError, InputError
from longkit.io import write_json
from longkit.rag.chunk import Chunk
from longkit.rag.hnsw import build_graph, read_graph, write_graph
from longkit.rag.manifest import FORMAT, KINDS, check_embedder, read_manifest
from longkit.rag.segments import (
    META_COLUMNS,
    check_segment_files,
    meta_schema,
    read_segment,
    remove_orphans,
    schema,
    seg_files,
    write_segment,
)

__all__ = ["FORMAT", "Hit", "VectorIndex", "check_embedder"]


@dataclass
class Hit:
    """One retrieved chunk with its score and its rank in score order (0 = best)."""

    chunk: Chunk
    score: float
    rank: int
    row: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view (for citations and logs)."""
        return {**self.chunk.to_dict(), "score": round(float(self.score), 6), "rank": self.rank}


class VectorIndex:
    """Vectors + chunk metadata in a directory; add, delete, search; reopen without re-embedding."""

    def __init__(self, path: Path, manifest: dict[str, Any], writable: bool):
        self.path = Path(path)
        self.manifest = manifest
        self.writable = writable
        self._vectors = np.zeros((0, int(manifest["embedder"]["dim"])), dtype=np.float32)
        self._meta: Any = None  # Any: a pyarrow Table
        self._doc_rows: dict[str, np.ndarray] | None = None
        self._hnsw: Any = None  # Any: a faiss index
        self._load()

    # ----- creation and opening -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
        embedder: dict[str, Any],
        chunking: dict[str, Any] | None = None,
        kind: str = "exact",
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
    ) -> VectorIndex:
        """Make an empty index directory (it must not already hold an index)."""
        if kind not in KINDS:
            raise ConfigError(f"index kind must be 'exact' or 'hnsw', got '{kind}'")
        path = Path(path)
        if (path / "manifest.json").exists():
            raise InputError(f"{path}: already holds an index (open it, or choose another --out)")
        (path / "segments").mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT,
            "embedder": dict(embedder),
            "chunking": dict(chunking or {}),
            "kind": kind,
            "hnsw": {"m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search},
            "segments": [],
            "next_segment": 0,
            "rows": 0,
            "created": time.time(),
            "updated": time.time(),
        }
        write_json(path / "manifest.json", manifest)
        return cls(path, manifest, writable=True)

    @classmethod
    def open(
        cls, path: str | Path, embedder: dict[str, Any] | None = None, writable: bool = False, verify: bool = False
    ) -> VectorIndex:
        """Open an index; when embedder is given it must be the one the index was built with.

        Segment sizes are always checked; full checksums when `verify` is set or the last indexing run
        into this directory did not finish (a crash-resume)."""
        path = Path(path)
        manifest = read_manifest(path)
        if embedder is not None:
            check_embedder(manifest, embedder, path)
        check_segment_files(path, manifest["segments"], full=verify or bool(manifest.get("build_open")))
        return cls(path, manifest, writable=writable)

    # ----- integrity ----------------------------------------------------------------------------

    def check_files(self, full: bool = False) -> int:
        """Check every segment file against the manifest (size, and SHA-256 when full); returns the files checked."""
        return check_segment_files(self.path, self.manifest["segments"], full)

    def begin_build(self) -> None:
        """Mark an indexing run as started: until end_build(), a reopen verifies every checksum."""
        self._require_writable()
        if not self.manifest.get("build_open"):
            self.manifest["build_open"] = True
            self._write_manifest()

    def end_build(self) -> None:
        """Mark the indexing run as finished."""
        if self.manifest.pop("build_open", None) is not None:
            self._write_manifest()

    # ----- loading ----------------------------------------------------------------------------

    def _load(self) -> None:
        import pyarrow as pa

        segs = self.manifest["segments"]
        dim = int(self.manifest["embedder"]["dim"])
        vectors = np.empty((sum(int(s["rows"]) for s in segs), dim), dtype=np.float32)
        tables = []
        at = 0
        # Chunk texts stay on disk until a hit needs them, so reopening reads vectors and a few small columns.
        columns = [c for c in META_COLUMNS if c != "text"]
        self._texts: dict[int, Any] = {}
        for s in segs:
            v, t = read_segment(self.path, s, dim, columns)
            vectors[at : at + len(v)] = v
            tables.append(t)
            at += len(v)
        self._vectors = vectors
        self._starts = np.cumsum([0] + [int(s["rows"]) for s in segs])
        self._meta = pa.concat_tables(tables) if tables else meta_schema().empty_table()
        self._doc_rows = None
        if self.writable:
            remove_orphans(self.path, segs)
        self._hnsw = None
        if self.manifest["kind"] == "hnsw":
            self._load_hnsw()

    def _fingerprint(self) -> str:
        return ",".join(s["id"] for s in self.manifest["segments"])

    def _load_hnsw(self) -> None:
        self._hnsw = read_graph(self.path, self.manifest, self._fingerprint(), len(self._vectors))
        if self._hnsw is None:
            self._hnsw = build_graph(self._vectors, self.manifest["hnsw"])
            if self.writable:  # a reader rebuilds the graph in memory only: reading never writes
                self._save_hnsw()
        self._hnsw.hnsw.efSearch = int(self.manifest["hnsw"]["ef_search"])

    def _save_hnsw(self) -> None:
        self.manifest["hnsw_bytes"] = write_graph(self.path, self._hnsw)
        self.manifest["hnsw_state"] = self._fingerprint()
        self._write_manifest()

    # ----- inspection ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._vectors.shape[0])

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self._vectors.shape[1])

    def doc_rows(self) -> dict[str, np.ndarray]:
        """Row numbers of each document's chunks, in position order."""
        if self._doc_rows is None:
            ids = self._meta.column("doc_id").to_numpy(zero_copy_only=False)
            pos = self._meta.column("position").to_numpy()
            order = np.lexsort((pos, ids)) if len(ids) else np.zeros(0, dtype=np.int64)
            rows: dict[str, np.ndarray] = {}
            if len(order):
                sorted_ids = ids[order]
                cuts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
                for part in np.split(order, cuts):
                    rows[str(ids[part[0]])] = part
            self._doc_rows = rows
        return self._doc_rows

    def doc_hashes(self) -> dict[str, str]:
        """doc_id -> content hash of the indexed version."""
        hashes = self._meta.column("doc_hash").to_pylist()
        return {d: hashes[int(r[0])] for d, r in self.doc_rows().items()}

    def unfinished_docs(self) -> set[str]:
        """Documents only part of whose chunks were committed (a run stopped inside them)."""
        return set(self.manifest.get("unfinished_docs", []))

    def chunk(self, row: int) -> Chunk:
        """The chunk stored at a row."""
        rec = {c: self._meta.column(c)[row].as_py() for c in META_COLUMNS[:5]}
        return Chunk(**rec, text=self._text(row))

    def _text(self, row: int) -> str:
        import pyarrow.parquet as pq

        seg = int(np.searchsorted(self._starts, row, side="right")) - 1
        if seg not in self._texts:
            _, mpath = seg_files(self.path, self.manifest["segments"][seg]["id"])
            self._texts[seg] = pq.read_table(mpath, columns=["text"]).column("text")
        text: str = self._texts[seg][row - int(self._starts[seg])].as_py()
        return text

    def n_tokens(self) -> np.ndarray:
        """Length of every chunk in the chunker's unit."""
        counts: np.ndarray = self._meta.column("n_tokens").to_numpy()
        return counts

    # ----- writing ------------------------------------------------------------------------------

    def _require_writable(self) -> None:
        if not self.writable:
            raise ConfigError(f"{self.path}: index opened read-only")

    def _write_manifest(self) -> None:
        # Rows are counted from the segment list being committed (the loaded vectors may not include it yet).
        self.manifest["updated"] = time.time()
        self.manifest["rows"] = sum(int(s["rows"]) for s in self.manifest["segments"])
        write_json(self.path / "manifest.json", self.manifest)

    def _set_unfinished(self, ids: set[str]) -> None:
        # Absent when empty, so a finished index's manifest looks as it did before partial commits existed.
        if ids:
            self.manifest["unfinished_docs"] = sorted(ids)
        else:
            self.manifest.pop("unfinished_docs", None)

    def _write_segment(self, vectors: np.ndarray, rows: list[dict[str, Any]] | Any) -> dict[str, Any]:
        seg_id = f"{int(self.manifest['next_segment']):06d}"
        self.manifest["next_segment"] = int(self.manifest["next_segment"]) + 1
        return write_segment(self.path, seg_id, vectors, rows)

    def add(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, doc_hashes: dict[str, str], unfinished: Iterable[str] = ()
    ) -> None:
        """Commit chunks and their vectors as one segment; `unfinished`: documents whose later chunks are to come."""
        self._require_writable()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.dim):
            raise ValueError(f"expected vectors of shape ({len(chunks)}, {self.dim}), got {vectors.shape}")
        if not chunks:
            return
        rows = [{**c.to_dict(), "doc_hash": doc_hashes[c.doc_id]} for c in chunks]
        seg = self._write_segment(vectors, rows)
        self.manifest["segments"].append(seg)
        open_now = set(unfinished)
        self._set_unfinished((self.unfinished_docs() - {c.doc_id for c in chunks}) | open_now)
        self._write_manifest()
        self._append_loaded(vectors, rows)

    def _append_loaded(self, vectors: np.ndarray, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        self._vectors = np.concatenate([self._vectors, vectors]) if len(self._vectors) else vectors.copy()
        table = pa.Table.from_pylist(rows, schema=schema())
        self._texts[len(self._starts) - 1] = table.column("text")
        self._starts = np.append(self._starts, self._starts[-1] + len(rows))
        self._meta = pa.concat_tables([self._meta, table.drop_columns(["text"])])
        self._doc_rows = None
        if self._hnsw is not None:
            # The graph grows in memory; save_graph() persists it (index_documents calls it at the end,
            # and a reopen rebuilds it if a run stopped before that).
            self._hnsw.add(np.ascontiguousarray(vectors))

    def save_graph(self) -> None:
        """Persist the HNSW graph (no-op for exact indexes or when already saved)."""
        if self._hnsw is not None and self.manifest.get("hnsw_state") != self._fingerprint():
            self._save_hnsw()

    def delete(self, doc_ids: Iterable[str]) -> int:
        """Remove documents; returns the number of chunks removed. Unknown ids are ignored."""
        self._require_writable()
        doomed = set(doc_ids) & set(self.doc_rows())
        if not doomed:
            return 0
        return self._rewrite(doomed, None)

    def relabel(self, labels: dict[str, tuple[str, str]]) -> int:
        """Give documents a new id and content hash without re-embedding: old id -> (new id, new hash)."""
        self._require_writable()
        labels = {d: v for d, v in labels.items() if d in self.doc_rows()}
        if not labels:
            return 0
        return self._rewrite(set(labels), labels)

    def _rewrite(self, touched: set[str], labels: dict[str, tuple[str, str]] | None) -> int:
        """Rewrite the segments holding `touched` documents: drop their rows, or relabel them; one commit."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        new_segs, old_files, affected = [], [], 0
        for s in self.manifest["segments"]:
            vpath, mpath = seg_files(self.path, s["id"])
            t = pq.read_table(mpath)
            hit = pc.is_in(t.column("doc_id"), value_set=pa.array(sorted(touched))).to_numpy(zero_copy_only=False)
            if not hit.any():
                new_segs.append(s)
                continue
            affected += int(hit.sum())
            old_files += [vpath, mpath]
            keep = np.flatnonzero(~hit) if labels is None else np.arange(len(hit))
            if len(keep):
                new_segs.append(self._write_segment(np.load(vpath)[keep], _relabelled(t.take(pa.array(keep)), labels)))
        self.manifest["segments"] = new_segs
        self.manifest.pop("hnsw_state", None)
        unfinished = self.unfinished_docs()
        if labels is None:
            self._set_unfinished(unfinished - touched)
        else:
            self._set_unfinished({labels[d][0] if d in labels else d for d in unfinished})
        self._write_manifest()
        for f in old_files:
            f.unlink(missing_ok=True)
        self._load()
        return affected

    def update_manifest(self, **fields: Any) -> None:
        """Record extra settings (e.g. the tuned chunk size and k) in the manifest."""
        self.manifest.update(fields)
        write_json(self.path / "manifest.json", self.manifest)

    # ----- search -------------------------------------------------------------------------------

    def search(self, query: np.ndarray, k: int, doc_ids: Sequence[str] | None = None) -> list[tuple[int, float]]:
        """Top-k (row, score) by inner product, best first; restricted to doc_ids when given."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise InputError(f"query vector has dimension {q.shape[0]}, index has {self.dim}")
        if k <= 0 or len(self) == 0:
            return []
        if doc_ids is not None:
            table = self.doc_rows()
            parts = [table[d] for d in doc_ids if d in table]
            if not parts:
                return []
            rows = np.concatenate(parts)
            scores = self._vectors[rows] @ q
            return _top(scores, k, rows)
        if self._hnsw is not None and k < len(self):
            d, i = self._hnsw.search(q[None], k)
            return [(int(r), float(s)) for r, s in zip(i[0], d[0]) if r >= 0]
        return _top(self._vectors @ q, k, None)


def _relabelled(table: Any, labels: dict[str, tuple[str, str]] | None) -> Any:  # Any: a pyarrow Table
    """The table with the labelled documents' doc_id and doc_hash replaced (unchanged when labels is None)."""
    import pyarrow as pa

    if labels is None:
        return table
    ids = table.column("doc_id").to_pylist()
    hashes = table.column("doc_hash").to_pylist()
    new_ids = [labels[d][0] if d in labels else d for d in ids]
    new_hashes = [labels[d][1] if d in labels else h for d, h in zip(ids, hashes)]
    table = table.set_column(table.schema.get_field_index("doc_id"), "doc_id", pa.array(new_ids, pa.string()))
    return table.set_column(table.schema.get_field_index("doc_hash"), "doc_hash", pa.array(new_hashes, pa.string()))


def _top(scores: np.ndarray, k: int, rows: np.ndarray | None) -> list[tuple[int, float]]:
    k = min(k, len(scores))
    idx = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    # Ties broken by row number, so results are deterministic.
    idx = idx[np.lexsort((idx, -scores[idx]))]
    ids = rows[idx] if rows is not None else idx
    return [(int(r), float(scores[j])) for r, j in zip(ids, idx)]
