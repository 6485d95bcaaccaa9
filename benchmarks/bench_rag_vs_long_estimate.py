"""How close is `eval rag-vs-long`'s run-time estimate to the run it estimates?

Runs a small sweep on the bundled model (the first N questions of configs/rag/python-reference-qa.jsonl)
and writes the estimate (measured prefill, decode and embedding) beside the measured wall time of
the same run to benchmarks/results/rag_vs_long_estimate.json.

    HF_HUB_OFFLINE=1 python benchmarks/bench_rag_vs_long_estimate.py --questions 2 --max-context 2048
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Estimate, then run, then write both."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--questions", type=int, default=2)
    ap.add_argument("--chunk-sizes", default="300")
    ap.add_argument("--top-ks", default="2,5")
    ap.add_argument("--max-context", type=int, default=2048)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rag_vs_long_estimate.json"))
    args = ap.parse_args()

    from longkit.backends.hf import HFBackend
    from longkit.eval.rag_vs_long import SweepPlan, load_qa, sweep
    from longkit.rag.embed import load_embedder
    from longkit.rag.pipeline import RagSettings

    items = load_qa(ROOT / "configs" / "rag" / "python-reference-qa.jsonl", limit=args.questions)
    backend = HFBackend.from_name("smollm2-135m-instruct", max_context=args.max_context, batch_size=1)
    emb = load_embedder("all-minilm-l6-v2")
    sizes = [int(x) for x in args.chunk_sizes.split(",")]
    ks = [int(x) for x in args.top_ks.split(",")]
    estimates: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        plan = SweepPlan(
            chunk_sizes=tuple(sizes),
            top_ks=tuple(ks),
            settings=RagSettings(max_new_tokens=args.max_new_tokens),
            batch_size=1,
        )
        summary = sweep(
            items, backend, emb, plan, out_dir=d, model_name="smollm2-135m-instruct", on_estimate=estimates.append
        )
        total = time.perf_counter() - t0
    est = estimates[0]
    result = {
        "command": "python benchmarks/bench_rag_vs_long_estimate.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
        "estimate": est,
        "measured_total_seconds": round(total, 1),
        "estimate_over_measured": round(est["seconds"] / total, 2) if total else None,
        "answers": summary["answers"],
        "empty_answers": summary["empty_answers"],
        "prompt_style": summary["prompt_style"],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
