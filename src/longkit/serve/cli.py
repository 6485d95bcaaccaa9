"""`longkit serve`: an OpenAI-compatible HTTP server with continuous batching, streaming and optional RAG."""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

from longkit.cli_common import friendly_errors

if TYPE_CHECKING:
    from longkit.backends.base import Backend
    from longkit.serve.batching import ServingEngine


def register(app: typer.Typer) -> None:
    """Add the `serve` command to the root app."""
    app.command("serve")(friendly_errors(serve))


def serve(
    model: str = typer.Option("smollm2-135m-instruct", "--model", "-m", help="Model name, GGUF file or directory."),
    backend: str = typer.Option(
        "hf", "--backend", help="hf (transformers continuous batching) or vllm (vLLM's async engine)."
    ),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to bind."),
    api_key: str | None = typer.Option(
        None, "--api-key", help="Require this bearer token on /v1 (default: $LONGKIT_API_KEY if set)."
    ),
    max_tokens_limit: int = typer.Option(1024, min=1, help="Largest max_tokens a request may ask for."),
    max_request_bytes: int = typer.Option(8 * 1024 * 1024, min=1, help="Largest request body accepted."),
    max_context: int | None = typer.Option(None, min=1, help="Override the model's context window."),
    max_batch: int = typer.Option(16, "--max-batch", min=1, help="Generations decoded together."),
    max_queue: int = typer.Option(
        64,
        "--max-queue",
        min=0,
        help="Generations that may wait for a batch slot; beyond them a request gets 429 with Retry-After.",
    ),
    request_timeout: float = typer.Option(
        600.0, "--request-timeout", min=0.001, help="Seconds a request may take before it is cancelled (408)."
    ),
    kv_cache_tokens: int | None = typer.Option(
        None,
        "--kv-cache-tokens",
        min=64,
        help="hf: KV-cache size in tokens, allocated at start (default: the larger of the context and 8192).",
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="hf: CPU threads for torch (on a busy shared CPU, 1 is often fastest)."
    ),
    tensor_parallel_size: int = typer.Option(1, "--tensor-parallel-size", min=1, help="vllm: GPUs per model."),
    index: str | None = typer.Option(
        None,
        "--index",
        help="RAG: retrieve from this index (longkit rag index) "
        "before answering chat requests; responses carry 'citations'.",
    ),
    rag_k: int | None = typer.Option(None, "--rag-k", min=1, help="RAG: chunks per answer (default: tuned, else 5)."),
) -> None:
    """Serve a model over /v1/models, /v1/completions, /v1/chat/completions, /health and /metrics."""
    import uvicorn

    from longkit.backends.registry import STREAM, names_with
    from longkit.errors import ConfigError
    from longkit.serve.app import create_app

    if backend not in names_with(STREAM):  # serving needs a streaming engine: the registry says which backends have one
        raise ConfigError(f"--backend {backend}: expected one of {', '.join(names_with(STREAM))}")
    if index is not None and not (Path(index) / "manifest.json").is_file():
        raise ConfigError(f"--index {index}: not an index directory (build one with `longkit rag index`)")
    check_port(host, port)  # before the model loads: a busy port is known in a millisecond, the model takes minutes
    served = _served(backend, model, max_context, threads, tensor_parallel_size)
    rag = None
    if index is not None:
        from longkit.rag.pipeline import RagPipeline

        # RAG only prepares prompts here (the served model's tokenizer and window); the engine generates
        rag = RagPipeline.from_index(index, cast("Backend", served), top_k=rag_k)
    key = api_key if api_key is not None else os.environ.get("LONGKIT_API_KEY")
    application = create_app(
        served,
        model_id=model,
        api_key=key,
        max_tokens_limit=max_tokens_limit,
        max_request_bytes=max_request_bytes,
        rag=rag,
        max_batch=max_batch,
        max_queue=max_queue,
        request_timeout=request_timeout,
        kv_cache_tokens=kv_cache_tokens,
    )
    _log_access_to_stderr()
    print(
        f"longkit serve: {model} on http://{host}:{port}/v1 ({backend}, batch {max_batch}, queue {max_queue})",
        file=sys.stderr,
    )
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)


def check_port(host: str, port: int) -> None:
    """Refuse (ConfigError, one line) a host:port this process cannot listen on, e.g. one another server holds."""
    from longkit.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a port in TIME_WAIT is free
        try:
            sock.bind(address)
        except OSError as exc:
            why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            raise ConfigError(
                f"--port {port}: {host}:{port} {why}; stop the other server or choose another --port"
            ) from None


def _served(
    backend: str, model: str, max_context: int | None, threads: int | None, tensor_parallel_size: int
) -> Backend | ServingEngine:
    """The hf backend (create_app gives it continuous batching) or vLLM's async engine."""
    if backend == "vllm":
        from longkit.serve.batching import VLLMEngine

        return VLLMEngine(model, max_context=max_context, tensor_parallel_size=tensor_parallel_size)
    from longkit.backends import make_backend

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return make_backend("hf", model, max_context=max_context)


def _log_access_to_stderr() -> None:
    """One line per request on stderr, with a timestamp (uvicorn's own access log is off)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    access = logging.getLogger("longkit.serve.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
