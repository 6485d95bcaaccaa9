"""Load a causal LM and its tokenizer from a bundled name, a GGUF file, a local directory or a hub id."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longkit.errors import InputError, LongkitError
from longkit.models.defaults import DEFAULT_EMBEDDER, bundled_gguf_path, bundled_model_dir, bundled_names, is_bundled

log = logging.getLogger(__name__)


@dataclass
class ModelSource:
    """Where a model name resolves to."""

    kind: str  # "gguf" | "dir" | "hub"
    path: str  # GGUF file, local directory or hub id


GGUF_MAGIC = b"GGUF"


def _looks_local(name: str) -> bool:
    """A name that can only be a local path: explicit prefixes, 2+ slashes, or a first part that exists here.

    A hub id is "org/name"; anything else that names no existing directory is a missing local path, and
    must never be looked up on the Hub (which waits on the network and then fails unclearly).
    """
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") >= 2:
        return True
    first = Path(name).parts[0] if Path(name).parts else ""
    return "/" in name and Path(first).is_dir()


def resolve(name: str) -> ModelSource:
    """Resolve a model name to a GGUF file, a local directory or a hub id (no network access)."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("model: expected a bundled name, GGUF file, local directory or hub id, got an empty name")
    if is_bundled(name):
        if name.lower() == DEFAULT_EMBEDDER:
            return ModelSource("dir", str(bundled_model_dir(name)))
        return ModelSource("gguf", str(bundled_gguf_path(name)))
    p = Path(name).expanduser()
    if name.endswith(".gguf"):
        if not p.is_file():
            raise InputError(f"{name}: GGUF file not found")
        return ModelSource("gguf", str(p.resolve()))
    if p.is_dir():
        if not (p / "config.json").exists():
            raise InputError(f"{name}: directory has no config.json (not a Hugging Face model directory)")
        return ModelSource("dir", str(p.resolve()))
    if p.is_file():
        raise InputError(
            f"{name}: is a file; expected a model directory (with config.json), a .gguf file, "
            f"a bundled name ({', '.join(bundled_names())}) or a hub id"
        )
    if _looks_local(name):
        raise InputError(
            f"{name}: model directory not found (a local path, so it was not looked up on the Hugging Face Hub)"
        )
    return ModelSource("hub", name)


def cache_root() -> Path:
    """longkit's one user cache directory: $LONGKIT_CACHE, else ~/.cache/longkit."""
    env = os.environ.get("LONGKIT_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "longkit"


def check_gguf(path: Path) -> None:
    """Refuse a file that is not GGUF before any library parses it (empty, truncated or other bytes)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except PermissionError:
        raise InputError(f"{path}: GGUF file is not readable (permission denied)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read GGUF file ({exc.strerror or exc})") from None
    if not head:
        raise InputError(f"{path}: empty file (0 bytes); expected a GGUF model file")
    if head[:4] != GGUF_MAGIC:
        raise InputError(f"{path}: not a GGUF file (it does not start with the GGUF magic bytes)")
    if len(head) < 8:
        raise InputError(f"{path}: truncated GGUF file ({len(head)} bytes)")


def gguf_digest(path: Path) -> str:
    """SHA-256 of a GGUF file, computed once and remembered by (resolved path, size, mtime) in the cache."""
    from longkit.io import sha256_file, write_json

    path = path.resolve()
    st = path.stat()
    key = f"{path}:{st.st_size}:{st.st_mtime_ns}"
    index_file = cache_root() / "gguf" / "digests.json"
    try:
        index = json.loads(index_file.read_text(encoding="utf-8")) if index_file.is_file() else {}
        if not isinstance(index, dict):
            index = {}
    except (OSError, ValueError):  # a damaged memo only costs one re-hash
        index = {}
    if key in index:
        return str(index[key])
    digest = sha256_file(path)
    index[key] = digest
    try:
        write_json(index_file, index)
    except OSError as exc:  # a read-only cache is not fatal
        log.warning("could not record the GGUF digest in %s: %s", index_file, exc)
    return digest


def gguf_cache_dir(gguf: Path) -> Path:
    """Where a GGUF's de-quantised weights live: keyed by the file's content, shared by every checkout."""
    return cache_root() / "gguf" / gguf_digest(gguf)[:24]


def _dtype(dtype: str) -> Any:
    import torch

    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
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
    """Load only the tokenizer of a model name (fast: no weights); local names never touch the network."""
    from transformers import AutoTokenizer

    src = resolve(name)
    try:
        if src.kind == "gguf":
            gguf = Path(src.path)
            check_gguf(gguf)
            cached = gguf_cache_dir(gguf)
            if (cached / "tokenizer_config.json").exists():
                return AutoTokenizer.from_pretrained(cached, local_files_only=True)
            tok = _from_gguf(AutoTokenizer, gguf)
            _save_cache(None, tok, cached)  # reading a GGUF's vocabulary takes ~10-30 s: do it once
            return tok
        return AutoTokenizer.from_pretrained(src.path, local_files_only=src.kind == "dir" or _offline())
    except OSError as exc:
        if src.kind != "hub":
            raise InputError(f"{name}: cannot load ({_first_line(exc)})") from None
        raise LongkitError(_not_available(name, exc)) from None
    except (ValueError, KeyError, TypeError) as exc:
        if src.kind == "hub":
            raise
        raise InputError(f"{name}: cannot load the tokenizer ({_first_line(exc)})") from None


def _from_gguf(cls: Any, gguf: Path, **kwargs: Any) -> Any:
    """cls.from_pretrained on a GGUF file; a file transformers cannot parse is a one-line InputError."""
    try:
        return cls.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True, **kwargs)
    except (LongkitError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # the GGUF reader raises many types (struct, numpy, value errors) on a damaged file
        raise InputError(f"{gguf}: cannot read GGUF file ({type(exc).__name__}: {_first_line(exc)})") from None


def load_model(
    name: str,
    dtype: str = "float32",
    device: str = "cpu",
    attn_implementation: str | None = "sdpa",
    cache: bool = True,
) -> tuple[Any, Any]:
    """Load (model, tokenizer); a GGUF file is de-quantised once and cached as safetensors, keyed by content."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = resolve(name)
    kwargs: dict[str, Any] = {"dtype": _dtype(dtype)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        if src.kind == "gguf":
            gguf = Path(src.path)
            check_gguf(gguf)
            cached = gguf_cache_dir(gguf)
            if cache and (cached / "model.safetensors").exists():
                model = AutoModelForCausalLM.from_pretrained(cached, local_files_only=True, **kwargs)
                tok = AutoTokenizer.from_pretrained(cached, local_files_only=True)
            else:
                tok = _from_gguf(AutoTokenizer, gguf)
                model = _from_gguf(AutoModelForCausalLM, gguf, **kwargs)
                _strip_gguf_quantizer(model)
                if cache:
                    _save_cache(model, tok, cached)
        else:
            local = src.kind == "dir" or _offline()
            tok = AutoTokenizer.from_pretrained(src.path, local_files_only=local)
            model = AutoModelForCausalLM.from_pretrained(src.path, local_files_only=local, **kwargs)
    except OSError as exc:
        if src.kind != "hub":
            raise InputError(f"{name}: cannot load ({_first_line(exc)})") from None
        raise LongkitError(_not_available(name, exc)) from None
    except (ValueError, KeyError, TypeError, EOFError) + _damaged_weights() as exc:
        if src.kind != "dir":
            raise
        raise InputError(
            f"{name}: cannot load the model, a file is damaged or not a model "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    # PreTrainedModel.to is wrapped with functools.wraps, whose typeshed type does not bind `self`
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    return model, tok


def _damaged_weights() -> tuple[type[BaseException], ...]:
    """Exception types a truncated or garbled weights file raises (safetensors header, torch pickle)."""
    import pickle

    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors comes with transformers
        return (pickle.UnpicklingError,)
    return (SafetensorError, pickle.UnpicklingError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _save_cache(model: Any, tok: Any, out: Path) -> None:
    """Save the tokenizer (and the de-quantised model, if given) into the cache dir out.

    Files are written to a temp dir first and moved in one by one, model.safetensors last, so a reader that
    sees model.safetensors (or tokenizer_config.json) finds everything it needs next to it.
    """
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        if model is not None:
            model.save_pretrained(tmp, safe_serialization=True, max_shard_size="1000GB")  # one file: the marker
        tok.save_pretrained(tmp)
        out.mkdir(parents=True, exist_ok=True)
        order = {"tokenizer_config.json": 1, "model.safetensors": 2}
        for f in sorted(tmp.iterdir(), key=lambda f: order.get(f.name, 0)):
            if not (out / f.name).exists():  # another process may have cached it meanwhile
                os.replace(f, out / f.name)
    except OSError as exc:  # a read-only cache is not fatal: the next load reads the GGUF again
        log.warning("could not cache the GGUF's de-quantised model or tokenizer at %s: %s", out, exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


def _not_available(name: str, exc: Exception) -> str:
    first = _first_line(exc)
    return (
        f"model '{name}' is not available offline (not a bundled name, GGUF file or local directory, "
        f"and not in the Hugging Face cache): {first}"
    )


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
