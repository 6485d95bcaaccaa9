"""Share of text tokens the UtK `authors` preset loses to `overflow: truncate`, on a real corpus.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/utk_token_loss.py [--tokens N] [--seq-len 131072 8192] [--seeds 5]

Corpus: Python's documentation topics (pydoc_data.topics) tokenized with the bundled SmolLM2
tokenizer, every document whole, repeated in a fresh seeded order per pass until the stream holds
--tokens tokens, each followed by EOS (as `separator: eos` in configs/data/cpt-utk-authors.yaml).
The authors' released code (rgtjf/Untie-the-Knots gpt_dataset_utk.py) cuts only the overflow that
the added structure tokens cause and lets documents continue in the next window; `authors_rule`
re-derives their token accounting on the same stream, so the two shares can be compared directly.
Writes benchmarks/results/utk_token_loss.json (or --out).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def corpus_stream(tok, n_tokens: int, seed: int = 0) -> list[np.ndarray]:
    """Whole pydoc topics documents, reshuffled per pass, until n_tokens tokens (EOS not counted)."""
    from pydoc_data.topics import topics

    keys = sorted(topics)
    docs = [np.asarray(x, np.int32) for x in tok([topics[k] for k in keys], add_special_tokens=False)["input_ids"]]
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    total = 0
    while total < n_tokens:
        for i in rng.permutation(len(docs)).tolist():
            out.append(docs[i])
            total += len(docs[i])
            if total >= n_tokens:
                break
    return out


def authors_rule(tok, docs: list[np.ndarray], seq_len: int, seed: int = 47) -> dict:
    """Token accounting of the authors' algorithm on the same stream, re-derived here from their code.

    Follows GPTDatasetUtK.__getitem__ / denoise_text_multi_hop (chunk_probs_cfg ([0.7, 0.3],
    [[1, 0, 0], [0, 0, 1]]), even split, add_sort_task, preserve_partial_order=False): each Megatron
    sample is seq_len + 1 stream tokens (EOD after every document), split after each EOD; every part
    gets `<D> label </D>`, knots of one token, and `<S> ... </S>` after the part that
    `process_sorted_samples` picks (for the last sample, from the index its shuffle records). The
    concatenation is cut to seq_len + 1; the text tokens cut off are lost (the last token of a sample
    is also the first of the next, so it is not lost). Only lengths are tracked, not token ids.
    """
    chars = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), dtype="<U1")
    backend = tok._tokenizer
    lens = np.array([len(d) + 1 for d in docs], dtype=np.int64)  # + EOD
    ends = np.cumsum(lens)
    total = int(ends[-1])
    lost = structure = 0
    windows = (total - 1) // seq_len
    for w in range(windows):
        rng = np.random.default_rng(seed * 100000 + w)
        a, b = w * seq_len, w * seq_len + seq_len + 1
        n_chunks = 1 if rng.random() < 0.7 else 3
        cuts = sorted({a, b} | {int(e) for e in ends[(ends > a) & (ends < b)]})
        parts_num, elems = [], []  # elems[sample] = list of part text lengths
        for x, y in zip(cuts[:-1], cuts[1:]):
            m = y - x
            k = 1 if n_chunks == 1 or m < n_chunks else n_chunks
            pos = [m // k * j for j in range(k)] + [m]
            elems.append([pos[j + 1] - pos[j] for j in range(k)])
            parts_num.append(k)
        last_k = parts_num[-1]
        shuffled_n = sum(parts_num) - 1
        order = rng.permutation(shuffled_n)
        stream: list[tuple[int, int]] = [None] * shuffled_n  # type: ignore[list-item]
        where: dict[int, list[int]] = {}
        start = 0
        for s_i, k in enumerate(parts_num):
            k_here = k - 1 if s_i == len(parts_num) - 1 else k
            for j in range(k_here):
                stream[int(order[start + j])] = (s_i, j)
            where[s_i] = [int(v) for v in order[start : start + k_here]]
            start += k_here
        stream.append((len(parts_num) - 1, last_k - 1))
        where.setdefault(len(parts_num) - 1, []).append(last_k - 1)  # their part number, not the position
        labels = np.ascontiguousarray(chars[rng.integers(0, len(chars), size=(len(stream), 6))]).view("<U6").ravel()
        lab_len = [len(e.ids) for e in backend.encode_batch(labels.tolist(), add_special_tokens=False)]
        layout: list[tuple[bool, int]] = []  # (is_text, length) runs in stream order
        for idx, (s_i, j) in enumerate(stream):
            k = parts_num[s_i]
            if k > 1:
                layout.append((False, 2 + lab_len[idx] + int(j > 0)))  # <D> label </D> [head knot]
            layout.append((True, elems[s_i][j]))
            if k > 1 and j < k - 1:
                layout.append((False, 1))  # tail knot
            if k > 1 and idx == max(where[s_i]):
                layout.append((False, 2 + sum(lab_len[p] for p in where[s_i]) + len(where[s_i]) - 1))
        extra = sum(n for is_text, n in layout if not is_text)
        structure += extra
        cut, first = extra, True
        for is_text, n in reversed(layout):
            if cut <= 0:
                break
            c = min(cut, n)
            if is_text:
                lost += c - int(first)  # the sample's final token comes again in the next sample
            first = first and not is_text
            cut -= c
    return {
        "seq_len": seq_len,
        "windows": windows,
        "stream_tokens": total,
        "tokens_structure": structure,
        "tokens_lost": lost,
        "lost_share": lost / (total - len(docs)),
        "seed": seed,
    }


def measure(tok, docs: list[np.ndarray], seq_len: int, seed: int = 0) -> dict:
    """Pack the stream with the authors preset; token accounting from Packer.stats."""
    from longkit.data.pack import Packer, Piece
    from longkit.data.utk import UtKTransform, add_utk_special_tokens, utk_preset

    cfg = utk_preset("authors")
    t = copy.deepcopy(tok)
    add_utk_special_tokens(t, cfg)
    packer = Packer(seq_len, UtKTransform(t, cfg), [t.eos_token_id], pad_id=t.eos_token_id, overflow="truncate")
    t0 = time.process_time()
    for _ in packer.pack((Piece(i, i, 0, d) for i, d in enumerate(docs)), np.random.default_rng(seed)):
        pass
    st = dict(packer.stats)
    st["cpu_seconds"] = round(time.process_time() - t0, 2)
    st["dropped_share"] = st["tokens_dropped"] / st["tokens_in"]
    st["seq_len"] = seq_len
    st["seed"] = seed
    return st


def main() -> None:
    """Run the measurement and write the JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--seq-len", type=int, nargs="+", default=[131072, 8192])
    ap.add_argument("--seeds", type=int, default=5, help="augmentation seeds averaged (the stream stays the same)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "utk_token_loss.json"))
    args = ap.parse_args()
    from longkit.models.load import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    docs = corpus_stream(tok, args.tokens)
    runs = [measure(tok, docs, s, seed) for s in args.seq_len for seed in range(args.seeds)]
    authors = [authors_rule(tok, docs, s, 47 + seed) for s in args.seq_len for seed in range(args.seeds)]
    summary = []
    for s in args.seq_len:
        mine = [r["dropped_share"] for r in runs if r["seq_len"] == s]
        theirs = [q["lost_share"] for q in authors if q["seq_len"] == s]
        summary.append(
            {
                "seq_len": s,
                "longkit_dropped_share_mean": float(np.mean(mine)),
                "longkit_dropped_share_min_max": [min(mine), max(mine)],
                "authors_rule_lost_share_mean": float(np.mean(theirs)),
                "authors_rule_lost_share_min_max": [min(theirs), max(theirs)],
            }
        )
        print(
            f"seq_len {s}: longkit drops {100 * np.mean(mine):.2f}% ({100 * min(mine):.2f}-{100 * max(mine):.2f}); "
            f"authors' rule on the same stream {100 * np.mean(theirs):.2f}% "
            f"({100 * min(theirs):.2f}-{100 * max(theirs):.2f}), {args.seeds} seeds"
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    ).stdout.strip()
    command = (
        f"python benchmarks/utk_token_loss.py --tokens {args.tokens} "
        f"--seq-len {' '.join(map(str, args.seq_len))} --seeds {args.seeds}"
    )
    res = {
        "command": command,
        "commit": commit,
        "corpus": "pydoc_data.topics (SmolLM2 tokens), whole documents repeated in seeded order",
        "documents": len(docs),
        "preset": "authors",
        "overflow": "truncate",
        "summary": summary,
        "runs": runs,
        "authors_rule": authors,
        "python": platform.python_version(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
