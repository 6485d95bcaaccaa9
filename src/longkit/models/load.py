"""Load a causal LM and its tokenizer from a bundled name, a GGUF file, a local directory or a hub id."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longkit.errors import LongkitError
from longkit.models.defaults import bundled_gguf_path, is_bundled

log = logging.getLogger(__name__)


@dataclass
class ModelSource:
    """Where a model name resolves to."""

    kind: str  # "gguf" | "dir" | "hub"
    path: str  # GGUF file, local directory or hub id


def resolve(name: str) -> ModelSource:
    """Resolve a model name to a GGUF file, a local directory or a hub id."""
    if is_bundled(name):
        return ModelSource("gguf", str(bundled_gguf_path(name)))
    p = Path(name).expanduser()
    if name.endswith(".gguf"):
        if not p.is_file():
            raise LongkitError(f"GGUF file not found: {name}")
        return ModelSource("gguf", str(p.resolve()))
    if p.is_dir():
        if not (p / "config.json").exists():
            raise LongkitError(f"{name}: directory has no config.json (not a Hugging Face model directory)")
        return ModelSource("dir", str(p.resolve()))
    if name.startswith((".", "/", "~")):
        raise LongkitError(f"model path not found: {name}")
    return ModelSource("hub", name)


def cache_root() -> Path:
    """Where de-quantised GGUF weights are cached (LONGKIT_CACHE or ~/.cache/longkit)."""
    return Path(os.environ.get("LONGKIT_CACHE", Path.home() / ".cache" / "longkit"))


def _gguf_cache_dir(gguf: Path) -> Path:
    st = gguf.stat()
    digest = hashlib.sha1(f"{gguf.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
    return cache_root() / "gguf" / f"{gguf.stem}-{digest}"


def _dtype(dtype: str) -> Any:
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype == "auto":
        return "auto"
    if dtype not in table:
        raise LongkitError(f"unknown dtype '{dtype}' (expected one of: auto, {', '.join(table)})")
    return table[dtype]


def _strip_gguf_quantizer(model: Any) -> None:
    # A GGUF-loaded model is already de-quantised in memory, but transformers keeps the quantizer
    # flags and then refuses save_pretrained; clearing them makes it a plain model.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model, "quantization_method"):
        model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def load_tokenizer(name: str) -> Any:
    """Load only the tokenizer of a model name (fast: no weights)."""
    from transformers import AutoTokenizer

    src = resolve(name)
    try:
        if src.kind == "gguf":
            cached = _gguf_cache_dir(Path(src.path))
            if (cached / "tokenizer_config.json").exists():
                return AutoTokenizer.from_pretrained(cached)
            return AutoTokenizer.from_pretrained(Path(src.path).parent, gguf_file=Path(src.path).name)
        return AutoTokenizer.from_pretrained(src.path, local_files_only=_offline())
    except OSError as exc:
        raise LongkitError(_not_available(name, exc)) from None


def load_model(
    name: str,
    dtype: str = "float32",
    device: str = "cpu",
    attn_implementation: str | None = "sdpa",
    cache: bool = True,
) -> tuple[Any, Any]:
    """Load (model, tokenizer); a GGUF file is de-quantised once and cached as safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = resolve(name)
    kwargs: dict[str, Any] = {"dtype": _dtype(dtype)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        if src.kind == "gguf":
            gguf = Path(src.path)
            cached = _gguf_cache_dir(gguf)
            if cache and (cached / "model.safetensors").exists():
                model = AutoModelForCausalLM.from_pretrained(cached, **kwargs)
                tok = AutoTokenizer.from_pretrained(cached)
            else:
                tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
                model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, **kwargs)
                _strip_gguf_quantizer(model)
                if cache:
                    _save_cache(model, tok, cached)
        else:
            local = src.kind == "dir" or _offline()
            tok = AutoTokenizer.from_pretrained(src.path, local_files_only=local)
            model = AutoModelForCausalLM.from_pretrained(src.path, local_files_only=local, **kwargs)
    except OSError as exc:
        raise LongkitError(_not_available(name, exc)) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(device)
    model.eval()
    return model, tok


def _save_cache(model: Any, tok: Any, out: Path) -> None:
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists():  # another process may have cached it meanwhile
            os.replace(tmp, out)
    except OSError as exc:  # a read-only cache is not fatal: the next load de-quantises again
        log.warning("could not cache de-quantised weights at %s: %s", out, exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


def _not_available(name: str, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"model '{name}' is not available offline (not a bundled name, GGUF file or local directory, "
            f"and not in the Hugging Face cache): {first}")


def model_info(name: str) -> dict[str, Any]:
    """Architecture, parameter count, max positions, RoPE settings and chat-template presence."""
    model, tok = load_model(name)
    cfg = model.config
    rope = getattr(cfg, "rope_parameters", None) or {}
    if not rope and getattr(cfg, "rope_theta", None) is not None:
        rope = {"rope_theta": cfg.rope_theta, "rope_type": "default", **(getattr(cfg, "rope_scaling", None) or {})}
    return {
        "name": name,
        "architecture": (cfg.architectures or [type(model).__name__])[0],
        "model_type": cfg.model_type,
        "parameters": sum(p.numel() for p in model.parameters()),
        "max_position_embeddings": getattr(cfg, "max_position_embeddings", None),
        "hidden_size": getattr(cfg, "hidden_size", None),
        "num_hidden_layers": getattr(cfg, "num_hidden_layers", None),
        "head_dim": getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
        "vocab_size": getattr(cfg, "vocab_size", None),
        "rope": dict(rope),
        "chat_template": bool(getattr(tok, "chat_template", None)),
    }
