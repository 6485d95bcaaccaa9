"""Perplexity by window length and position of SmolLM2-135M-Instruct and of each `model extend` method (8K -> 16K)
on Paul Graham's essays (one long text, RULER's concatenation): the companion of bench_extend.py's passkey table.

Each model is scored through `longkit.eval.ppl.run_ppl` (non-overlapping windows, the first window of each length)
into runs/bench_ppl_extend/<method>/, which resumes; the JSON gathers every summary. Run it in the background:

    nohup nice -n 10 .venv/bin/python benchmarks/bench_ppl_extend.py > runs/bench_ppl_extend.log 2>&1 &
    python benchmarks/bench_ppl_extend.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def table(result: dict) -> str:
    """Markdown: perplexity per length, and the loss by position at the longest length."""
    lengths = result["lengths"]
    lines = ["| method | " + " | ".join(f"{n // 1024}K" for n in lengths) + " |", "|---|" + "---|" * len(lengths)]
    for method, s in result["models"].items():
        cells = [f"{s['by_length'][str(n)]['ppl']:.2f}" if "ppl" in s["by_length"][str(n)] else "–" for n in lengths]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    longest = str(lengths[-1])
    buckets = sorted(
        {int(b) for s in result["models"].values() for b in s["by_length"][longest].get("by_position", {})}
    )
    lines += [
        "",
        f"Mean token loss by position in the {int(longest) // 1024}K window:",
        "",
        "| method | " + " | ".join(f"{b // 1024}–{(b + result['bucket']) // 1024}K" for b in buckets) + " |",
        "|---|" + "---|" * len(buckets),
    ]
    for method, s in result["models"].items():
        pos = s["by_length"][longest].get("by_position", {})
        lines.append(
            f"| {method} | " + " | ".join(f"{pos[str(b)]:.3f}" if str(b) in pos else "–" for b in buckets) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    import torch

    from bench_extend import METHODS, build_models  # this directory is on sys.path when run as a script
    from longkit.backends.hf import HFBackend
    from longkit.eval.ppl import PplSettings, run_ppl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--target", type=int, default=16384)
    ap.add_argument("--lengths", default="4096,8192,16384")
    ap.add_argument("--windows", type=int, default=1, help="windows per length")
    ap.add_argument("--bucket", type=int, default=1024)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--root", default="runs/bench_ppl_extend")
    ap.add_argument("--models-root", default="runs/bench_extend", help="where bench_extend.py keeps its checkpoints")
    ap.add_argument("--out", default="benchmarks/results/ppl_extend_smollm2.json")
    ap.add_argument("--table", action="store_true", help="print the Markdown table of --out and exit")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(Path(args.out).read_text())))
        return
    torch.set_num_threads(os.cpu_count() or 1)
    lengths = [int(x) for x in args.lengths.split(",")]
    models = build_models(args.model, Path(args.models_root), args.target, abf_base=1.359e6)
    settings = PplSettings(
        data="essays", lengths=lengths, windows_per_document=args.windows, bucket=args.bucket, bootstrap=1000
    )
    result = {
        "model": args.model,
        "target": args.target,
        "lengths": lengths,
        "bucket": args.bucket,
        "windows_per_length": args.windows,
        "data": "essays",
        "machine": platform.platform(),
        "threads": torch.get_num_threads(),
        "models": {},
        "seconds": {},
    }
    for method in args.methods.split(","):
        info = models[method]
        started = time.perf_counter()
        backend = HFBackend.from_name(info["model"])
        summary = run_ppl(
            settings,
            backend,
            Path(args.root) / method,
            model_name=method,
            allow_extrapolation=info["allow_extrapolation"],
            progress=True,
        )
        result["models"][method] = summary | {"rope_parameters": info["rope_parameters"]}
        result["seconds"][method] = round(time.perf_counter() - started, 1)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"{method}: " + ", ".join(f"{k}: {v.get('ppl')}" for k, v in summary["by_length"].items()), flush=True)
    print(table(result))


if __name__ == "__main__":
    main()
