"""longkit.sft."""
