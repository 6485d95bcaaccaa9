"""A Hugging Face hub cache laid out as huggingface_hub lays it out, for tests that fetch benchmark data by name
offline (HF_HUB_OFFLINE=1, HF_HUB_CACHE in a tmp dir)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

REV = "0123456789abcdef0123456789abcdef01234567"


def hub_file(cache: Path, repo: str, filename: str, data: bytes, rev: str | None = None) -> Path:
    """One dataset file: blobs/<sha256>, snapshots/<rev>/<file> -> blob, refs/main -> rev (a DataSource's pinned
    revision, else REV); returns the snapshot path."""
    rev = rev or REV
    root = cache / f"datasets--{repo.replace('/', '--')}"
    blob = root / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    link = root / "snapshots" / rev / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(rev)
    return link
