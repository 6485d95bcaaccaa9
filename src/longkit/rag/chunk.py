"""Split documents into chunks of N tokens (or words) with overlap, preferring paragraph and sentence
boundaries; every chunk keeps its document id, its position and its exact character span."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from longkit.errors import ConfigError, InputError

_WORD = re.compile(r"\S+")
_SENT_END = ".!?"
_CLOSERS = "\"')]*"


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: `text == document[start:end]`."""

    doc_id: str
    position: int  # index of the chunk within its document
    start: int  # character span in the document
    end: int
    n_tokens: int  # length in the chunker's unit (tokens or words)
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view."""
        return asdict(self)


@dataclass(frozen=True)
class ChunkConfig:
    """How documents are cut."""

    size: int = 200
    overlap: int = 0
    unit: str = "token"  # "token" (of a tokenizer) or "word" (ChatRAG Bench's ~300-word chunks)
    tolerance: float = 0.15  # a chunk may end up to size*tolerance units early to land on a boundary

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError(f"chunk size must be >= 1, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ConfigError(f"chunk overlap must be in [0, size), got {self.overlap} for size {self.size}")
        if self.unit not in ("token", "word"):
            raise ConfigError(f"chunk unit must be 'token' or 'word', got '{self.unit}'")
        if not 0 <= self.tolerance < 1:
            raise ConfigError(f"chunk tolerance must be in [0, 1), got {self.tolerance}")


def unit_spans(text: str, unit: str, tokenizer: Any = None) -> list[tuple[int, int]]:
    """Character spans of the units of text: words, or the tokens of a fast Hugging Face tokenizer."""
    if unit == "word":
        return [m.span() for m in _WORD.finditer(text)]
    if tokenizer is None:
        raise ConfigError("token chunking needs a tokenizer")
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    except NotImplementedError:  # older transformers: slow (Python) tokenizers refuse offsets
        enc = {}
    if "offset_mapping" not in enc:  # transformers 5: Python-backend tokenizers return none, silently
        raise ConfigError(
            f"token chunking needs a fast tokenizer (one that returns character offsets); "
            f"{type(tokenizer).__name__} does not (use --unit word, or a tokenizer with tokenizer.json)"
        )
    spans = [(int(s), int(e)) for s, e in enc["offset_mapping"]]
    # Byte-level pieces of one character share its span; drop empty spans so each unit covers text.
    return [(s, e) for s, e in spans if e > s] if spans else []


def _boundary_score(text: str, prev_end: int, next_start: int) -> int:
    """How good a cut is between a unit ending at prev_end and the next one starting at next_start."""
    gap = text[prev_end:next_start]
    if "\n\n" in gap or (next_start < len(text) and text.startswith("\n\n", next_start)):
        return 3
    before = text[max(0, prev_end - 8) : prev_end].rstrip().rstrip(_CLOSERS)
    if (
        before
        and before[-1] in _SENT_END
        and gap.strip() == ""
        and (gap or text[next_start : next_start + 1].isspace())
    ):
        return 2
    if "\n" in gap:
        return 1
    return 0


def chunk_document(text: str, doc_id: str, config: ChunkConfig, tokenizer: Any = None) -> list[Chunk]:
    """Cut one document into chunks of at most config.size units; an empty document is an error."""
    if not text or not text.strip():
        raise InputError(f"document '{doc_id}' is empty")
    spans = unit_spans(text, config.unit, tokenizer)
    if not spans:
        raise InputError(f"document '{doc_id}' has no {config.unit}s")
    n = len(spans)
    slack = int(config.size * config.tolerance)
    chunks: list[Chunk] = []
    start = 0
    while start < n:
        end = min(start + config.size, n)
        if end < n and slack > 0:
            best, best_score = end, 0
            for j in range(end, max(start + 1, end - slack) - 1, -1):
                score = _boundary_score(text, spans[j - 1][1], spans[j][0])
                if score > best_score:
                    best, best_score = j, score
                    if score == 3:
                        break
            end = best
        c0, c1 = spans[start][0], spans[end - 1][1]
        piece = text[c0:c1]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        c0, c1 = c0 + lead, c1 - trail
        # units that are only the stripped edge whitespace are not counted
        first = start + next((i for i, (_, e) in enumerate(spans[start:end]) if e > c0), 0)
        last = end - next((i for i, (s, _) in enumerate(reversed(spans[start:end])) if s < c1), 0)
        chunks.append(Chunk(doc_id, len(chunks), c0, c1, max(1, last - first), text[c0:c1]))
        if end >= n:
            break
        start = max(end - config.overlap, start + 1)
    return chunks


def chunk_documents(docs: Sequence[tuple[str, str]], config: ChunkConfig, tokenizer: Any = None) -> list[Chunk]:
    """Chunk (doc_id, text) pairs in order."""
    out: list[Chunk] = []
    for doc_id, text in docs:
        out.extend(chunk_document(text, doc_id, config, tokenizer))
    return out
