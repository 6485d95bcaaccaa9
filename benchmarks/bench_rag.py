"""RAG benchmarks: embedding throughput of the bundled embedder on real text, index build time, exact
(and HNSW) query latency at 10K and 100K chunks, and reopen time. Writes benchmarks/results/rag.json.

    HF_HUB_OFFLINE=1 python benchmarks/bench_rag.py [--embed-chunks 100] [--sizes 10000,100000]

Latency indexes hold random unit vectors of the embedder's dimension (384) with real chunk texts
cycled from Python's language reference as metadata, committed in segments of 1,000 chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _pct(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1000
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


def bench_embedding(n_chunks: int, work: Path) -> dict:
    from longkit.rag.build import chunking_record, index_documents, open_or_create
    from longkit.rag.chunk import ChunkConfig, chunk_document
    from longkit.rag.embed import load_embedder
    from longkit.rag.sources import python_reference_text

    emb = load_embedder("all-minilm-l6-v2")
    text = python_reference_text()
    cfg = ChunkConfig(size=250 - emb.n_special, overlap=0)
    t0 = time.perf_counter()
    chunks = chunk_document(text, "ref", cfg, emb.tokenizer)
    chunk_s = time.perf_counter() - t0
    sample = chunks[:n_chunks]
    texts = [c.text for c in sample]
    tokens = sum(emb.token_counts(texts))
    emb.embed_documents(texts[:8])  # warm-up
    t0 = time.perf_counter()
    emb.embed_documents(texts)
    dt = time.perf_counter() - t0
    # Index build on real text: chunk + embed + commit, for the same amount of text.
    doc_text = text[: sample[-1].end]
    ix_dir = work / "real-index"
    index = open_or_create(ix_dir, emb, chunking_record(cfg, "embedder", "error"))
    t0 = time.perf_counter()
    stats = index_documents(index, [("ref-part", doc_text)], emb, cfg, commit_every=64)
    build_s = time.perf_counter() - t0
    return {
        "embedder": emb.name,
        "chunk_tokens": cfg.size,
        "chunks": len(texts),
        "tokens": tokens,
        "seconds": round(dt, 3),
        "chunks_per_s": round(len(texts) / dt, 2),
        "tokens_per_s": round(tokens / dt, 1),
        "chunking_whole_reference": {"chars": len(text), "chunks": len(chunks), "seconds": round(chunk_s, 3)},
        "index_build_real_text": {
            "chunks": stats.chunks,
            "seconds": round(build_s, 3),
            "chunks_per_s": round(stats.chunks / build_s, 2),
        },
    }


def _fill(path: Path, n: int, dim: int, kind: str, texts: list[str], seed: int = 0) -> tuple[float, np.ndarray]:
    from longkit.rag.chunk import Chunk
    from longkit.rag.index import VectorIndex

    rng = np.random.default_rng(seed)
    index = VectorIndex.create(path, {"name": "random-unit", "kind": "bench", "dim": dim}, kind=kind)
    seg = 1000
    t0 = time.perf_counter()
    for s in range(0, n, seg):
        m = min(seg, n - s)
        v = rng.standard_normal((m, dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        doc = f"doc{s // seg}"
        chunks = [
            Chunk(doc, i, 0, len(texts[(s + i) % len(texts)]), 250, texts[(s + i) % len(texts)]) for i in range(m)
        ]
        index.add(chunks, v, {doc: "h"})
    index.save_graph()
    return time.perf_counter() - t0, index._vectors


def bench_latency(sizes: list[int], queries: int, work: Path, hnsw_sizes: set[int]) -> dict:
    from longkit.rag.chunk import ChunkConfig, chunk_document
    from longkit.rag.index import VectorIndex
    from longkit.rag.sources import python_reference_text

    text = python_reference_text()
    texts = [c.text for c in chunk_document(text, "ref", ChunkConfig(size=250, unit="word"))]
    dim = 384
    rng = np.random.default_rng(123)
    qs = rng.standard_normal((queries, dim), dtype=np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    out = {}
    for n in sizes:
        path = work / f"exact-{n}"
        build_s, vectors = _fill(path, n, dim, "exact", texts)
        reopen = []
        for _ in range(5):
            t0 = time.perf_counter()
            index = VectorIndex.open(path)
            reopen.append(time.perf_counter() - t0)
        for q in qs[:10]:
            index.search(q, 10)
        lat = []
        for q in qs:
            t0 = time.perf_counter()
            index.search(q, 10)
            lat.append(time.perf_counter() - t0)
        size_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
        row = {
            "build_seconds": round(build_s, 3),
            "reopen_seconds_median": round(float(np.median(reopen)), 4),
            "reopen_seconds_max": round(float(max(reopen)), 4),
            "disk_mb": round(size_mb, 1),
            "exact_query": {**_pct(lat), "k": 10, "queries": queries},
        }
        if n in hnsw_sizes:
            hpath = work / f"hnsw-{n}"
            hbuild, _ = _fill(hpath, n, dim, "hnsw", texts)
            t0 = time.perf_counter()
            hidx = VectorIndex.open(hpath)
            h_reopen = time.perf_counter() - t0
            hl, recall = [], []
            for q in qs:
                t0 = time.perf_counter()
                got = hidx.search(q, 10)
                hl.append(time.perf_counter() - t0)
                truth = set(np.argpartition(-(vectors @ q), 10)[:10].tolist())
                recall.append(len({r for r, _ in got} & truth) / 10)
            row["hnsw"] = {
                "build_seconds": round(hbuild, 3),
                "reopen_seconds": round(h_reopen, 4),
                "query": _pct(hl),
                "recall_at_10": round(float(np.mean(recall)), 4),
                "m": 32,
                "ef_search": 64,
            }
            shutil.rmtree(hpath)
        out[str(n)] = row
        shutil.rmtree(path)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embed-chunks", type=int, default=100)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--hnsw-sizes", default="10000,100000", help="sizes that also get an HNSW index ('' for none)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "rag.json"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="bench-rag-"))
    try:
        result = {
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "note": "shared CPU (other jobs running); numbers are wall-clock",
            },
            "embedding": bench_embedding(args.embed_chunks, work),
            "latency": bench_latency(
                [int(x) for x in args.sizes.split(",")],
                args.queries,
                work,
                {int(x) for x in args.hnsw_sizes.split(",") if x},
            ),
            "command": "HF_HUB_OFFLINE=1 python benchmarks/bench_rag.py " + " ".join(sys.argv[1:]),
            "load_average_at_end": os.getloadavg(),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
