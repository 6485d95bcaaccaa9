"""Fixtures for the server tests: the RAG inputs (the tiny model fixtures come from tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm():
    """The bundled sentence-transformers embedder."""
    from longkit.rag.embed import load_embedder

    return load_embedder("all-minilm-l6-v2")


@pytest.fixture(scope="session")
def topics():
    """A few short topics of Python's language reference."""
    from pydoc_data.topics import topics as t

    return {k: t[k].strip()[:700] for k in ("assert", "pass", "break", "continue", "del", "global", "while")}
