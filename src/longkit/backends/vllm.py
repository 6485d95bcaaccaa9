"""In-process vLLM backend (optional extra `longkit[vllm]`): tensor parallel, prefix caching."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from longkit.backends.base import Completion, GenerationRequest, TextTokenizer, apply_stop, fit_request
from longkit.errors import LongkitError


class VLLMBackend:
    """Generation through vllm.LLM with prefix caching on (NIAH depths share long prefixes)."""

    name = "vllm"

    def __init__(self, model: str, max_context: int | None = None, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, **engine_kwargs: Any):
        try:
            from vllm import LLM
        except ImportError:
            raise LongkitError("the vllm backend needs vLLM: pip install 'longkit[vllm]' (Linux + CUDA GPU)") from None
        from longkit.models.load import resolve

        src = resolve(model)
        self.llm = LLM(model=src.path, tensor_parallel_size=tensor_parallel_size, enable_prefix_caching=True,
                       max_model_len=max_context, gpu_memory_utilization=gpu_memory_utilization, **engine_kwargs)
        self.tokenizer = TextTokenizer(self.llm.get_tokenizer())
        self.max_context = int(max_context or self.llm.llm_engine.model_config.max_model_len)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Generate all requests in one vLLM call (it batches internally)."""
        from vllm import SamplingParams

        prompts, cut = [], []
        for r in requests:
            text, truncated = fit_request(self.tokenizer, r, self.max_context)
            prompts.append(text)
            cut.append(truncated)
        params = [SamplingParams(max_tokens=r.max_new_tokens, temperature=r.temperature, stop=list(r.stop) or None,
                                 seed=r.seed) for r in requests]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for o, r, t in zip(outs, requests, cut):
            c = o.outputs[0]
            text, _ = apply_stop(c.text, r.stop)
            results.append(Completion(text=text, prompt_tokens=len(o.prompt_token_ids), completion_tokens=len(c.token_ids),
                                      finish_reason=c.finish_reason or "stop", truncated=t))
        return results
