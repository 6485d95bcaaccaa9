"""longkit.backends."""
