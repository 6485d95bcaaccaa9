"""The OpenAI-compatible server: the top of the house (it uses backends and rag; nothing imports it)."""

from __future__ import annotations
