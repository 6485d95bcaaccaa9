"""Throughput of the UtK transform + packing on pre-tokenized documents (one core), vs pure Python.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_data.py [--tokens 100000000] [--seq-len 131072]

Times are CPU seconds of this process (time.process_time, best of --repeats) pinned to one core, so
other load on a shared machine does not count; wall seconds are reported next to them.
Documents are real SmolLM2 token ids (Python's documentation topics) cut into lengths drawn from a
log-normal distribution (median ~2K tokens, long tail), i.e. views into one int32 array, the way the
streaming dataset reads them from the corpus memmap. Writes benchmarks/results/bench_data.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_docs(base: np.ndarray, n_tokens: int, seed: int = 0) -> list[np.ndarray]:
    """Document views with log-normal lengths over a corpus array tiled to n_tokens."""
    rng = np.random.default_rng(seed)
    big = np.resize(base, n_tokens).astype(np.int32)
    lens = np.clip(rng.lognormal(np.log(2048), 1.2, size=n_tokens // 500), 16, 200_000).astype(np.int64)
    ends = np.cumsum(lens)
    ends = ends[ends <= n_tokens]
    starts = np.concatenate(([0], ends[:-1]))
    return [big[a:b] for a, b in zip(starts, ends)]


def python_utk(
    docs: list[list[int]], seq_len: int, cfg, pool: list[list[int]], special: dict, sep: list[int], seed: int
) -> list[tuple[list[int], list[int]]]:
    """Straightforward pure-Python UtK + packing (lists, per-token loops): the comparison baseline."""
    rnd = random.Random(seed)
    out = []
    counts = sorted(cfg.chunk_dists[0][1].items())
    i = 0
    pending = None
    while i < len(docs) or pending:
        space = seq_len
        items = []  # (doc tokens, n, labels)
        used_labels = set()
        while space > 0:
            if pending is None:
                if i >= len(docs):
                    break
                pending = docs[i]
                i += 1
            d = pending
            n = 1
            if len(d) >= 2 and rnd.random() < cfg.probability:
                r, acc = rnd.random(), 0.0
                for k, p in counts:
                    acc += p
                    if r < acc:
                        n = min(k, len(d))
                        break
            labels = []
            if n > 1:
                while len(labels) < n:
                    j = rnd.randrange(len(pool))
                    if j not in used_labels:
                        used_labels.add(j)
                        labels.append(j)
            over = 0 if n == 1 else sum(2 + 2 * len(pool[j]) for j in labels) + 2 * (n - 1) + 2
            if len(d) + over + len(sep) <= space:
                items.append((d, n, labels))
                space -= len(d) + over + len(sep)
                pending = None
            else:
                fit = max(1, space - over)
                if fit < n:
                    n, labels, over, fit = 1, [], 0, space
                items.append((d[:fit], n, labels))
                pending = d[fit:] or None
                space = 0
        chunks = []
        for di, (d, n, _labels) in enumerate(items):
            cuts = sorted(rnd.sample(range(1, len(d)), n - 1)) if n > 1 else []
            b = [0] + cuts + [len(d)]
            for j in range(n):
                chunks.append((di, j, d[b[j] : b[j + 1]]))
        pos = list(range(len(chunks)))
        rnd.shuffle(pos)
        by_doc = {}
        for c, (di, _j, _) in enumerate(chunks):
            by_doc.setdefault(di, []).append(pos[c])
        for di in by_doc:
            by_doc[di].sort()
        stream = [None] * len(chunks)
        for _c, (di, j, t) in enumerate(chunks):
            stream[by_doc[di][j]] = (di, j, t)
        last = {di: max(p) for di, p in by_doc.items()}
        ids, lab = [], []
        for p, (di, j, t) in enumerate(stream):
            d, n, labels = items[di]
            if n > 1:
                pre = [special["<CL>"]] + pool[labels[j]] + [special["</CL>"]]
                for tok in pre:
                    ids.append(tok)
                    lab.append(-100)
                if j > 0:
                    ids.append(special["<HK>"])
                    lab.append(-100)
            for tok in t:
                ids.append(tok)
                lab.append(tok)
            if n > 1 and j < n - 1:
                ids.append(special["<TK>"])
                lab.append(-100)
            if p == last[di]:
                if n > 1:
                    ids.append(special["<S>"])
                    lab.append(-100)
                    for k in labels:
                        for tok in pool[k]:
                            ids.append(tok)
                            lab.append(tok)
                    ids.append(special["</S>"])
                    lab.append(special["</S>"])
                if d is not None:
                    for tok in sep:
                        ids.append(tok)
                        lab.append(tok)
        while len(ids) < seq_len:
            ids.append(0)
            lab.append(-100)
        out.append((ids[:seq_len], lab[:seq_len]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=100_000_000)
    ap.add_argument("--python-tokens", type=int, default=3_000_000)
    ap.add_argument("--seq-len", type=int, default=131072)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/bench_data.json")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    except (AttributeError, OSError):
        pass
    from pydoc_data.topics import topics

    from longkit.data.cip import CIPTransform
    from longkit.data.config import resolve_separator
    from longkit.data.pack import Packer, Piece, Transform
    from longkit.data.utk import UtKConfig, UtKTransform, add_utk_special_tokens, utk_special_tokens
    from longkit.models.load import load_tokenizer

    tok = copy.deepcopy(load_tokenizer("smollm2-135m-instruct"))
    base = np.asarray(
        tok("\n\n".join(topics[k] for k in sorted(topics)), add_special_tokens=False)["input_ids"], dtype=np.int32
    )
    cfg = UtKConfig()
    add_utk_special_tokens(tok, cfg)
    sep = resolve_separator(tok, "<s>")
    docs = make_docs(base, args.tokens)
    n_tok = int(sum(len(d) for d in docs))
    results = {}
    transforms = {"utk": UtKTransform(tok, cfg), "cip": CIPTransform(), "plain": Transform()}
    for name, tr in transforms.items():
        best = wall = None
        for r in range(args.repeats):
            packer = Packer(args.seq_len, tr, sep, pad_id=0)
            rng = np.random.default_rng(r)
            t0, c0 = time.perf_counter(), time.process_time()
            n_seq = 0
            for _s in packer.pack((Piece(i, i, 0, d) for i, d in enumerate(docs)), rng):
                n_seq += 1
            dt, dw = time.process_time() - c0, time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
            wall = dw if wall is None else min(wall, dw)
        results[name] = {
            "seconds": best,
            "wall_seconds": wall,
            "input_tokens": n_tok,
            "sequences": n_seq,
            "output_tokens": n_seq * args.seq_len,
            "tokens_per_s": n_tok / best,
            "docs": len(docs),
            "docs_split_across": packer.stats["docs_split_across"],
            "structure_tokens": packer.stats["tokens_structure"],
        }
        print(
            f"{name:6s} {n_tok / best / 1e6:8.1f} M input tokens/s  ({n_seq} sequences of {args.seq_len}, {best:.2f}s)"
        )
    # pure-Python baseline on a prefix of the same documents
    py_docs, total = [], 0
    for d in docs:
        if total >= args.python_tokens:
            break
        py_docs.append(d.tolist())
        total += len(d)
    special = {t: tok.convert_tokens_to_ids(t) for t in utk_special_tokens(cfg)}
    pool = [p.tolist() for p in transforms["utk"].pool]
    t0, c0 = time.perf_counter(), time.process_time()
    out = python_utk(py_docs, args.seq_len, cfg, pool, special, sep, seed=0)
    dt, dw = time.process_time() - c0, time.perf_counter() - t0
    results["utk_pure_python"] = {
        "seconds": dt,
        "wall_seconds": dw,
        "input_tokens": total,
        "sequences": len(out),
        "tokens_per_s": total / dt,
    }
    ratio = results["utk"]["tokens_per_s"] / results["utk_pure_python"]["tokens_per_s"]
    print(f"pure-Python UtK {total / dt / 1e6:.2f} M tokens/s; vectorised/pure-Python = {ratio:.0f}x")
    report = {
        "command": "python benchmarks/bench_data.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cores_used": 1,
        },
        "seq_len": args.seq_len,
        "utk_config": cfg.to_dict(),
        "separator": "<s> as text",
        "doc_lengths": {
            "distribution": "lognormal(median 2048, sigma 1.2), clipped to [16, 200000]",
            "mean": n_tok / len(docs),
        },
        "results": results,
        "speedup_vs_pure_python": ratio,
        "target_tokens_per_s": 50_000_000,
        "meets_target": results["utk"]["tokens_per_s"] >= 50e6,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
