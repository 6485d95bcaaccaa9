"""Text generation backends behind one protocol, found through a registry (see `registry.py`)."""

from __future__ import annotations

from typing import Any

from longkit.backends.base import (
    Backend,
    Completion,
    GenerationRequest,
    Scorer,
    ScoreRequest,
    TextTokenizer,
    TokenScores,
)
from longkit.backends.registry import backend_info, backend_names, names_with, require, scorer
from longkit.backends.spec import BackendSpec


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
    spec = BackendSpec.model_construct(
        backend=backend_info(kind).name,
        model=model,
        base_url=base_url,
        tokenizer=tokenizer,
        max_context=max_context,
        batch_size=max(batch_size, 1),
        api_key=api_key,
        prefix_reuse=kwargs.pop("prefix_reuse", None),
    )
    return spec.build(**kwargs)


__all__ = [
    "Backend",
    "BackendSpec",
    "Completion",
    "GenerationRequest",
    "ScoreRequest",
    "Scorer",
    "TextTokenizer",
    "TokenScores",
    "backend_info",
    "backend_names",
    "make_backend",
    "names_with",
    "require",
    "scorer",
]
