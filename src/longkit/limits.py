"""Bounds shared by every config, CLI and builder (each defined once here)."""

from __future__ import annotations

# 16M tokens: far past any released model's window. A larger length is a typo (1e12) that would only fail deep
# inside a run, or exhaust memory building a haystack or a packed row, instead of being refused where it is given.
MAX_TOKENS = 1 << 24
