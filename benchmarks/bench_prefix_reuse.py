"""Prefix KV-cache reuse in the hf backend: wall time with and without reuse on (1) a NIAH grid (the
depths of one length share the haystack before the needle) and (2) several questions about one document.
Checks that the answers are identical and writes benchmarks/results/prefix_reuse.json.

    .venv/bin/python benchmarks/bench_prefix_reuse.py [--model smollm2-135m-instruct] [--length 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--length", type=int, default=2048, help="NIAH length / document tokens")
    ap.add_argument("--depths", default="0,25,50,75,100")
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved repetitions; the minimum time is reported")
    ap.add_argument("--out", default="benchmarks/results/prefix_reuse.json")
    args = ap.parse_args()

    import torch

    from longkit.backends.base import GenerationRequest
    from longkit.backends.hf import HFBackend
    from longkit.eval.tasks.niah import NIAHConfig, NIAHTask

    plain = HFBackend.from_name(args.model, batch_size=1)
    reuse = HFBackend(plain.model, plain.hf_tokenizer, batch_size=1, prefix_reuse=True)
    tok = plain.tokenizer

    task = NIAHTask(
        NIAHConfig(
            lengths=[args.length], depths=[float(d) for d in args.depths.split(",")], answer_budget=args.max_new_tokens
        )
    )
    niah = [task.build(s, tok, plain.max_context).request() for s in task.plan()]

    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    doc = tok.decode(tok.encode(text)[: args.length])
    questions = [
        "What does the assert statement do?",
        "How is a with statement executed?",
        "What is a coroutine?",
        "What does the global statement declare?",
        "How are exceptions raised?",
        "What is a lambda expression?",
    ][: args.questions]
    multi = [
        GenerationRequest(
            messages=[{"role": "user", "content": f"{doc}\n\nAnswer briefly: {q}"}], max_new_tokens=args.max_new_tokens
        )
        for q in questions
    ]

    def timed(backend, reqs):
        backend.reused_tokens = 0
        backend._last_prefill = ([], None)  # no reuse across repetitions or scenarios
        t0 = time.perf_counter()
        out = backend.generate(reqs)
        return time.perf_counter() - t0, out, backend.reused_tokens

    results = {}
    for name, reqs in (("niah_grid", niah), ("multi_question_document", multi)):
        timed(plain, reqs[:1])  # warm-up
        plain_times, reuse_times, same = [], [], True
        for _ in range(args.repeats):  # interleaved, so drifting machine load hits both arms alike
            t_plain, a, _ = timed(plain, reqs)
            t_reuse, b, reused = timed(reuse, reqs)
            plain_times.append(round(t_plain, 2))
            reuse_times.append(round(t_reuse, 2))
            same = same and [c.text for c in a] == [c.text for c in b]
        prompt_tokens = sum(c.prompt_tokens for c in a)
        results[name] = {
            "requests": len(reqs),
            "prompt_tokens": prompt_tokens,
            "reused_prompt_tokens": reused,
            "reused_fraction": round(reused / prompt_tokens, 3),
            "seconds_without_reuse": min(plain_times),
            "seconds_with_reuse": min(reuse_times),
            "all_seconds_without_reuse": plain_times,
            "all_seconds_with_reuse": reuse_times,
            "speedup": round(min(plain_times) / min(reuse_times), 2),
            "identical_answers": same,
        }
        print(name, results[name], flush=True)
    report = {
        "benchmark": "prefix_reuse",
        "model": args.model,
        "load_average_at_end": os.getloadavg(),
        "length": args.length,
        "max_new_tokens": args.max_new_tokens,
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "results": results,
        "command": "python benchmarks/bench_prefix_reuse.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
