"""Serving engines: what the server drives to generate many requests together. HFEngine runs transformers'
continuous batching over an HFBackend; VLLMEngine runs vLLM's async engine (longkit.backends.vllm). Each yields a
request's tokens as they are produced, and a request whose consumer stops listening (a client that disconnected, a
stop string found, a timeout) is cancelled in the engine, which frees its batch slot and KV-cache blocks.

To serve another engine, subclass ServingEngine: make_engine recognises engines by that class."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

from longkit.backends.base import Backend, TextTokenizer
from longkit.errors import LongkitError
from longkit.serve.protocol import ApiError

if TYPE_CHECKING:
    from transformers import ContinuousBatchingManager
    from transformers.generation.continuous_batching.requests import GenerationOutput

    from longkit.backends.hf import HFBackend

T = TypeVar("T")
TokenLogprobs = list[tuple[float, list[tuple[int, float]]]]  # per position: (chosen token's, [(token, logprob)])


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


class ServingEngine(ABC):
    """A generation loop the server drives: requests stream their tokens and can be cancelled at any step."""

    name: ClassVar[str]
    tokenizer: TextTokenizer
    max_context: int  # the window served (prompt + generated tokens)
    max_batch: int  # generations decoded together; sizes the server's queue

    @abstractmethod
    def start(self) -> None:
        """Start the background generation loop (at server start-up)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the loop (at server shutdown)."""

    @abstractmethod
    def healthy(self) -> bool:
        """Whether the loop can take requests."""

    @property
    def vocab_size(self) -> int:
        """Token ids a prompt may hold: 0 to vocab_size - 1."""
        return len(self.tokenizer.hf)

    @abstractmethod
    def decode(self, ids: list[int]) -> str:
        """Text of generated ids (special tokens dropped)."""

    @abstractmethod
    async def token_logprobs(self, ids: list[int], start: int, top_n: int) -> TokenLogprobs:
        """Log-probabilities of ids[start:] under the model, with the top_n alternatives at each position."""

    @abstractmethod
    def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncGenerator[Step, None]:
        """Yield the request's Step after every token; closing the iterator early cancels the request."""


class HFEngine(ServingEngine):
    """transformers' ContinuousBatchingManager over an HFBackend's model: requests join and leave the running batch
    at every decoding step (paged KV cache, prefix sharing)."""

    name = "hf"

    def __init__(
        self, backend: HFBackend, max_batch: int = 16, kv_cache_tokens: int | None = None, max_batch_tokens: int = 512
    ):
        self.backend = backend
        self.tokenizer = backend.tokenizer
        self.max_batch = max_batch
        # allocated up front: one full window (at least 8K tokens) that concurrent requests share page by page; when
        # it is full, transformers' scheduler makes new requests wait
        self.kv_cache_tokens = kv_cache_tokens or max(backend.max_context, 8192)
        # a request larger than the whole cache could never be scheduled (and would stop the loop): the window
        # served is the smaller of the two
        self.max_context = min(backend.max_context, self.kv_cache_tokens)
        self.max_batch_tokens = max_batch_tokens
        self.manager: ContinuousBatchingManager | None = None
        self._eos = backend.eos_token_ids()
        self._exclusive = threading.Lock()

    def start(self) -> None:
        """Start the background generation loop."""
        from longkit.backends.hf import start_continuous_batching

        if self.manager is None:
            self.manager = start_continuous_batching(
                self.backend,
                max_batch=self.max_batch,
                kv_cache_tokens=self.kv_cache_tokens,
                max_batch_tokens=self.max_batch_tokens,
            )

    def stop(self) -> None:
        """Stop the loop (requests in flight are failed) and give the model back its attention implementation."""
        if self.manager is not None:
            self.manager.stop(block=True, timeout=10, hard_stop=True)
            self.manager = None

    def healthy(self) -> bool:
        """Whether the generation loop is running."""
        m = self.manager
        return m is not None and m.is_running() and m.background_thread_status.fatal_error is None

    @property
    def vocab_size(self) -> int:
        """Ids both the tokenizer and the model's embedding know (an id past the embedding would crash the batch)."""
        return min(len(self.backend.hf_tokenizer), int(self.backend.model.get_input_embeddings().weight.shape[0]))

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids (special tokens dropped)."""
        return str(self.backend.hf_tokenizer.decode(ids, skip_special_tokens=True))

    async def exclusive(self, fn: Callable[..., T], *args: object) -> T:
        """Run fn(*args) in a worker thread while the batch loop is paused, so it has the model to itself."""
        manager = self._running()

        def run() -> T:
            with self._exclusive, manager.pause():
                return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(None, run)

    async def token_logprobs(self, ids: list[int], start: int, top_n: int) -> TokenLogprobs:
        """Log-probabilities of ids[start:] under the model (one forward pass, batch paused)."""
        return await self.exclusive(self.backend.token_logprobs, ids, start, top_n)

    async def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncGenerator[Step, None]:
        """Yield the request's Step after every token; closing the iterator early cancels the request."""
        manager = self._running()
        if sampling.seed is not None and sampling.temperature > 0:
            # The batch shares one random stream, so a seeded sample cannot be reproduced inside it: it runs alone
            # through model.generate, seeded, with the batch paused.
            yield await self._seeded(prompt_ids, sampling)
            return
        rid = f"lk-{uuid.uuid4().hex}"
        outputs: asyncio.Queue[GenerationOutput] = asyncio.Queue()
        manager.register_result_handler(rid, outputs.put_nowait)  # before add_request: a result may come at once
        finished = False
        try:
            self._add(manager, rid, prompt_ids, sampling)
            while not finished:
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
        finally:
            if not finished:
                manager.cancel_request(rid)
                # a cancelled request gets no final output, so its handler would stay registered
                with manager.output_router._lock:
                    manager.output_router.result_handlers.pop(rid, None)

    async def _seeded(self, prompt_ids: list[int], sampling: Sampling) -> Step:
        """A seeded sample, generated alone; cancelling the request stops it at its next token (or before it starts),
        so a client that went away, or a server shutting down, does not wait for it."""
        cancel, seed = threading.Event(), sampling.seed if sampling.seed is not None else 0
        try:
            ids, eos = await self.exclusive(self._sample, prompt_ids, sampling, seed, cancel)
        finally:
            cancel.set()
        return Step(ids, True, eos)

    def _sample(
        self, prompt_ids: list[int], sampling: Sampling, seed: int, cancel: threading.Event
    ) -> tuple[list[int], bool]:
        """model.generate, seeded, until EOS, max_new_tokens or `cancel` is set; (new ids, hit EOS)."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        if cancel.is_set():
            return [], False
        model = self.backend.model
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = model.generate(
                input_ids=torch.tensor([prompt_ids], device=model.device),
                do_sample=True,
                temperature=sampling.temperature,
                top_k=None,
                top_p=None,
                max_new_tokens=sampling.max_new_tokens,
                stopping_criteria=StoppingCriteriaList([Cancelled()]),
                pad_token_id=self.backend.hf_tokenizer.pad_token_id,
            )
        new = out[0, len(prompt_ids) :].tolist()
        end = next((i for i, t in enumerate(new) if t in self._eos), None)
        return (new, False) if end is None else (new[:end], True)

    def _running(self) -> ContinuousBatchingManager:
        if self.manager is None or not self.healthy():
            raise ApiError(503, "the generation loop is not running", kind="server_error")
        return self.manager

    def _add(self, manager: ContinuousBatchingManager, rid: str, prompt_ids: list[int], sampling: Sampling) -> None:
        from longkit.backends.hf import GREEDY_TEMPERATURE

        added = manager.add_request(
            prompt_ids,
            request_id=rid,
            max_new_tokens=sampling.max_new_tokens,
            streaming=sampling.incremental,
            eos_token_id=sorted(self._eos),
            temperature=float(sampling.temperature or GREEDY_TEMPERATURE),
        )
        if added is None:
            raise ApiError(503, "the generation loop is not accepting requests", kind="server_error")


class VLLMEngine(ServingEngine):
    """vLLM's async engine (longkit.backends.vllm.VLLMAsyncEngine) as a serving engine: vLLM's own scheduler batches
    concurrent requests, so this only adapts its output and errors to the server's."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        max_context: int | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
    ):
        from longkit.backends.vllm import VLLMAsyncEngine

        self.vllm = VLLMAsyncEngine(
            model,
            max_context=max_context,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        self.tokenizer = self.vllm.tokenizer
        self.max_context = self.vllm.max_context
        self.max_batch = 256  # vLLM's own max_num_seqs decides; this only sizes the server's queue

    def start(self) -> None:
        """vLLM's engine starts with its first request."""

    def stop(self) -> None:
        """Shut the engine down."""
        self.vllm.shutdown()

    def healthy(self) -> bool:
        """Whether the engine is alive."""
        return not self.vllm.errored()

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids (special tokens dropped)."""
        return self.vllm.decode(ids)

    async def token_logprobs(self, ids: list[int], start: int, top_n: int) -> TokenLogprobs:
        """Not implemented on this engine: refused with a 400 naming the parameter."""
        raise ApiError(
            400, "logprobs: not implemented on longkit's vLLM engine; `vllm serve` computes them", param="logprobs"
        )

    async def stream(self, prompt_ids: list[int], sampling: Sampling) -> AsyncGenerator[Step, None]:
        """Yield the request's Step after every token; closing the iterator early aborts the request in vLLM."""
        steps = self.vllm.generate(prompt_ids, sampling.max_new_tokens, sampling.temperature, sampling.seed)
        async with contextlib.aclosing(steps):  # closing it aborts the request in vLLM now, not at garbage collection
            async for p in steps:
                yield Step(p.token_ids, p.finished, p.hit_eos)


def make_engine(
    backend: ServingEngine | Backend, max_batch: int = 16, kv_cache_tokens: int | None = None
) -> ServingEngine:
    """The engine for a backend: an HFBackend gets continuous batching; a ServingEngine is returned as it is."""
    if isinstance(backend, ServingEngine):
        return backend
    from longkit.backends.hf import HFBackend

    if isinstance(backend, HFBackend):
        return HFEngine(backend, max_batch=max_batch, kv_cache_tokens=kv_cache_tokens)
    raise LongkitError(
        f"longkit serve batches the hf backend and serving engines (e.g. VLLMEngine), not '{backend.name}'"
    )
