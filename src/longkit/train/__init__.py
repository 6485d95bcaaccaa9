"""longkit.train."""
