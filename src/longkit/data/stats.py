"""Statistics of packed sequences (UtK: documents split, chunks per sequence, knot distances) and shard files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from longkit.data.pack import SEG_CHUNK, SEG_END, SEG_KEY, SEG_NCHUNKS, SEG_START
from longkit.errors import InputError

KNOT_BINS = [1, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 40]


class PackStats:
    """Accumulates per-sequence statistics from samples that carry `segments` metadata."""

    def __init__(self) -> None:
        self.sequences = 0
        self.chunks: list[int] = []
        self.split_docs: list[int] = []
        self.docs: list[int] = []
        self.knot_counts = np.zeros(len(KNOT_BINS) - 1, dtype=np.int64)
        self.knot_sum = 0
        self.knot_n = 0
        self.masked = 0
        self.tokens = 0

    def add(self, sample: dict[str, Any]) -> None:
        """Add one sample (a dict with segments and labels)."""
        segs = np.asarray(sample["segments"])
        self.sequences += 1
        self.tokens += len(sample["labels"])
        self.masked += int((np.asarray(sample["labels"]) == -100).sum())
        self.chunks.append(len(segs))
        keys = segs[:, SEG_KEY]
        self.docs.append(len(np.unique(keys)))
        multi = segs[segs[:, SEG_NCHUNKS] > 1]
        self.split_docs.append(len(np.unique(multi[:, SEG_KEY])))
        if len(multi):
            # distance between the tail knot of chunk j and the head knot of chunk j+1 (the UtK paper's Fig. 3)
            o = np.lexsort((multi[:, SEG_CHUNK], multi[:, SEG_KEY]))
            m = multi[o]
            same = (m[1:, SEG_KEY] == m[:-1, SEG_KEY]) & (m[1:, SEG_CHUNK] == m[:-1, SEG_CHUNK] + 1)
            tail = m[:-1, SEG_END][same]
            head = m[1:, SEG_START][same] - 1
            dist = np.abs(head - tail)
            self.knot_counts += np.histogram(dist, bins=KNOT_BINS)[0]
            self.knot_sum += int(dist.sum())
            self.knot_n += len(dist)

    def report(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        ch = np.asarray(self.chunks or [0])
        return {
            "sequences": self.sequences,
            "tokens": self.tokens,
            "masked_label_share": self.masked / self.tokens if self.tokens else 0.0,
            "chunks_per_sequence": {"mean": float(ch.mean()), "min": int(ch.min()), "max": int(ch.max())},
            "docs_per_sequence": float(np.mean(self.docs)) if self.docs else 0.0,
            "docs_split": int(sum(self.split_docs)),
            "docs_split_per_sequence": float(np.mean(self.split_docs)) if self.split_docs else 0.0,
            "knot_distance": {
                "bins": [f"[{a},{b})" for a, b in zip(KNOT_BINS[:-2], KNOT_BINS[1:-1])] + [f"[{KNOT_BINS[-2]},inf)"],
                "counts": self.knot_counts.tolist(),
                "mean": self.knot_sum / self.knot_n if self.knot_n else 0.0,
                "pairs": self.knot_n,
            },
        }


def write_shard(path: str | Path, samples: list[dict[str, Any]]) -> None:
    """Write samples (with metadata) to one .npz shard atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cu = [np.asarray(s["cu_seqlens"]) for s in samples]
    sg = [np.asarray(s["segments"]) for s in samples]
    arrays: dict[str, np.ndarray] = {
        "input_ids": np.stack([s["input_ids"] for s in samples]).astype(np.int32),
        "labels": np.stack([s["labels"] for s in samples]).astype(np.int32),
        "position_ids": np.stack([s["position_ids"] for s in samples]).astype(np.int32),
        "cu_seqlens": np.concatenate(cu).astype(np.int32),
        "cu_offsets": np.cumsum([0] + [len(c) for c in cu]).astype(np.int64),
        "segments": np.concatenate(sg).astype(np.int64) if sg else np.zeros((0, 8), np.int64),
        "seg_offsets": np.cumsum([0] + [len(x) for x in sg]).astype(np.int64),
        "num_pad": np.asarray([s["num_pad"] for s in samples], dtype=np.int64),
        "structure": np.frombuffer(json.dumps(samples[0]["structure"]).encode(), dtype=np.uint8),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        # numpy's stub lets **kwds also bind its `allow_pickle: bool` (2.1+); these names never include it, and
        # passing allow_pickle=True explicitly would save an array of that name on numpy < 2.1
        np.savez(fh, **arrays)  # type: ignore[arg-type]
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


MANIFEST = "manifest.json"  # in a build's root: {"version", "shards": {relative path: {bytes, sha256, sequences}}}


def shard_manifest_entry(build_root: Path, shard: Path) -> dict[str, Any] | None:
    """The manifest record of a shard (None when the build has no manifest or does not list the shard)."""
    from longkit.io import read_json

    mf = build_root / MANIFEST
    if not mf.is_file():
        return None
    data = read_json(mf, "build manifest")
    shards = data.get("shards") if isinstance(data, dict) else None
    if not isinstance(shards, dict):
        raise InputError(f"{mf}: not a longkit build manifest (no 'shards' mapping)")
    return shards.get(shard.relative_to(build_root).as_posix()) if shard.is_relative_to(build_root) else None


def check_shard(path: str | Path, verify: bool = False) -> None:
    """Size check against the build manifest (always) and SHA-256 (with verify); a mismatch names the file."""
    from longkit.data.sources import check_files

    path = Path(path).resolve()
    root = path.parent.parent
    rec = shard_manifest_entry(root, path)
    if rec is None:
        if verify:
            raise InputError(
                f"{path}: not listed in {root / MANIFEST}; cannot verify it (rebuild with "
                "`longkit data build` to get checksums)"
            )
        return
    check_files(path.parent, {path.name: rec}, verify=verify, what="shard")


def read_shard(path: str | Path, verify: bool = False) -> list[dict[str, Any]]:
    """Read a shard written by write_shard back into sample dicts (size checked against the build manifest)."""
    import zipfile

    path = Path(path)
    if path.is_dir():
        shards = sorted((path / "shards").glob("*.npz")) or sorted(path.glob("*.npz"))
        hint = f" (e.g. {shards[0]})" if shards else ""
        raise InputError(f"{path}: expected a shard file (.npz), got a directory{hint}")
    if not path.is_file():
        raise InputError(f"{path}: shard not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes); expected a shard written by `longkit data build`")
    check_shard(path, verify=verify)
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if not magic.startswith(b"PK") and magic != b"\x93NUMPY":  # neither a (possibly damaged) .npz nor a .npy
        raise InputError(
            f"{path}: not a longkit data shard (expected an .npz written by `longkit data build`, under <out>/shards/)"
        )
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise InputError(f"{path}: a single .npy array, not a longkit data shard (.npz from `longkit data build`)")
        structure = json.loads(bytes(z["structure"]).decode())
        out = []
        co, so = z["cu_offsets"], z["seg_offsets"]
        for i in range(len(z["input_ids"])):
            out.append(
                {
                    "input_ids": z["input_ids"][i],
                    "labels": z["labels"][i],
                    "position_ids": z["position_ids"][i],
                    "cu_seqlens": z["cu_seqlens"][co[i] : co[i + 1]],
                    "segments": z["segments"][so[i] : so[i + 1]],
                    "num_pad": int(z["num_pad"][i]),
                    "structure": structure,
                }
            )
    except InputError:
        raise
    except KeyError as exc:
        raise InputError(f"{path}: not a longkit data shard (no array {exc})") from None
    except (ValueError, OSError, EOFError, IndexError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: damaged or not a longkit data shard ({why})") from None
    if not out:
        raise InputError(f"{path}: shard holds no samples")
    return out
