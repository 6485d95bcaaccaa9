"""longkit.eval.tasks."""
