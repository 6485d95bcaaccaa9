"""Model loading, bundled defaults and RoPE extension."""

from longkit.models.defaults import DEFAULT_EMBEDDER, DEFAULT_GENERATOR, bundled_gguf_path, bundled_model_dir
from longkit.models.load import load_model, load_tokenizer, model_info, resolve

__all__ = [
    "DEFAULT_EMBEDDER",
    "DEFAULT_GENERATOR",
    "bundled_gguf_path",
    "bundled_model_dir",
    "load_model",
    "load_tokenizer",
    "model_info",
    "resolve",
]
