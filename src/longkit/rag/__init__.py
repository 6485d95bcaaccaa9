"""longkit.rag."""
