"""One backend specification shared by every config and CLI that names a model to generate with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from longkit.models.defaults import DEFAULT_GENERATOR

if TYPE_CHECKING:
    from longkit.backends.base import Backend


class BackendSpec(BaseModel):
    """Which backend serves which model, and how to reach it (YAML keys = CLI option names)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    backend: str = "hf"  # a registered backend name (see `longkit.backends.registry`)
    # bundled name, GGUF file, local directory, hub id in the cache, or served id; None on openai: the server's first
    model: str | None = DEFAULT_GENERATOR
    base_url: str | None = None  # openai backend: the server's URL
    api_key: str | None = None  # openai backend; default $LONGKIT_API_KEY, then $OPENAI_API_KEY
    tokenizer: str | None = None  # openai backend: a local tokenizer of the served model, when its id is not one
    max_context: int | None = Field(None, ge=16)  # the window; default: the model's own
    batch_size: int = Field(1, ge=1)  # requests per generate call (openai: concurrent requests)
    prefix_reuse: bool | None = None  # hf backend: reuse the KV cache of shared prompt prefixes

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        from longkit.backends.registry import backend_names

        if name not in backend_names():  # a ValueError, so the loader reports it with its field and YAML line
            raise ValueError(f"unknown backend '{name}' (expected one of: {', '.join(backend_names())})")
        return name

    def build(self, **extra: Any) -> Backend:
        """The backend this spec names (extra keyword arguments go to the backend's constructor)."""
        from longkit.backends.registry import backend_info

        return backend_info(self.backend).factory(self, **extra)
