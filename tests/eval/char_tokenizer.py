"""A one-token-per-character tokenizer without a chat template, for prompt-construction tests whose expected
truncation is easiest to state in characters (the HELMET fidelity tests)."""

from __future__ import annotations


class CharTokenizer:
    """Each character is one token (its code point); chat messages render as their contents back to back."""

    has_chat_template = False

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)

    def count(self, text: str) -> int:
        return len(text)

    def render_messages(self, messages: list[dict[str, str]]) -> str:
        return "".join(m["content"] for m in messages)
