"""longkit.eval."""
