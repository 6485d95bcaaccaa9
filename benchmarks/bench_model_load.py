"""Time the bundled model's load path: GGUF content digest (cold and remembered), tokenizer and model loads.

    python benchmarks/bench_model_load.py [--cold]     # --cold: a fresh cache dir, so the GGUF is de-quantised

Writes benchmarks/results/model_load.json. Network access is refused for the whole run (socket lookups raise),
and HF_HUB_OFFLINE is unset, so the figures also show that bundled names never reach the Hub.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import tempfile
import time
from pathlib import Path


def _refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    raise RuntimeError(f"network access attempted: {args[:1]}")


def main() -> None:
    """Run the timings and write the JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--cold", action="store_true", help="use an empty cache dir (de-quantise the GGUF)")
    ap.add_argument("--out", default="benchmarks/results/model_load.json")
    args = ap.parse_args()
    os.environ.pop("HF_HUB_OFFLINE", None)
    socket.getaddrinfo = _refuse  # type: ignore[assignment]
    socket.create_connection = _refuse  # type: ignore[assignment]
    if args.cold:
        os.environ["LONGKIT_CACHE"] = tempfile.mkdtemp(prefix="longkit-cache-")
    from longkit.models.defaults import bundled_gguf_path
    from longkit.models.load import cache_root, gguf_digest, load_model, load_tokenizer

    gguf = bundled_gguf_path()
    memo = cache_root() / "gguf" / "digests.json"
    if memo.exists():  # time the first hash of this file: drop only its entry from the memo
        data = json.loads(memo.read_text())
        st = gguf.resolve().stat()
        data.pop(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}", None)
        memo.write_text(json.dumps(data))
    res: dict = {
        "gguf_bytes": gguf.stat().st_size,
        "cold_cache": args.cold,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
    }
    t = time.perf_counter()
    gguf_digest(gguf)
    res["digest_first_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    gguf_digest(gguf)
    res["digest_remembered_s"] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    load_tokenizer("smollm2-135m-instruct")
    res["tokenizer_load_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    load_model("smollm2-135m-instruct")
    res["model_load_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    load_model("smollm2-135m-instruct")
    res["model_load_again_s"] = round(time.perf_counter() - t, 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
