"""Text generation backends behind one protocol: hf (local transformers), openai (any server), vllm."""

from __future__ import annotations

from typing import Any

from longkit.backends.base import Backend, Completion, GenerationRequest, TextTokenizer
from longkit.errors import ConfigError

BACKENDS = ("hf", "openai", "vllm")


def make_backend(
    kind: str = "hf",
    model: str | None = None,
    base_url: str | None = None,
    tokenizer: str | None = None,
    max_context: int | None = None,
    batch_size: int = 1,
    api_key: str | None = None,
    **kwargs: Any,
) -> Backend:
    """Build a backend by kind; model is a bundled name, GGUF file, directory or hub/served id."""
    from longkit.models.defaults import DEFAULT_GENERATOR

    if kind == "hf":
        from longkit.backends.hf import HFBackend

        return HFBackend.from_name(model or DEFAULT_GENERATOR, max_context=max_context, batch_size=batch_size, **kwargs)
    if kind == "openai":
        from longkit.backends.openai import OpenAIBackend

        if not base_url:
            raise ConfigError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIBackend(base_url, model=model, tokenizer=tokenizer, max_context=max_context,
                             concurrency=max(batch_size, 1), api_key=api_key, **kwargs)
    if kind == "vllm":
        from longkit.backends.vllm import VLLMBackend

        return VLLMBackend(model or DEFAULT_GENERATOR, max_context=max_context, **kwargs)
    raise ConfigError(f"unknown backend '{kind}' (expected one of: {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "Completion", "GenerationRequest", "TextTokenizer", "make_backend"]
