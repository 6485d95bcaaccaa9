"""Training-free RoPE extension of the bundled SmolLM2-135M (8K, rope_theta 1e5) to 16K, measured by passkey.

Each method of `longkit model extend` (PI/linear, dynamic NTK, YaRN, Llama 3, and ABF without training as the
control that needs continued pretraining) writes a checkpoint through `longkit.models.rope.extend_model`; the
unextended model runs beside them with extrapolation allowed. Passkey retrieval is InfiniteBench-style: the
needle "The pass key is {key}. Remember it. {key} is the pass key." in the repeated noise sentence "The grass is
green. ..." (InfiniteBench's generator), with the question stated before and after the text (`question-both`,
which this 135M model needs to find the key even at 1K).

The run is long on a CPU (prefill of 16K tokens takes minutes), so it is resumable: every sample is appended to
runs/bench_extend/<method>/L<length>/d<depth>/results.jsonl as soon as it is scored and a rerun skips what is done; the
summary JSON is rewritten after every (length, method) cell and says `partial: true` until the grid is complete.

    nohup nice -n 10 .venv/bin/python benchmarks/bench_extend.py > runs/bench_extend.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

METHODS = ("none", "pi", "dynamic", "yarn", "llama3", "abf")


def build_models(src: str, root: Path, target: int, abf_base: float) -> dict[str, dict[str, Any]]:
    """Extend `src` with each method (once; an existing checkpoint is reused) and describe each model."""
    from longkit.models.rope import extend_model

    models: dict[str, dict[str, Any]] = {"none": {"model": src, "rope_parameters": None, "allow_extrapolation": True}}
    for method in METHODS[1:]:
        out = root / "models" / method
        plan_file = out / "longkit_plan.json"
        if not plan_file.exists():
            plan = extend_model(src, out, method, target, base=abf_base if method == "abf" else None)
            plan_file.write_text(json.dumps(plan.as_dict(), indent=2))
        plan = json.loads(plan_file.read_text())
        models[method] = {
            "model": str(out),
            "rope_parameters": plan["rope_parameters"],
            "max_position_embeddings": plan["max_position_embeddings"],
            # dynamic NTK keeps the original window in the config (transformers scales from it)
            "allow_extrapolation": plan["max_position_embeddings"] < target,
        }
    return models


def cell_dir(root: Path, method: str, length: int, depth: float) -> Path:
    """Where one (method, length, depth) cell keeps its per-sample results."""
    return root / method / f"L{length}" / f"d{depth:g}"


def summarise(
    root: Path,
    models: dict[str, dict[str, Any]],
    lengths: list[int],
    depths: list[float],
    args: argparse.Namespace,
    started: float,
) -> dict[str, Any]:
    """Collect every scored sample into one JSON object with a method x length accuracy table."""
    rows, table = [], {}
    for method in models:
        table[method] = {}
        for length in lengths:
            recs = []
            for depth in depths:
                f = cell_dir(root, method, length, depth) / "results.jsonl"
                recs += [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.exists() else []
            for r in recs:
                rows.append(
                    {
                        "method": method,
                        "length": length,
                        "depth": r["meta"].get("depth"),
                        "prompt_tokens": r.get("prompt_tokens"),
                        "reference": r["references"][0],
                        "prediction": r["prediction"],
                        "score": r["scores"]["score"],
                        "seconds": r["seconds"],
                    }
                )
            if recs:
                table[method][str(length)] = {
                    "accuracy": sum(r["scores"]["score"] for r in recs) / len(recs),
                    "n": len(recs),
                }
    planned = len(models) * len(lengths) * len(depths)
    return {
        "benchmark": "passkey retrieval after training-free RoPE extension 8K -> 16K",
        "partial": len(rows) < planned,
        "samples_done": len(rows),
        "samples_planned": planned,
        "model": args.model,
        "target_length": args.target,
        "lengths": lengths,
        "depths": depths,
        "abf_base": args.abf_base,
        "template": "question-both",
        "haystack": "noise (InfiniteBench's repeated sentence)",
        "answer_budget": args.answer_budget,
        "key_digits": 5,
        "seed": args.seed,
        "methods": {m: {k: v for k, v in d.items() if k != "model"} for m, d in models.items()},
        "accuracy": table,
        "samples": rows,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "nice": os.nice(0)},
        "wall_seconds_this_run": round(time.time() - started, 1),
        "command": "nice -n 10 python benchmarks/bench_extend.py",
    }


def markdown_table(res: dict[str, Any]) -> str:
    """Method x length table of passkey hits/samples (blank: not measured), with each method's RoPE setting."""
    lengths = [str(n) for n in sorted(res["lengths"])]
    head = "| method | rope_parameters | " + " | ".join(f"{int(n) // 1024}K" for n in lengths) + " |"
    rows = [head, "|" + " --- |" * (len(lengths) + 2)]
    for m, spec in res["methods"].items():
        rp = spec.get("rope_parameters")
        rp_txt = (
            "unextended (8K window, extrapolating)"
            if rp is None
            else ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in rp.items())
        )
        cells = []
        for n in lengths:
            c = res["accuracy"].get(m, {}).get(n)
            cells.append(f"{round(c['accuracy'] * c['n'])}/{c['n']}" if c else "")
        rows.append(f"| {m} | {rp_txt} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    """Extend, run the passkey grid cell by cell (resumable), write the summary JSON after each cell."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--target", type=int, default=16384)
    ap.add_argument("--lengths", default="16384,4096,8192,12288", help="run order within each depth: the target first")
    ap.add_argument("--depths", default="50,10,90", help="run order: one full pass per depth")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument(
        "--abf-base",
        type=float,
        default=None,
        help="ABF control base (default: longkit's minimum base for the target at the model's head dim)",
    )
    ap.add_argument("--answer-budget", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default="runs/bench_extend")
    ap.add_argument("--out", default="benchmarks/results/extend_smollm2.json")
    ap.add_argument("--table", action="store_true", help="print the Markdown table of --out and exit")
    args = ap.parse_args()
    if args.table:
        print(markdown_table(json.loads(Path(args.out).read_text())))
        return

    from longkit.eval.needle_run import NeedleRunConfig, run_needles
    from longkit.io import write_json
    from longkit.models.load import model_info
    from longkit.models.rope import min_base

    started = time.time()
    root = Path(args.root)
    lengths = [int(x) for x in args.lengths.split(",")]
    depths = [float(x) for x in args.depths.split(",")]
    if args.abf_base is None:
        args.abf_base = round(min_base(int(model_info(args.model)["head_dim"]), args.target), -3)
    models = build_models(args.model, root, args.target, args.abf_base)
    models = {m: models[m] for m in args.methods.split(",")}
    # Depth-major: a partial run still has every method at every length for the first depths.
    for depth in depths:
        for length in lengths:
            for method, spec in models.items():
                cfg = NeedleRunConfig(
                    model=spec["model"],
                    lengths=[length],
                    depths=[depth],
                    haystack="noise",
                    template="question-both",
                    answer_budget=args.answer_budget,
                    seed=args.seed,
                    allow_extrapolation=spec["allow_extrapolation"] or length > args.target,
                    out=str(cell_dir(root, method, length, depth)),
                )
                t0 = time.time()
                s = run_needles(cfg, "passkey", progress=False, report=False)
                print(
                    f"{method:8s} L={length:6d} depth={depth:g} score={s['overall'].get('score', float('nan')):.0f} "
                    f"({time.time() - t0:.0f} s)",
                    flush=True,
                )
                write_json(Path(args.out), summarise(root, models, lengths, depths, args, started))
    print(json.dumps(summarise(root, models, lengths, depths, args, started)["accuracy"], indent=1))


if __name__ == "__main__":
    main()
