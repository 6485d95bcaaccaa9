"""What a tokenizer maps ids to, in one comparable record: a corpus stores it, every reuse compares it."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def tokenizer_fingerprint(tokenizer: Any, size: int | None = None) -> str:  # Any: a Hugging Face tokenizer
    """SHA-256 over the sorted (id, token) pairs and special tokens of the ids below `size` (default: all)."""
    # Hashing only the first `size` ids lets a tokenizer that later gained tokens (UtK's special tokens, appended
    # after the vocabulary) still match the corpus its original vocabulary produced.
    vocab = tokenizer.get_vocab()
    n = len(tokenizer) if size is None else int(size)
    pairs = sorted((int(i), str(t)) for t, i in vocab.items() if int(i) < n)
    specials = sorted({str(t) for t in getattr(tokenizer, "all_special_tokens", []) if vocab.get(t, n) < n})
    return hashlib.sha256(json.dumps([pairs, specials], ensure_ascii=False).encode("utf-8")).hexdigest()
