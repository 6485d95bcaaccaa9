"""longkit.data."""
