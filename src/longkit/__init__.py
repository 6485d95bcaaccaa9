"""longkit: long-context LLM and RAG toolkit (ChatQA 2 + Untie the Knots)."""

__version__ = "0.1.0"
