"""Chunker: sizes, overlap, boundaries, exact spans, word mode, bad input."""

from __future__ import annotations

import pytest

from longkit.errors import ConfigError, InputError
from longkit.rag.chunk import ChunkConfig, chunk_document, unit_spans


def _ref_text() -> str:
    from longkit.rag.sources import python_reference_text

    return python_reference_text()[:60000]


def test_token_chunks_cover_the_document_with_exact_spans(smol_tokenizer):
    text = _ref_text()
    cfg = ChunkConfig(size=120, overlap=0, tolerance=0.2)
    chunks = chunk_document(text, "ref", cfg, smol_tokenizer)
    assert len(chunks) > 10
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.doc_id == "ref"
        assert text[c.start : c.end] == c.text
        assert 0 < c.n_tokens <= cfg.size
        # the chunk's own token count agrees with the span count (give or take a merge at the edges)
        assert abs(len(smol_tokenizer(c.text, add_special_tokens=False)["input_ids"]) - c.n_tokens) <= 2
    # without overlap, consecutive chunks tile the text: only whitespace between them
    for a, b in zip(chunks, chunks[1:]):
        assert a.end <= b.start and text[a.end : b.start].strip() == ""
    assert text[: chunks[0].start].strip() == "" and text[chunks[-1].end :].strip() == ""


def test_boundaries_are_preferred_within_tolerance(smol_tokenizer):
    text = _ref_text()
    strict = chunk_document(text, "d", ChunkConfig(size=100, tolerance=0.0), smol_tokenizer)
    loose = chunk_document(text, "d", ChunkConfig(size=100, tolerance=0.3), smol_tokenizer)

    def at_boundary(c):
        after = text[c.end : c.end + 2]
        return c.text.rstrip("\"')]*")[-1:] in ".!?" or after.startswith("\n")

    frac_strict = sum(map(at_boundary, strict[:-1])) / (len(strict) - 1)
    frac_loose = sum(map(at_boundary, loose[:-1])) / (len(loose) - 1)
    assert frac_loose > 0.8 and frac_strict < 0.6, (frac_loose, frac_strict)
    assert frac_loose > frac_strict
    assert all(97 <= c.n_tokens <= 100 for c in strict[:-1])
    assert all(62 <= c.n_tokens <= 100 for c in loose[:-1]), sorted(c.n_tokens for c in loose)[:5]


def test_overlap_repeats_the_tail_of_the_previous_chunk(smol_tokenizer):
    text = _ref_text()[:8000]
    chunks = chunk_document(text, "d", ChunkConfig(size=80, overlap=20, tolerance=0.0), smol_tokenizer)
    spans = unit_spans(text, "token", smol_tokenizer)
    starts = {s for s, _ in spans}
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end  # they overlap
        overlap_tokens = sum(1 for s in starts if b.start <= s < a.end)
        assert 18 <= overlap_tokens <= 21


def test_word_chunks():
    text = "One two three. Four five six seven.\n\nEight nine ten eleven twelve. " * 20
    chunks = chunk_document(text, "w", ChunkConfig(size=30, unit="word", tolerance=0.3))
    assert sum(len(c.text.split()) for c in chunks) == len(text.split())
    for c in chunks:
        assert len(c.text.split()) == c.n_tokens <= 30
        assert text[c.start : c.end] == c.text
    assert all(c.text.endswith(".") for c in chunks)


def test_empty_document_and_bad_config(smol_tokenizer):
    with pytest.raises(InputError, match="'blank' is empty"):
        chunk_document("  \n\n ", "blank", ChunkConfig(size=10), smol_tokenizer)
    with pytest.raises(ConfigError, match="overlap"):
        ChunkConfig(size=10, overlap=10)
    with pytest.raises(ConfigError, match="needs a tokenizer"):
        chunk_document("text", "d", ChunkConfig(size=10))


def test_token_chunking_with_a_tokenizer_without_offsets_is_a_clear_error():
    """transformers 5's Python-backend tokenizers (here ByT5's, which needs no files) return no offsets."""
    from transformers import ByT5Tokenizer

    with pytest.raises(ConfigError, match="token chunking needs a fast tokenizer.*ByT5Tokenizer.*--unit word"):
        unit_spans("Some text to chunk.", "token", ByT5Tokenizer())
