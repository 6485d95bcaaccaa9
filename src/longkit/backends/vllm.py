"""In-process vLLM (optional extra `longkit[vllm]`): VLLMBackend batches requests through vllm.LLM, and
VLLMAsyncEngine streams them through vLLM's async engine for `longkit serve --backend vllm`. Both take the import
guard, the engine arguments and SamplingParams from here, so a change of vLLM's API is made in one place."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from longkit.backends.base import (
    Completion,
    GenerationRequest,
    ScoreRequest,
    TextTokenizer,
    TokenScores,
    apply_stop,
    fit_request,
    prepare_scores,
)
from longkit.backends.registry import CHAT, GENERATE, LOCAL, SCORE, STREAM, BackendInfo
from longkit.backends.spec import BackendSpec
from longkit.errors import BackendError, LongkitError


def import_vllm(needed_by: str) -> ModuleType:
    """The vllm module, or a one-line LongkitError naming what needs it and how to install it."""
    try:
        return importlib.import_module("vllm")
    except ImportError:
        raise LongkitError(f"{needed_by} needs vLLM: pip install 'longkit[vllm]' (Linux + CUDA GPU)") from None


def engine_args(
    model: str,
    max_context: int | None,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    **extra: Any,
) -> dict[str, Any]:
    """Arguments of either vLLM engine: the resolved model path, the window, GPUs per model, and prefix caching on
    (NIAH depths and RAG prompts share long prefixes)."""
    from longkit.models.load import resolve

    return {
        "model": resolve(model).path,
        "max_model_len": max_context,
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "enable_prefix_caching": True,
        **extra,
    }


def sampling_params(max_new_tokens: int, temperature: float, seed: int | None, stop: Sequence[str] = ()) -> Any:
    """vLLM's SamplingParams of one request (vLLM's own type, hence Any)."""
    from vllm import SamplingParams

    return SamplingParams(max_tokens=max_new_tokens, temperature=temperature, stop=list(stop) or None, seed=seed)


def score_params() -> Any:
    """SamplingParams that score a prompt: its tokens' log-probabilities (prompt_logprobs=1, as lm-evaluation-harness
    asks vLLM; each position then holds the prompt token and the most likely one) and one greedy token, which vLLM
    needs to generate and the caller ignores."""
    from vllm import SamplingParams

    return SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)


def scores_from_prompt_logprobs(
    prompt_logprobs: Sequence[Mapping[int, Any] | None] | None, ids: list[int], n_ctx: int
) -> TokenScores:
    """TokenScores of ids[n_ctx:] from vLLM's `RequestOutput.prompt_logprobs`: one entry per prompt token, None for
    the first (nothing precedes it), else a dict token id -> Logprob(logprob, rank, decoded_token) that always holds
    the prompt token itself."""
    logprobs = []
    for pos in range(n_ctx, len(ids)):
        entry = prompt_logprobs[pos] if prompt_logprobs is not None and pos < len(prompt_logprobs) else None
        if entry is None or ids[pos] not in entry:
            raise BackendError(f"vLLM returned no log-probability for prompt token {pos} (id {ids[pos]})")
        value = entry[ids[pos]]
        logprobs.append(float(getattr(value, "logprob", value)))
    return TokenScores(ids[n_ctx:], logprobs, n_ctx)


class VLLMBackend:
    """Generation through vllm.LLM with prefix caching on (NIAH depths share long prefixes)."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        max_context: int | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        **engine_kwargs: Any,
    ):
        vllm = import_vllm("the vllm backend")
        self.llm = vllm.LLM(
            **engine_args(model, max_context, tensor_parallel_size, gpu_memory_utilization, **engine_kwargs)
        )
        self.tokenizer = TextTokenizer(self.llm.get_tokenizer())
        self.max_context = int(max_context or self.llm.llm_engine.model_config.max_model_len)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Generate all requests in one vLLM call (it batches internally)."""
        prompts, cut = [], []
        for r in requests:
            text, truncated = fit_request(self.tokenizer, r, self.max_context)
            prompts.append(text)
            cut.append(truncated)
        params = [sampling_params(r.max_new_tokens, r.temperature, r.seed, r.stop) for r in requests]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for o, r, t in zip(outs, requests, cut):
            c = o.outputs[0]
            text, _ = apply_stop(c.text, r.stop)
            results.append(
                Completion(
                    text=text,
                    prompt_tokens=len(o.prompt_token_ids),
                    completion_tokens=len(c.token_ids),
                    finish_reason=c.finish_reason or "stop",
                    truncated=t,
                )
            )
        return results

    def score(self, requests: Sequence[ScoreRequest]) -> list[TokenScores]:
        """Per-token log-probabilities of each continuation (see ScoreRequest), all requests in one vLLM call; the
        token ids are sent as they are, so vLLM scores exactly the tokens prepared here."""
        prepared = prepare_scores(self.tokenizer, requests, self.max_context)
        prompts = [{"prompt_token_ids": ids} for ids, _ in prepared]
        outs = self.llm.generate(prompts, score_params(), use_tqdm=False)
        return [scores_from_prompt_logprobs(o.prompt_logprobs, ids, n_ctx) for o, (ids, n_ctx) in zip(outs, prepared)]


@dataclass(frozen=True)
class VLLMProgress:
    """A request's generated tokens so far, after one step of vLLM's scheduler."""

    token_ids: list[int]
    finished: bool
    hit_eos: bool  # it finished on an end-of-sequence token (vLLM's finish_reason "stop")


class VLLMAsyncEngine:
    """vLLM's AsyncLLMEngine: its own scheduler batches concurrent requests (continuous batching, paged attention,
    prefix caching, tensor parallel). Past one machine, `vllm serve` plus longkit's openai backend is the same path."""

    def __init__(
        self,
        model: str,
        max_context: int | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
    ):
        vllm = import_vllm("--backend vllm")
        from transformers import AutoTokenizer

        args = engine_args(model, max_context, tensor_parallel_size, gpu_memory_utilization)
        self.engine: Any = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**args))
        self.hf_tokenizer: Any = AutoTokenizer.from_pretrained(args["model"])
        self.tokenizer = TextTokenizer(self.hf_tokenizer)
        # the engine's own window (AsyncLLM keeps model_config on itself, the older AsyncLLMEngine on .engine)
        config = getattr(self.engine, "model_config", None) or self.engine.engine.model_config
        self.max_context = int(max_context or config.max_model_len)

    def shutdown(self) -> None:
        """Shut the engine down (older vLLM versions have nothing to shut down)."""
        shutdown = getattr(self.engine, "shutdown", None)
        if shutdown is not None:
            shutdown()

    def errored(self) -> bool:
        """Whether the engine has died."""
        return bool(getattr(self.engine, "errored", False))

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids (special tokens dropped)."""
        return str(self.hf_tokenizer.decode(ids, skip_special_tokens=True))

    async def generate(
        self, prompt_ids: list[int], max_new_tokens: int, temperature: float, seed: int | None
    ) -> AsyncGenerator[VLLMProgress, None]:
        """Yield the request's progress after every step; closing the iterator early aborts the request in vLLM."""
        params = sampling_params(max_new_tokens, temperature, seed)
        rid = f"lk-{uuid.uuid4().hex}"
        finished = False
        try:
            async for out in self.engine.generate({"prompt_token_ids": prompt_ids}, params, rid):
                c = out.outputs[0]
                finished = bool(out.finished)
                yield VLLMProgress(list(c.token_ids), finished, finished and c.finish_reason == "stop")
                if finished:
                    return
        finally:
            if not finished:
                await self.engine.abort(rid)


def _from_spec(spec: BackendSpec, **extra: Any) -> VLLMBackend:
    from longkit.models.defaults import DEFAULT_GENERATOR

    return VLLMBackend(spec.model or DEFAULT_GENERATOR, max_context=spec.max_context, **extra)


BACKEND = BackendInfo(
    "vllm",
    "vLLM in this process (GPU; prefix caching, tensor parallel)",
    frozenset({GENERATE, CHAT, SCORE, STREAM, LOCAL}),
    _from_spec,
)
