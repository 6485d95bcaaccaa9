"""Index segment files: one committed batch's vectors (`.npy`) and chunk records (`.parquet`), with checksums.

A segment is written under temporary names and renamed into place; it only becomes part of the index when
the manifest that lists it is swapped in, so files of an uncommitted segment are orphans a writer removes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from longkit.errors import InputError
from longkit.io import sha256_file

META_COLUMNS = ("doc_id", "position", "start", "end", "n_tokens", "text", "doc_hash")


def schema() -> Any:  # Any: a pyarrow Schema (pyarrow is imported lazily)
    """The chunk records' columns."""
    import pyarrow as pa

    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("position", pa.int32()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("n_tokens", pa.int32()),
            ("text", pa.string()),
            ("doc_hash", pa.string()),
        ]
    )


def meta_schema() -> Any:  # Any: a pyarrow Schema
    """The columns kept in memory (all but the chunk text, which is read when a hit needs it)."""
    import pyarrow as pa

    return pa.schema([f for f in schema() if f.name != "text"])


def seg_files(root: Path, seg_id: str) -> tuple[Path, Path]:
    """The vector file and the record file of a segment."""
    return root / "segments" / f"{seg_id}.npy", root / "segments" / f"{seg_id}.parquet"


def write_segment(root: Path, seg_id: str, vectors: np.ndarray, rows: list[dict[str, Any]] | Any) -> dict[str, Any]:
    """Write a segment's two files (temp name, fsync, rename) and return its manifest record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    vpath, mpath = seg_files(root, seg_id)
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=schema())
    tmp_v, tmp_m = vpath.with_name(f".{vpath.name}.tmp"), mpath.with_name(f".{mpath.name}.tmp")
    with open(tmp_v, "wb") as fh:
        np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32))
        fh.flush()
        os.fsync(fh.fileno())
    pq.write_table(table, tmp_m)
    files = {
        "npy": {"bytes": tmp_v.stat().st_size, "sha256": sha256_file(tmp_v)},
        "parquet": {"bytes": tmp_m.stat().st_size, "sha256": sha256_file(tmp_m)},
    }
    os.replace(tmp_v, vpath)
    os.replace(tmp_m, mpath)
    return {"id": seg_id, "rows": int(len(vectors)), "files": files}


def read_segment(root: Path, seg: dict[str, Any], dim: int, columns: list[str]) -> tuple[np.ndarray, Any]:
    """A segment's vectors (memory-mapped) and the given record columns; damage raises naming the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    vpath, mpath = seg_files(root, seg["id"])
    at_file = vpath
    try:
        v = np.load(vpath, mmap_mode="r")
        at_file = mpath
        t = pq.read_table(mpath, columns=columns)
    except (OSError, ValueError, pa.ArrowException) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{at_file}: index segment is missing or damaged ({first}); rebuild the index") from None
    if v.shape != (int(seg["rows"]), dim) or t.num_rows != int(seg["rows"]):
        raise InputError(
            f"{vpath}: index segment does not match the manifest ({len(v)} rows, "
            f"manifest: {seg['rows']}); rebuild the index"
        )
    return v, t


def check_segment_files(root: Path, segments: list[dict[str, Any]], full: bool) -> int:
    """Check every segment file (size; SHA-256 when full), naming the first that differs; returns the files checked."""
    # Segments written before checksums were recorded are checked for presence only.
    checked = 0
    for s in segments:
        for f in seg_files(root, s["id"]):
            rec = (s.get("files") or {}).get(f.suffix.lstrip("."))
            if not f.is_file():
                raise InputError(
                    f"{f}: index segment file is missing; rebuild the index (longkit rag index ... --out {root})"
                )
            if rec is None:
                continue
            size = f.stat().st_size
            if size != int(rec["bytes"]):
                raise InputError(
                    f"{f}: index segment is {size} bytes, the manifest says {rec['bytes']} "
                    "(truncated or overwritten); rebuild the index"
                )
            if full and sha256_file(f) != rec["sha256"]:
                raise InputError(
                    f"{f}: index segment checksum does not match the manifest (the file is damaged); rebuild the index"
                )
            checked += 1
    return checked


def remove_orphans(root: Path, segments: list[dict[str, Any]]) -> None:
    """Remove segment files the manifest does not list (left by a run that stopped before its commit)."""
    keep = {s["id"] for s in segments}
    for f in (root / "segments").iterdir():
        if f.stem.split(".")[0] not in keep or f.name.startswith("."):
            f.unlink(missing_ok=True)
