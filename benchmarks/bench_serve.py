"""`longkit serve` under load: the bundled model (SmolLM2-135M-Instruct) served by the real command, driven by 1, 8
and 16 concurrent clients over HTTP. Writes benchmarks/results/serve.json.

    HF_HUB_OFFLINE=1 python benchmarks/bench_serve.py [--requests 500] [--max-tokens 32] [--concurrency 1,8,16]

Each level sends --requests chat requests (distinct short questions, temperature 0, max_tokens --max-tokens) with
that many clients at once and records completion tokens/s, requests/s, p50/p99 latency, the status counts (5xx
above all) and the server's resident memory (VmRSS) before and after. The first requests warm the server up and
are not counted; RSS "before" is read after them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

TOPICS = [
    "rivers",
    "bread",
    "volcanoes",
    "chess",
    "bees",
    "glass",
    "comets",
    "maps",
    "tea",
    "owls",
    "bridges",
    "salt",
    "clocks",
    "whales",
    "paper",
    "storms",
    "copper",
    "lighthouses",
    "maple trees",
    "deserts",
]


def question(i: int) -> str:
    """A distinct short question per request (so no two prompts are identical)."""
    return f"In one sentence, tell me something about {TOPICS[i % len(TOPICS)]} (question {i})."


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def level(url: str, clients: int, requests: int, max_tokens: int, offset: int) -> dict:
    """Send `requests` chat requests with `clients` concurrent clients; latency and token figures."""
    latencies: list[float] = []
    tokens = 0
    statuses: dict[str, int] = {}
    next_i = iter(range(requests))

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal tokens
        for i in next_i:
            t = time.perf_counter()
            r = await http.post(
                url + "/v1/chat/completions",
                json={
                    "messages": [{"role": "user", "content": question(offset + i)}],
                    "max_tokens": max_tokens,
                    "temperature": 0,
                },
            )
            statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t)
                tokens += r.json()["usage"]["completion_tokens"]

    async with httpx.AsyncClient(timeout=3600, limits=httpx.Limits(max_connections=clients + 4)) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(clients)))
        wall = time.perf_counter() - t0
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    return {
        "clients": clients,
        "requests": requests,
        "wall_s": round(wall, 2),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 3),
        "requests_per_s": round(len(latencies) / wall, 4),
        "latency_p50_s": round(float(np.percentile(lat, 50)), 3),
        "latency_p99_s": round(float(np.percentile(lat, 99)), 3),
        "statuses": statuses,
        "5xx": sum(n for s, n in statuses.items() if s.startswith("5")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500, help="requests per concurrency level")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--concurrency", default="1,8,16")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=None, help="passed to longkit serve --threads")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "serve.json"))
    args = ap.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "longkit",
        "serve",
        "--model",
        args.model,
        "--port",
        str(port),
        "--max-batch",
        str(max(levels)),
        "--max-queue",
        "64",
    ]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 600
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        asyncio.run(level(url, max(levels), max(levels), args.max_tokens, offset=10_000))  # warm-up, not counted
        rss_before = rss_mb(proc.pid)
        load_before = os.getloadavg()
        results, offset = [], 0
        for c in levels:
            r = asyncio.run(level(url, c, args.requests, args.max_tokens, offset))
            offset += args.requests
            r["rss_after_mb"] = round(rss_mb(proc.pid), 1)
            print(json.dumps(r), flush=True)
            results.append(r)
        rss_after = rss_mb(proc.pid)
        load_after = os.getloadavg()
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    base = results[0]["tokens_per_s"] if results and results[0]["clients"] == 1 else None
    out = {
        "command": "HF_HUB_OFFLINE=1 python benchmarks/bench_serve.py " + " ".join(sys.argv[1:]),
        "server": " ".join(["longkit"] + cmd[3:]),
        "model": args.model,
        "max_tokens": args.max_tokens,
        "requests_per_level": args.requests,
        "levels": results,
        "speedup_tokens_per_s_vs_1_client": {str(r["clients"]): round(r["tokens_per_s"] / base, 2) for r in results}
        if base
        else None,
        "total_5xx": sum(r["5xx"] for r in results),
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_after": round(rss_after, 1),
        "rss_change_pct": round(100 * (rss_after - rss_before) / rss_before, 2),
        "loadavg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "CPU shared with other jobs; see loadavg",
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("speedup_tokens_per_s_vs_1_client", "total_5xx", "rss_change_pct")}))


if __name__ == "__main__":
    main()
