"""The ChatQA prompt with retrieved chunks as context.

ChatQA (1.5 / 2) format: `System: {system}\n\n{context}\n\nUser: {turn}\n\nAssistant: {turn}...\n\nAssistant:`.
The prompt text itself comes from `longkit.sft.format`, so training and inference prompts cannot drift
apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from longkit.backends.base import GenerationRequest
from longkit.errors import ConfigError, InputError
from longkit.sft.format import CHATQA_SYSTEM, format_chatqa

SHORT_ANSWER = "Answer the following question with a short span."
FULL_ANSWER = "Please give a full and complete answer for the question."
STYLES = ("auto", "chatqa", "chat")
STOP = ["\nUser:"]


def is_chatqa_model(name: str) -> bool:
    """Whether a model name or path names a ChatQA-family model (trained on the ChatQA prompt format)."""
    return "chatqa" in str(name).lower().replace("-", "").replace("_", "")


def resolved_style(style: str, backend: object, model_name: str = "") -> str:
    """The prompt style to use: 'auto' is the ChatQA format for ChatQA-family models (as the ChatQA papers
    prompt them) and the model's own chat template otherwise; a model without a chat template gets ChatQA.

    A chat model fed the raw ChatQA text often answers nothing at all (SmolLM2-Instruct returns empty
    answers for many questions), which is why the default follows the model.
    """
    if style not in STYLES:
        raise ConfigError(f"--style: expected one of {', '.join(STYLES)}, got '{style}'")
    if style != "auto":
        return style
    names = [model_name, getattr(backend, "model_name", ""), getattr(backend, "model", "")]
    if any(isinstance(n, str) and is_chatqa_model(n) for n in names):
        return "chatqa"
    tok = getattr(backend, "tokenizer", None)
    return "chat" if getattr(tok, "has_chat_template", False) else "chatqa"


def as_messages(question: str | Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Normalise a question or a conversation to messages that end with a user turn."""
    if isinstance(question, str):
        if not question.strip():
            raise InputError("the question is empty")
        return [{"role": "user", "content": question}]
    msgs = [dict(m) for m in question if m.get("role") != "system"]
    if not msgs or msgs[-1].get("role") != "user" or not str(msgs[-1].get("content", "")).strip():
        raise InputError("a conversation must end with a non-empty user turn")
    for m in msgs:
        if m.get("role") not in ("user", "assistant") or not isinstance(m.get("content"), str):
            raise InputError(f"bad message {m!r}: role must be user/assistant and content a string")
    return msgs


def format_context(texts: Sequence[str]) -> str:
    """Chunks joined as the context block."""
    return "\n\n".join(t.strip() for t in texts)


def chatqa_prompt(
    context: str, messages: Sequence[dict[str, str]], instruction: str = SHORT_ANSWER, system: str = CHATQA_SYSTEM
) -> str:
    """The ChatQA prompt string; the instruction is prefixed to the last user turn."""
    msgs = [dict(m) for m in messages]
    if instruction:
        msgs[-1]["content"] = f"{instruction} {msgs[-1]['content'].strip()}"
    return format_chatqa(msgs, context=context, system=system)


def chat_prompt_messages(
    context: str, messages: Sequence[dict[str, str]], instruction: str = SHORT_ANSWER, system: str = CHATQA_SYSTEM
) -> list[dict[str, str]]:
    """The same content as chat messages, for models that expect their own chat template."""
    out = [{"role": "system", "content": system}]
    msgs = [dict(m) for m in messages]
    last = msgs[-1]
    parts = [
        p for p in (f"Context:\n{context}" if context else "", f"{instruction} {last['content'].strip()}".strip()) if p
    ]
    last["content"] = "\n\n".join(parts)
    return out + msgs


def build_request(
    context: str,
    messages: Sequence[dict[str, str]],
    style: str = "chatqa",
    instruction: str = SHORT_ANSWER,
    max_new_tokens: int = 64,
) -> GenerationRequest:
    """A generation request in the chosen prompt style."""
    if style == "chatqa":
        return GenerationRequest(
            prompt=chatqa_prompt(context, messages, instruction), max_new_tokens=max_new_tokens, stop=list(STOP)
        )
    if style == "chat":
        return GenerationRequest(
            messages=chat_prompt_messages(context, messages, instruction),
            max_new_tokens=max_new_tokens,
            stop=list(STOP),
        )
    raise ConfigError(f"prompt style must be 'chatqa' or 'chat' (resolve 'auto' with resolved_style), got '{style}'")
