"""The suite's request cache: completions stored by a hash of the exact request, shared by every task of a model.

Each shard appends to its own file (`cache/<model>.shardKofN.jsonl`; unsharded: `cache/<model>.jsonl`) and reads
every file of that model, so shards on several machines never write one file at once (appends from two NFS
clients can interleave) and the next run of any shape sees all of them."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from longkit.backends.base import Backend, Completion, GenerationRequest
from longkit.io import ResultLog

B = TypeVar("B", bound=Backend)


def request_key(model: str, max_context: int, req: GenerationRequest) -> str:
    """A stable hash of everything that determines a completion."""
    payload = json.dumps(
        {
            "model": model,
            "max_context": max_context,
            "prompt": req.prompt,
            "messages": req.messages,
            "max_new_tokens": req.max_new_tokens,
            "stop": list(req.stop),
            "temperature": req.temperature,
            "seed": req.seed,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def with_window(backend: B, window: int) -> B:
    """A view of backend with another context window; the backend itself keeps its own."""
    if window == backend.max_context:
        return backend
    if isinstance(backend, CachedBackend):
        return backend.with_window(window)  # type: ignore[return-value]  # CachedBackend's own view is its type
    # a shallow copy shares the weights, tokenizer and connections; only the copy's window differs
    view = copy.copy(backend)
    view.max_context = window
    return view


class RequestCache:
    """One model's stored completions: this shard's own file plus, read-only, every other shard's file."""

    def __init__(self, path: str | Path, shared: Sequence[Path] = ()):
        self.path = Path(path)
        # opened at the first completion stored (or read when it exists): a run that stores nothing writes nothing
        self._log = ResultLog(self.path) if self.path.exists() else None
        self.shared: dict[str, dict[str, Any]] = {}
        for other in shared:
            if Path(other) != self.path:
                self.shared.update(_read_records(Path(other)))
        self.hits = 0
        self.misses = 0

    @property
    def log(self) -> ResultLog:
        """This shard's own cache file (created when first needed)."""
        if self._log is None:
            self._log = ResultLog(self.path)
        return self._log

    @classmethod
    def for_model(cls, directory: Path, stem: str, tag: str = "") -> RequestCache:
        """The cache of the model whose files are `directory/<stem>[.shardKofN].jsonl`, written as `tag`."""
        pattern = re.compile(re.escape(stem) + r"(\.shard\d+of\d+)?\.jsonl")
        siblings = sorted(p for p in directory.glob(f"{stem}*.jsonl") if pattern.fullmatch(p.name))
        return cls(directory / f"{stem}{tag}.jsonl", siblings)

    def get(self, key: str) -> Completion | None:
        """The stored completion for key, if any shard stored one."""
        rec = (self._log.get(key) if self._log is not None else None) or self.shared.get(key)
        return None if rec is None else Completion(**rec["completion"])

    def put(self, key: str, completion: Completion) -> None:
        """Store a fresh completion durably in this shard's file."""
        self.log.append({"key": key, "completion": completion.to_dict()})


def _read_records(path: Path) -> dict[str, dict[str, Any]]:
    """Records of another shard's cache file, read without touching it (it may still be written)."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for raw in data.split(b"\n"):
        try:
            rec = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue  # a line another shard is still writing: at worst a cache miss
        if isinstance(rec, dict) and "key" in rec and isinstance(rec.get("completion"), dict):
            out[str(rec["key"])] = rec
    return out


class CachedBackend:
    """Wraps a backend: completions are stored by request hash, so a rerun (any task, any suite) is free."""

    def __init__(self, inner: Backend, cache: RequestCache | str | Path, model: str):
        self.inner = inner
        self.name = f"cached-{inner.name}"
        self.tokenizer = inner.tokenizer
        self.model = model
        self.cache = cache if isinstance(cache, RequestCache) else RequestCache(cache)

    @property
    def max_context(self) -> int:
        """The wrapped backend's window (part of every request key)."""
        return self.inner.max_context

    @max_context.setter
    def max_context(self, value: int) -> None:
        # a shared backend's window changed in place would change the keys and truncation of every later task
        raise AttributeError("a suite backend's window is fixed; use with_window() for a task that needs another")

    @property
    def log(self) -> ResultLog:
        """This shard's cache file."""
        return self.cache.log

    @property
    def hits(self) -> int:
        """Requests answered from the cache (over every view of this model)."""
        return self.cache.hits

    @property
    def misses(self) -> int:
        """Requests generated and stored (over every view of this model)."""
        return self.cache.misses

    def with_window(self, window: int) -> CachedBackend:
        """A view with another window over the same cache and counters; this backend is left as it is."""
        return CachedBackend(with_window(self.inner, window), self.cache, self.model)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Cached completions where present; the rest generated in one call and stored."""
        keys = [request_key(self.model, self.max_context, r) for r in requests]
        out = [self.cache.get(k) for k in keys]
        missing = [i for i, c in enumerate(out) if c is None]
        self.cache.hits += len(requests) - len(missing)
        self.cache.misses += len(missing)
        if missing:
            fresh = self.inner.generate([requests[i] for i in missing])
            for i, c in zip(missing, fresh):
                self.cache.put(keys[i], c)
                out[i] = c
        return [c for c in out if c is not None]
