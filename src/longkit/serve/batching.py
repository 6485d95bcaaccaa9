"""Engines that generate many requests together: transformers' continuous batching for the HF backend, vLLM's
async engine for the vLLM backend. Each yields a request's tokens as they are produced, and a request whose
consumer stops listening (a client that disconnected, a stop string found, a timeout) is cancelled in the engine,
which frees its batch slot and KV-cache blocks."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from longkit.backends.base import TextTokenizer
from longkit.errors import LongkitError
from longkit.serve.protocol import ApiError


@dataclass
class Sampling:
    """Decoding settings of one request."""

    max_new_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    incremental: bool = True  # deliver every token (streaming, stop strings); else only the finished request


@dataclass
class Step:
    """A request's state after a decoding step: every token so far (end-of-sequence token removed)."""

    token_ids: list[int]
    finished: bool = False
    hit_eos: bool = False


class HFEngine:
    """transformers' ContinuousBatchingManager over an HFBackend's model: requests join and leave the running batch
    at every decoding step (paged KV cache, prefix sharing)."""

    name = "hf"

    def __init__(self, backend: Any, max_batch: int = 16, kv_cache_tokens: int | None = None,
                 max_batch_tokens: int = 512):
        self.backend = backend
        self.tokenizer: TextTokenizer = backend.tokenizer
        self.max_batch = max_batch
        # allocated up front: one full window (at least 8K tokens) that concurrent requests share page by page; when
        # it is full, transformers' scheduler makes new requests wait
        self.kv_cache_tokens = kv_cache_tokens or max(backend.max_context, 8192)
        # a request larger than the whole cache could never be scheduled (and would stop the loop): the window
        # served is the smaller of the two
        self.max_context: int = min(backend.max_context, self.kv_cache_tokens)
        self.max_batch_tokens = max_batch_tokens
        self.manager: Any = None
        self._eos = backend.eos_token_ids()
        self._exclusive = threading.Lock()

    def start(self) -> None:
        """Start the background generation loop."""
        from longkit.backends.hf import start_continuous_batching

        if self.manager is None:
            self.manager = start_continuous_batching(self.backend, max_batch=self.max_batch,
                                                     kv_cache_tokens=self.kv_cache_tokens,
                                                     max_batch_tokens=self.max_batch_tokens)

    def stop(self) -> None:
        """Stop the loop (requests in flight are failed) and give the model back its attention implementation."""
        if self.manager is not None:
            self.manager.stop(block=True, timeout=10, hard_stop=True)
            self.manager = None

    def healthy(self) -> bool:
        """Whether the generation loop is running."""
        m = self.manager
        return m is not None and m.is_running() and m.background_thread_status.fatal_error is None

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids (special tokens dropped)."""
        return self.backend.hf_tokenizer.decode(ids, skip_special_tokens=True)

    async def exclusive(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn(*args) in a worker thread while the batch loop is paused, so it has the model to itself."""
        def run() -> Any:
            with self._exclusive, self.manager.pause():
                return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(None, run)

    async def token_logprobs(self, ids: list[int], start: int, top_n: int) -> list[tuple[float, list[tuple[int, float]]]]:
        """Log-probabilities of ids[start:] under the model (one forward pass, batch paused)."""
        return await self.exclusive(self.backend.token_logprobs, ids, start, top_n)

    async def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncIterator[Step]:
        """Yield the request's Step after every token; closing the iterator early cancels the request."""
        if not self.healthy():
            raise ApiError(503, "the generation loop is not running", kind="server_error")
        if sampling.seed is not None and sampling.temperature > 0:
            # The batch shares one random stream, so a seeded sample cannot be reproduced inside it: it runs alone
            # through model.generate, seeded, with the batch paused.
            ids, eos = await self.exclusive(self.backend.generate_ids, prompt_ids, sampling.max_new_tokens,
                                            sampling.temperature, sampling.seed)
            yield Step(ids, True, eos)
            return
        from longkit.backends.hf import GREEDY_TEMPERATURE

        manager = self.manager
        rid = f"lk-{uuid.uuid4().hex}"
        outputs: asyncio.Queue[Any] = asyncio.Queue()
        manager.register_result_handler(rid, outputs.put_nowait)  # before add_request: a result may come at once
        finished = False
        try:
            added = manager.add_request(prompt_ids, request_id=rid, max_new_tokens=sampling.max_new_tokens,
                                        streaming=sampling.incremental, eos_token_id=sorted(self._eos),
                                        temperature=float(sampling.temperature or GREEDY_TEMPERATURE))
            if added is None:
                raise ApiError(503, "the generation loop is not accepting requests", kind="server_error")
            while True:
                out = await outputs.get()
                if out.error is not None:
                    finished = True
                    raise ApiError(503, f"generation failed: {out.error}", kind="server_error")
                ids = list(out.generated_tokens)
                eos = bool(ids) and ids[-1] in self._eos
                if eos:
                    ids.pop()
                finished = out.is_finished()
                yield Step(ids, finished, eos)
                if finished:
                    return
        finally:
            if not finished:
                manager.cancel_request(rid)
                # a cancelled request gets no final output, so its handler would stay registered
                with manager.output_router._lock:
                    manager.output_router.result_handlers.pop(rid, None)


class VLLMEngine:
    """vLLM's AsyncLLMEngine: its own scheduler batches concurrent requests (continuous batching, paged attention,
    prefix caching, tensor parallel). Past one machine, `vllm serve` plus longkit's openai backend is the same path."""

    name = "vllm"

    def __init__(self, model: str, max_context: int | None = None, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9):
        try:
            from vllm import AsyncEngineArgs, AsyncLLMEngine
        except ImportError:
            raise LongkitError("--backend vllm needs vLLM: pip install 'longkit[vllm]' (Linux + CUDA GPU)") from None
        from transformers import AutoTokenizer

        from longkit.models.load import resolve

        src = resolve(model)
        args = AsyncEngineArgs(model=src.path, max_model_len=max_context, tensor_parallel_size=tensor_parallel_size,
                               gpu_memory_utilization=gpu_memory_utilization, enable_prefix_caching=True)
        self.engine = AsyncLLMEngine.from_engine_args(args)
        self.hf_tokenizer = AutoTokenizer.from_pretrained(src.path)
        self.tokenizer = TextTokenizer(self.hf_tokenizer)
        # the engine's own window (AsyncLLM keeps model_config on itself, the older AsyncLLMEngine on .engine)
        config = getattr(self.engine, "model_config", None) or getattr(getattr(self.engine, "engine", None),
                                                                      "model_config", None)
        self.max_context = int(max_context or config.max_model_len)
        self.max_batch = 256  # vLLM's own max_num_seqs decides; this only sizes the server's queue

    def start(self) -> None:
        """vLLM's engine starts with its first request."""

    def stop(self) -> None:
        """Shut the engine down."""
        shutdown = getattr(self.engine, "shutdown", None)
        if shutdown is not None:
            shutdown()

    def healthy(self) -> bool:
        """Whether the engine is alive."""
        return not getattr(self.engine, "errored", False)

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids (special tokens dropped)."""
        return self.hf_tokenizer.decode(ids, skip_special_tokens=True)

    async def token_logprobs(self, ids: list[int], start: int, top_n: int) -> list[tuple[float, list[tuple[int, float]]]]:
        """Not implemented on this engine: refused with a 400 naming the parameter."""
        raise ApiError(400, "logprobs: not implemented on longkit's vLLM engine; `vllm serve` computes them",
                       param="logprobs")

    async def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncIterator[Step]:
        """Yield the request's Step after every token; closing the iterator early aborts the request in vLLM."""
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=sampling.max_new_tokens, temperature=sampling.temperature,
                                seed=sampling.seed)
        rid = f"lk-{uuid.uuid4().hex}"
        finished = False
        try:
            async for out in self.engine.generate({"prompt_token_ids": prompt_ids}, params, rid):
                c = out.outputs[0]
                finished = bool(out.finished)
                yield Step(list(c.token_ids), finished, finished and c.finish_reason == "stop")
                if finished:
                    return
        finally:
            if not finished:
                await self.engine.abort(rid)


def make_engine(backend: Any, max_batch: int = 16, kv_cache_tokens: int | None = None) -> Any:
    """The engine for a backend: an HFBackend gets continuous batching; an engine is returned as it is."""
    from longkit.backends.hf import HFBackend

    if isinstance(backend, HFBackend):
        return HFEngine(backend, max_batch=max_batch, kv_cache_tokens=kv_cache_tokens)
    if hasattr(backend, "stream") and hasattr(backend, "start"):
        return backend
    raise LongkitError(f"longkit serve batches the hf and vllm backends, not '{getattr(backend, 'name', backend)}'")
