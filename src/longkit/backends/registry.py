"""The backend registry: each backend module declares itself (`BACKEND = BackendInfo(...)`) and is found here.

Adding a backend is one module in `longkit/backends/` that defines `BACKEND`; nothing else lists backend names.
Modules are imported on first lookup only, and each factory imports its heavy dependencies (torch, httpx, vLLM)
itself, so asking for the `openai` backend never imports vLLM."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from longkit.errors import ConfigError

if TYPE_CHECKING:
    from longkit.backends.base import Backend, Scorer

# What a backend can do. A command that needs one of these refuses a backend that lacks it, in one line.
GENERATE = "generate"  # text from a prompt or chat messages (every backend)
CHAT = "chat"  # chat messages rendered with the model's template
SCORE = "score"  # per-token log-probabilities of a given text
STREAM = "stream"  # token-by-token delivery through a serving engine (`longkit serve`)
LOCAL = "local"  # loads the model's weights in this process (a missing model is found before any run)
CAPABILITIES = (GENERATE, CHAT, SCORE, STREAM, LOCAL)


@dataclass(frozen=True)
class BackendInfo:
    """One backend's declaration: its name, what it can do, and how to build it from a spec."""

    name: str
    summary: str
    capabilities: frozenset[str]
    factory: Callable[..., Backend]  # (BackendSpec, **extra) -> Backend; imports its own heavy dependencies

    def supports(self, capability: str) -> bool:
        """Whether this backend declares `capability`."""
        return capability in self.capabilities


_registry: dict[str, BackendInfo] = {}


def _discover() -> dict[str, BackendInfo]:
    """Import each module of this package once and keep those that declare `BACKEND`."""
    if not _registry:
        import longkit.backends as package

        for mod in pkgutil.iter_modules(package.__path__):
            info = getattr(importlib.import_module(f"{package.__name__}.{mod.name}"), "BACKEND", None)
            if isinstance(info, BackendInfo):
                unknown = info.capabilities - set(CAPABILITIES)
                if unknown:  # a typo in a declaration would otherwise make a capability silently absent
                    raise RuntimeError(f"backend '{info.name}' declares unknown capabilities {sorted(unknown)}")
                _registry[info.name] = info
    return _registry


def backend_names() -> tuple[str, ...]:
    """Registered backend names, sorted."""
    return tuple(sorted(_discover()))


def names_with(capability: str) -> tuple[str, ...]:
    """Names of the backends that declare `capability`."""
    return tuple(n for n, info in sorted(_discover().items()) if info.supports(capability))


def backend_info(name: str, option: str = "backend") -> BackendInfo:
    """The declaration of backend `name`; an unknown name is a ConfigError listing the known ones."""
    info = _discover().get(name)
    if info is None:
        raise ConfigError(f"unknown backend '{name}' for {option} (expected one of: {', '.join(backend_names())})")
    return info


def require(name: str, capability: str, what: str) -> BackendInfo:
    """The backend's declaration, or a one-line ConfigError when it lacks `capability` (needed by `what`)."""
    info = backend_info(name)
    if not info.supports(capability):
        able = ", ".join(names_with(capability)) or "none"
        raise ConfigError(f"{what} needs a backend that can {capability}; '{name}' cannot (backends that can: {able})")
    return info


def scorer(backend: Backend, what: str) -> Scorer:
    """The backend as a Scorer, or a one-line ConfigError when its declaration lacks SCORE (needed by `what`), so a
    log-likelihood task is refused before its first request rather than failing on a missing method."""
    require(backend.name, SCORE, what)
    if not callable(getattr(backend, "score", None)):  # a declaration that promises more than its class has
        raise RuntimeError(f"backend '{backend.name}' declares {SCORE} but has no score method")
    return cast("Scorer", backend)
