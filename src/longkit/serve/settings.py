"""The server's identity and limits, as `longkit serve` options set them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSettings:
    """What one server serves and how much it accepts."""

    model_id: str  # the `model` clients send and /v1/models lists
    api_key: str | None = None  # bearer token required on /v1 (None: no auth)
    max_tokens_limit: int = 1024  # largest max_tokens a request may ask for
    max_request_bytes: int = 8 * 1024 * 1024
    max_batch: int = 16  # generations decoded together
    max_queue: int = 64  # generations that may wait for a batch slot; beyond them a 429
    request_timeout: float = 600.0  # seconds before a generation is cancelled (408)
    kv_cache_tokens: int | None = None  # hf: KV-cache size, allocated at start
