"""Helpers for tests and experiments: tiny random Llama models built from a config, offline prose."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def prose() -> str:
    """Python's language reference (pydoc_data.topics) as one text, topics in sorted order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def build_tiny_llama(
    tokenizer: Any, out: Path, max_positions: int = 4096, layers: int = 2, hidden: int = 64, seed: int = 0
) -> Path:
    """Save a tiny random LlamaForCausalLM matching tokenizer's vocabulary to out; returns out."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    # rope_theta works on every supported transformers (4.x reads it; 5.x folds it into rope_parameters), but 5.x's
    # config dataclass does not declare the legacy keyword it still accepts
    cfg = LlamaConfig(  # type: ignore[call-arg]
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        rope_theta=10000.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


HUB_REV = "0123456789abcdef0123456789abcdef01234567"  # the revision fixtures are published under by default


def hub_file(cache: Path, repo: str, filename: str, data: bytes, rev: str | None = None) -> Path:
    """One dataset file in a Hugging Face cache laid out as huggingface_hub lays it out (blobs/<sha256>,
    snapshots/<rev>/<file> linking to it, refs/main -> rev), so that code fetching data by name can run offline
    on fixtures (tests, and benchmarks on fixture data); returns the snapshot path."""
    import hashlib
    import os

    rev = rev or HUB_REV
    root = cache / f"datasets--{repo.replace('/', '--')}"
    blob = root / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    link = root / "snapshots" / rev / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(rev)
    return link
