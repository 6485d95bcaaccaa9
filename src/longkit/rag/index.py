"""A persistent vector index: exact inner-product search by default, FAISS HNSW for large collections.

Layout of an index directory::

    manifest.json            embedder (name, kind, dim), chunking, index kind, segment list, tuned settings
    segments/000000.npy      float32 unit vectors of one committed batch of whole documents
    segments/000000.parquet  their chunks: doc_id, position, start, end, n_tokens, text, doc_hash
    hnsw.faiss               (hnsw kind) the graph, with the segment list it was built from

A commit writes a segment's files first and then swaps the manifest atomically, so an interrupted
indexing run leaves the index as of its last commit (files of an uncommitted segment are removed on
the next write). Deleting a document rewrites only the segments that hold it.

Integrity: the manifest records each segment file's size and SHA-256. Every open checks the sizes;
the full checksums are checked by `verify()` (`longkit rag index --verify`, `rag info --verify`) and
automatically when an index is reopened after an indexing run that did not finish.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longkit.errors import ConfigError, InputError
from longkit.io import sha256_file, write_json
from longkit.rag.chunk import Chunk

FORMAT = 1
_META_COLUMNS = ("doc_id", "position", "start", "end", "n_tokens", "text", "doc_hash")


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


def _meta_schema() -> Any:
    import pyarrow as pa

    schema = _schema()
    return pa.schema([f for f in schema if f.name != "text"])


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("doc_id", pa.string()), ("position", pa.int32()), ("start", pa.int64()),
                      ("end", pa.int64()), ("n_tokens", pa.int32()), ("text", pa.string()),
                      ("doc_hash", pa.string())])


class VectorIndex:
    """Vectors + chunk metadata in a directory; add, delete, search; reopen without re-embedding."""

    def __init__(self, path: Path, manifest: dict[str, Any], writable: bool):
        self.path = Path(path)
        self.manifest = manifest
        self.writable = writable
        self._vectors = np.zeros((0, int(manifest["embedder"]["dim"])), dtype=np.float32)
        self._meta: Any = None
        self._doc_rows: dict[str, np.ndarray] | None = None
        self._hnsw: Any = None
        self._load()

    # ----- creation and opening -------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, embedder: dict[str, Any], chunking: dict[str, Any] | None = None,
               kind: str = "exact", hnsw_m: int = 32, ef_construction: int = 80, ef_search: int = 64) -> VectorIndex:
        """Make an empty index directory (it must not already hold an index)."""
        if kind not in ("exact", "hnsw"):
            raise ConfigError(f"index kind must be 'exact' or 'hnsw', got '{kind}'")
        path = Path(path)
        if (path / "manifest.json").exists():
            raise InputError(f"{path}: already holds an index (open it, or choose another --out)")
        (path / "segments").mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT, "embedder": dict(embedder), "chunking": dict(chunking or {}), "kind": kind,
            "hnsw": {"m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search},
            "segments": [], "next_segment": 0, "rows": 0, "created": time.time(), "updated": time.time(),
        }
        write_json(path / "manifest.json", manifest)
        return cls(path, manifest, writable=True)

    @classmethod
    def open(cls, path: str | Path, embedder: dict[str, Any] | None = None, writable: bool = False,
             verify: bool = False) -> VectorIndex:
        """Open an index; when embedder is given it must be the one the index was built with.

        Segment sizes are always checked; full checksums when `verify` is set or the last indexing run
        into this directory did not finish (a crash-resume)."""
        path = Path(path)
        mpath = path / "manifest.json"
        if not mpath.exists():
            raise InputError(f"{path}: no index here (missing manifest.json); build one with `longkit rag index`")
        from longkit.io import read_json

        manifest = read_json(mpath, "index manifest")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
            raise InputError(f"{mpath}: unsupported index format {got!r} (expected {FORMAT})")
        for field in ("embedder", "segments", "kind"):
            if field not in manifest:
                raise InputError(f"{mpath}: missing field '{field}'; rebuild the index")
        emb = manifest["embedder"]
        if not isinstance(emb, dict) or not isinstance(emb.get("dim"), int) or not isinstance(emb.get("name"), str):
            raise InputError(f"{mpath}: field 'embedder' must hold a name and an integer dim; rebuild the index")
        segs = manifest["segments"]
        if not isinstance(segs, list) or not all(isinstance(x, dict) and isinstance(x.get("id"), str)
                                                 and isinstance(x.get("rows"), int) and x["rows"] >= 0 for x in segs):
            raise InputError(f"{mpath}: field 'segments' must be a list of {{id, rows}}; rebuild the index")
        if manifest["kind"] not in ("exact", "hnsw"):
            raise InputError(f"{mpath}: field 'kind' must be 'exact' or 'hnsw', got {manifest['kind']!r}")
        if embedder is not None:
            check_embedder(manifest, embedder, path)
        index = cls.__new__(cls)
        index.path, index.manifest = path, manifest
        index.check_files(full=verify or bool(manifest.get("build_open")))
        cls.__init__(index, path, manifest, writable=writable)
        return index

    # ----- integrity ----------------------------------------------------------------------------

    def check_files(self, full: bool = False) -> int:
        """Check every segment file against the manifest: its size always, its SHA-256 when full.

        Raises InputError naming the first file that is missing or differs; returns the files checked.
        Segments written before checksums were recorded are checked for presence only."""
        checked = 0
        for s in self.manifest["segments"]:
            for f in self._seg_files(s["id"]):
                rec = (s.get("files") or {}).get(f.suffix.lstrip("."))
                if not f.is_file():
                    raise InputError(f"{f}: index segment file is missing; rebuild the index "
                                     f"(longkit rag index ... --out {self.path})")
                if rec is None:
                    continue
                size = f.stat().st_size
                if size != int(rec["bytes"]):
                    raise InputError(f"{f}: index segment is {size} bytes, the manifest says {rec['bytes']} "
                                     "(truncated or overwritten); rebuild the index")
                if full and sha256_file(f) != rec["sha256"]:
                    raise InputError(f"{f}: index segment checksum does not match the manifest (the file is "
                                     "damaged); rebuild the index")
                checked += 1
        return checked

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

    def _seg_files(self, seg_id: str) -> tuple[Path, Path]:
        return self.path / "segments" / f"{seg_id}.npy", self.path / "segments" / f"{seg_id}.parquet"

    def _load(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        segs = self.manifest["segments"]
        dim = int(self.manifest["embedder"]["dim"])
        total = sum(int(s["rows"]) for s in segs)
        vectors = np.empty((total, dim), dtype=np.float32)
        tables = []
        at = 0
        # Chunk texts stay on disk until a hit needs them, so reopening reads vectors and a few small columns.
        columns = [c for c in _META_COLUMNS if c != "text"]
        self._texts = {}
        for s in segs:
            vpath, mpath = self._seg_files(s["id"])
            at_file = vpath
            try:
                v = np.load(vpath, mmap_mode="r")
                at_file = mpath
                t = pq.read_table(mpath, columns=columns)
            except (OSError, ValueError, pa.ArrowException) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise InputError(f"{at_file}: index segment is missing or damaged ({first}); rebuild the index") from None
            if v.shape != (int(s["rows"]), dim) or t.num_rows != int(s["rows"]):
                raise InputError(f"{vpath}: index segment does not match the manifest ({len(v)} rows, "
                                 f"manifest: {s['rows']}); rebuild the index")
            vectors[at:at + len(v)] = v
            tables.append(t)
            at += len(v)
        self._vectors = vectors
        self._starts = np.cumsum([0] + [int(s["rows"]) for s in segs])
        self._meta = pa.concat_tables(tables) if tables else _meta_schema().empty_table()
        self._doc_rows = None
        if self.writable:
            self._remove_orphans()
        if self.manifest["kind"] == "hnsw":
            self._load_hnsw()

    def _remove_orphans(self) -> None:
        keep = {s["id"] for s in self.manifest["segments"]}
        for f in (self.path / "segments").iterdir():
            if f.stem.split(".")[0] not in keep or f.name.startswith("."):
                f.unlink(missing_ok=True)

    def _fingerprint(self) -> str:
        return ",".join(s["id"] for s in self.manifest["segments"])

    def _load_hnsw(self) -> None:
        import faiss

        fpath = self.path / "hnsw.faiss"
        state = self.manifest.get("hnsw_state")
        size = self.manifest.get("hnsw_bytes")
        self._hnsw = None
        if fpath.is_file() and state == self._fingerprint() and (size is None or fpath.stat().st_size == size):
            try:
                self._hnsw = faiss.read_index(str(fpath))
            except RuntimeError:  # a damaged graph file: it is derived data, so rebuild it from the vectors
                self._hnsw = None
            if self._hnsw is not None and (not hasattr(self._hnsw, "hnsw") or self._hnsw.ntotal != len(self._vectors)):
                self._hnsw = None
        if self._hnsw is None:
            self._hnsw = self._build_hnsw(self._vectors)
            if self.writable:
                self._save_hnsw()
        self._hnsw.hnsw.efSearch = int(self.manifest["hnsw"]["ef_search"])

    def _build_hnsw(self, vectors: np.ndarray) -> Any:
        import faiss

        cfg = self.manifest["hnsw"]
        index = faiss.IndexHNSWFlat(vectors.shape[1], int(cfg["m"]), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(cfg["ef_construction"])
        if len(vectors):
            index.add(np.ascontiguousarray(vectors))
        return index

    def _save_hnsw(self) -> None:
        import faiss

        tmp = self.path / ".hnsw.faiss.tmp"
        faiss.write_index(self._hnsw, str(tmp))
        os.replace(tmp, self.path / "hnsw.faiss")
        self.manifest["hnsw_state"] = self._fingerprint()
        self.manifest["hnsw_bytes"] = (self.path / "hnsw.faiss").stat().st_size
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

    def chunk(self, row: int) -> Chunk:
        """The chunk stored at a row."""
        rec = {c: self._meta.column(c)[row].as_py() for c in _META_COLUMNS[:5]}
        return Chunk(**rec, text=self._text(row))

    def _text(self, row: int) -> str:
        import pyarrow.parquet as pq

        seg = int(np.searchsorted(self._starts, row, side="right")) - 1
        if seg not in self._texts:
            _, mpath = self._seg_files(self.manifest["segments"][seg]["id"])
            self._texts[seg] = pq.read_table(mpath, columns=["text"]).column("text")
        return self._texts[seg][row - int(self._starts[seg])].as_py()

    def n_tokens(self) -> np.ndarray:
        """Length of every chunk in the chunker's unit."""
        return self._meta.column("n_tokens").to_numpy()

    # ----- writing ------------------------------------------------------------------------------

    def _require_writable(self) -> None:
        if not self.writable:
            raise ConfigError(f"{self.path}: index opened read-only")

    def _write_manifest(self) -> None:
        self.manifest["updated"] = time.time()
        self.manifest["rows"] = len(self)
        write_json(self.path / "manifest.json", self.manifest)

    def _write_segment(self, vectors: np.ndarray, rows: list[dict[str, Any]] | Any) -> dict[str, Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        seg_id = f"{int(self.manifest['next_segment']):06d}"
        self.manifest["next_segment"] = int(self.manifest["next_segment"]) + 1
        vpath, mpath = self._seg_files(seg_id)
        table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=_schema())
        tmp_v, tmp_m = vpath.with_name(f".{vpath.name}.tmp"), mpath.with_name(f".{mpath.name}.tmp")
        with open(tmp_v, "wb") as fh:
            np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32))
            fh.flush()
            os.fsync(fh.fileno())
        pq.write_table(table, tmp_m)
        files = {"npy": {"bytes": tmp_v.stat().st_size, "sha256": sha256_file(tmp_v)},
                 "parquet": {"bytes": tmp_m.stat().st_size, "sha256": sha256_file(tmp_m)}}
        os.replace(tmp_v, vpath)
        os.replace(tmp_m, mpath)
        return {"id": seg_id, "rows": int(len(vectors)), "files": files}

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray, doc_hashes: dict[str, str]) -> None:
        """Commit chunks (whole documents) and their vectors as one segment."""
        self._require_writable()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.dim):
            raise ValueError(f"expected vectors of shape ({len(chunks)}, {self.dim}), got {vectors.shape}")
        if not chunks:
            return
        rows = [{**c.to_dict(), "doc_hash": doc_hashes[c.doc_id]} for c in chunks]
        seg = self._write_segment(vectors, rows)
        self.manifest["segments"].append(seg)
        self._write_manifest()
        self._append_loaded(vectors, rows)

    def _append_loaded(self, vectors: np.ndarray, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        self._vectors = np.concatenate([self._vectors, vectors]) if len(self._vectors) else vectors.copy()
        table = pa.Table.from_pylist(rows, schema=_schema())
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
        import pyarrow as pa
        import pyarrow.compute as pc

        self._require_writable()
        doomed = set(doc_ids) & set(self.doc_rows())
        if not doomed:
            return 0
        new_segs = []
        removed = 0
        old_files = []
        for s in self.manifest["segments"]:
            vpath, mpath = self._seg_files(s["id"])
            import pyarrow.parquet as pq

            t = pq.read_table(mpath)
            drop = pc.is_in(t.column("doc_id"), value_set=pa.array(sorted(doomed))).to_numpy(zero_copy_only=False)
            if not drop.any():
                new_segs.append(s)
                continue
            removed += int(drop.sum())
            old_files += [vpath, mpath]
            keep = np.flatnonzero(~drop)
            if len(keep):
                v = np.load(vpath)[keep]
                new_segs.append(self._write_segment(v, t.take(pa.array(keep))))
        self.manifest["segments"] = new_segs
        self.manifest.pop("hnsw_state", None)
        self._write_manifest()
        for f in old_files:
            f.unlink(missing_ok=True)
        self._load()
        return removed

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


def _top(scores: np.ndarray, k: int, rows: np.ndarray | None) -> list[tuple[int, float]]:
    k = min(k, len(scores))
    idx = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    # Ties broken by row number, so results are deterministic.
    idx = idx[np.lexsort((idx, -scores[idx]))]
    ids = rows[idx] if rows is not None else idx
    return [(int(r), float(scores[j])) for r, j in zip(ids, idx)]


def check_embedder(manifest: dict[str, Any], embedder: dict[str, Any], path: Path | str) -> None:
    """Raise if an embedder is not the one an index was built with."""
    built = manifest["embedder"]
    if built.get("name") != embedder.get("name") or int(built.get("dim", -1)) != int(embedder.get("dim", -2)):
        raise InputError(
            f"{path}: index was built with embedder '{built.get('name')}' (dim {built.get('dim')}), "
            f"not '{embedder.get('name')}' (dim {embedder.get('dim')}); rebuild it or use that embedder"
        )
