"""lm-evaluation-harness as a real client of `longkit serve`: its `local-completions` model (default settings, so
prompts go as token ids and multiple-choice answers are scored through echo + logprobs) and its
`local-chat-completions` model (with a `gen_prefix`, sent as a final assistant message), on a small arithmetic task
generated here and loaded from local JSONL (no Hub download).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_lm_eval_client.py [--model smollm2-135m-instruct] [--limit 40]

Needs lm_eval (pip install 'lm_eval[api]==0.4.13'). Three lm-eval runs against one server: completions (a
loglikelihood task and a generate_until task), chat with the server's default (the assistant prefix is closed and a
new turn opened), and chat with `continue_final_message` (the model continues the prefix). Writes
benchmarks/results/lm_eval_client.json: lm-eval's version, each run's metrics and wall time, and the HTTP statuses
the server answered during each run (every one must be a 200).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "lm_eval_client.json"

QUESTION = "Question: What is {{a}} plus {{b}}?\nAnswer:"
ANSWER_NUMBER = [
    {"name": "first_number", "filter": [{"function": "regex", "regex_pattern": "(-?\\d+)"}, {"function": "take_first"}]}
]


def write_task(folder: Path, n: int, seed: int = 0) -> None:
    """n sums of small numbers as JSONL, and three lm-eval tasks over them (multiple choice, completion, chat)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        wrong = rng.sample([x for x in range(2, 19) if x != a + b], 3)
        choices = [str(x) for x in sorted([a + b, *wrong])]
        rows.append({"a": a, "b": b, "answer": str(a + b), "choices": choices, "label": choices.index(str(a + b))})
    data = folder / "sums.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = {
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "doc_to_text": QUESTION,
    }
    gen = {
        "output_type": "generate_until",
        "doc_to_target": "answer",
        "filter_list": ANSWER_NUMBER,
        "generation_kwargs": {"until": ["\n"], "max_gen_toks": 8, "do_sample": False, "temperature": 0},
        "metric_list": [{"metric": "exact_match"}],
    }
    tasks = {
        "lk_sums_mc": {
            **common,
            "output_type": "multiple_choice",
            "doc_to_choice": "choices",
            "doc_to_target": "label",
            "metric_list": [{"metric": "acc"}],
        },
        "lk_sums_gen": {**common, **gen},
        "lk_sums_chat": {**common, **gen, "doc_to_text": "What is {{a}} plus {{b}}?", "gen_prefix": "The answer is"},
    }
    for name, task in tasks.items():  # JSON is YAML: no YAML writer needed
        (folder / f"{name}.yaml").write_text(json.dumps({"task": name, **task}, indent=1))


def start_server(model: str, port: int) -> subprocess.Popen[bytes]:
    """`longkit serve` on 127.0.0.1:port, once /health answers."""
    log = open(Path(tempfile.gettempdir()) / f"lm_eval_client_serve_{port}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "longkit", "serve", "--model", model, "--port", str(port), "--kv-cache-tokens", "4096"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.time() + 600
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"longkit serve did not start; see {log.name}")
        time.sleep(0.5)


def statuses(url: str) -> dict[str, int]:
    """Requests the server answered so far on its two completion endpoints, by endpoint and status."""
    text = httpx.get(url + "/metrics", timeout=10).text
    pattern = r'^longkit_requests_total\{endpoint="(/v1/[a-z/]+)",status="(\d+)"\} (\d+)'
    return {f"{e} {s}": int(float(n)) for e, s, n in re.findall(pattern, text, flags=re.M)}


def lm_eval(args: list[str], work: Path, name: str, url: str) -> dict[str, object]:
    """Run the lm-eval CLI once; its metrics, wall time and the statuses the server answered meanwhile."""
    before = statuses(url)
    out = work / name
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "run",
        *args,
        "--include_path",
        str(work),
        "--output_path",
        str(out),
        "--log_samples",
    ]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_DATASETS_OFFLINE": "1"})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"lm_eval {name} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    after = statuses(url)
    results = json.loads(Path(sorted(glob.glob(str(out / "**" / "results_*.json"), recursive=True))[-1]).read_text())
    metrics = {
        task: {k: v for k, v in values.items() if k != "alias" and not k.startswith("sample")}
        for task, values in results["results"].items()
    }
    answered = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    command = " ".join(["lm_eval run", *args]).replace(str(work), "<work>").replace(url, "http://127.0.0.1:<port>")
    return {
        "command": command,
        "wall_seconds": round(wall, 1),
        "metrics": metrics,
        "server_answered": answered,
        "all_200": all(k.endswith(" 200") for k in answered),
        "first_samples": first_samples(out),
    }


def first_samples(out: Path, n: int = 3) -> dict[str, list[dict[str, object]]]:
    """The first n generated answers of each generate_until task, as lm-eval logged them (target, raw response)."""
    found: dict[str, list[dict[str, object]]] = {}
    for path in sorted(glob.glob(str(out / "**" / "samples_*.jsonl"), recursive=True)):
        rows = [json.loads(line) for line in Path(path).read_text().splitlines()[:n]]
        if rows and isinstance(rows[0]["resps"][0][0], str):  # (loglikelihood samples hold numbers)
            task = Path(path).name.split("_20")[0].removeprefix("samples_")
            found[task] = [{"target": r["target"], "response": r["resps"][0][0]} for r in rows]
    return found


def main() -> None:
    """Serve the model, run the three lm-eval runs, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--limit", type=int, default=40, help="documents per task")
    ap.add_argument("--out", type=Path, default=OUT)
    opts = ap.parse_args()
    from longkit.models.load import load_tokenizer

    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        work = Path(tmp)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        write_task(work, opts.limit)
        load_tokenizer(opts.model).save_pretrained(work / "tokenizer")  # lm-eval tokenizes with a local HF tokenizer
        url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        server = start_server(opts.model, port)
        load_seconds = time.perf_counter() - started
        try:
            runs = run_all(opts.model, opts.limit, work, url)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
    report = {
        "lm_eval_version": version("lm_eval"),
        "longkit_serve_model": opts.model,
        "limit": opts.limit,
        "server_start_seconds": round(load_seconds, 1),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "runs": runs,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def run_all(model: str, limit: int, work: Path, url: str) -> dict[str, object]:
    """Completions (token-id prompts, loglikelihood and generation), then chat without and with continuation."""
    completions = [
        "--model",
        "local-completions",
        "--model_args",
        f"model={model},base_url={url}/v1/completions,tokenizer={work / 'tokenizer'}",
        "--tasks",
        "lk_sums_mc,lk_sums_gen",
        "--limit",
        str(limit),
    ]
    chat = [
        "--model",
        "local-chat-completions",
        "--model_args",
        f"model={model},base_url={url}/v1/chat/completions",
        "--apply_chat_template",
        "--tasks",
        "lk_sums_chat",
        "--limit",
        str(limit),
    ]
    return {
        "local-completions": lm_eval(completions, work, "completions", url),
        "local-chat-completions": lm_eval(chat, work, "chat", url),
        "local-chat-completions+continue_final_message": lm_eval(
            [*chat, "--gen_kwargs", "continue_final_message=True,add_generation_prompt=False"],
            work,
            "chat_continue",
            url,
        ),
    }


if __name__ == "__main__":
    main()
