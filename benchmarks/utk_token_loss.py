"""Share of text tokens the UtK `authors` preset loses to `overflow: truncate`, on a real corpus.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/utk_token_loss.py [--tokens 10000000] [--seq-len 131072 8192]

Corpus: Python's documentation topics (pydoc_data.topics) tokenized with the bundled SmolLM2
tokenizer, every document whole, repeated in a fresh seeded order per pass until the stream holds
--tokens tokens, each followed by EOS (as `separator: eos` in configs/data/cpt-utk-authors.yaml).
The authors' released code (rgtjf/Untie-the-Knots gpt_dataset_utk.py) cuts only the overflow that
the added structure tokens cause and lets documents continue in the next window.
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
    return st


def main() -> None:
    """Run the measurement and write the JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--seq-len", type=int, nargs="+", default=[131072, 8192])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "utk_token_loss.json"))
    args = ap.parse_args()
    from longkit.models.load import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    docs = corpus_stream(tok, args.tokens)
    runs = [measure(tok, docs, s) for s in args.seq_len]
    for r in runs:
        print(f"seq_len {r['seq_len']}: {r['tokens_in']:,} tokens in, {r['tokens_dropped']:,} dropped "
              f"({100 * r['dropped_share']:.2f}%), {r['sequences']} sequences")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    command = f"python benchmarks/utk_token_loss.py --tokens {args.tokens} --seq-len {' '.join(map(str, args.seq_len))}"
    res = {"command": command, "commit": commit,
           "corpus": "pydoc_data.topics (SmolLM2 tokens), whole documents repeated in seeded order",
           "documents": len(docs), "preset": "authors", "overflow": "truncate", "runs": runs,
           "python": platform.python_version()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
