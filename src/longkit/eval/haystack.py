"""Haystack text for needle tests: Python's own language reference (offline prose), RULER's noise
sentences, or a directory of .txt files chosen by the user."""

from __future__ import annotations

from pathlib import Path

from longkit.errors import InputError

# RULER's "noise" haystack: one repeated filler paragraph.
NOISE_SENTENCE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."

BUILTIN = ("pydoc", "noise")


def pydoc_text() -> str:
    """Python's language reference as shipped in pydoc_data.topics (about 100K tokens of prose)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k].strip() for k in sorted(topics))


def load_haystack(source: str, min_chars: int = 0) -> str:
    """Haystack text from 'pydoc', 'noise' or a directory of .txt files (sorted by name, concatenated)."""
    if source == "pydoc":
        return pydoc_text()
    if source == "noise":
        reps = max(1, min_chars // (len(NOISE_SENTENCE) + 1) + 1)
        return " ".join([NOISE_SENTENCE] * reps)
    path = Path(source)
    if not path.exists():
        raise InputError(f"haystack '{source}': not 'pydoc', 'noise' or an existing directory")
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"haystack directory {source} holds no .txt files")
    parts = []
    for f in files:
        try:
            parts.append(f.read_text(encoding="utf-8").strip())
        except UnicodeDecodeError as exc:
            raise InputError(f"{f}: not UTF-8 text (byte {exc.start})") from None
    text = "\n\n".join(p for p in parts if p)
    if not text.strip():
        raise InputError(f"haystack {source}: all .txt files are empty")
    return text
