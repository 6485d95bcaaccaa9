"""ChatQA prompt format (Liu et al. 2024, ChatQA / ChatQA 2) and answer-only loss masks.

    System: {system}

    {context}

    User: {turn}

    Assistant: {reply}

    User: {turn}

    Assistant:

The system message is ChatQA's own (as in the nvidia/Llama3-ChatQA model cards). A conversation is
tokenized piece by piece so the label mask lines up with the assistant replies exactly: prompt
pieces (system, context, user turns, the "Assistant:" cue) get -100, each reply and the EOS after
the last reply are trained.
"""

from __future__ import annotations

from typing import Any

from longkit.errors import InputError, located

CHATQA_SYSTEM = (
    "This is a chat between a user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions based on the context. The assistant should also "
    "indicate when the answer cannot be found in the context."
)
IGNORE = -100


def _check(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The messages as alternating {role, content} turns that start with the user's."""
    if not isinstance(messages, list) or not messages:
        raise InputError("field 'messages' must be a non-empty list")
    out = []
    for i, m in enumerate(messages):
        if (
            not isinstance(m, dict)
            or m.get("role") not in ("user", "assistant")
            or not isinstance(m.get("content"), str)
        ):
            raise InputError(f"messages[{i}] must be {{role: user|assistant, content: str}}")
        out.append({"role": m["role"], "content": m["content"].strip()})
    if out[0]["role"] != "user":
        raise InputError("messages[0] must be a user turn")
    for i in range(1, len(out)):
        if out[i]["role"] == out[i - 1]["role"]:
            raise InputError(f"messages[{i}] repeats role '{out[i]['role']}' (turns must alternate)")
    return out


def format_chatqa(
    messages: list[dict[str, Any]],
    context: str | None = None,
    system: str | None = None,
    add_generation_prompt: bool = True,
) -> str:
    """The ChatQA prompt text; ends with 'Assistant:' when the last turn is the user's and a prompt is wanted."""
    with located("conversation"):
        msgs = _check(messages)
    head = f"System: {system or CHATQA_SYSTEM}"
    if context and context.strip():
        head += "\n\n" + context.strip()
    conv = "\n\n".join(("User: " if m["role"] == "user" else "Assistant: ") + m["content"] for m in msgs)
    text = head + "\n\n" + conv
    if add_generation_prompt and msgs[-1]["role"] == "user":
        text += "\n\nAssistant:"
    return text


def check_trainable(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation, checked: alternating user/assistant turns that end with an assistant reply."""
    msgs = _check(messages)
    if msgs[-1]["role"] != "assistant":
        raise InputError("the last message must be an assistant reply to train on")
    return msgs


def encode_chatqa(
    tokenizer: Any, messages: list[dict[str, Any]], context: str | None = None, system: str | None = None
) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for a conversation ending with an assistant reply; loss only on replies (+ EOS)."""
    msgs = check_trainable(messages)
    head = f"System: {system or CHATQA_SYSTEM}"
    if context and context.strip():
        head += "\n\n" + context.strip()
    pieces: list[tuple[str, bool]] = []
    prompt = head
    for m in msgs:
        if m["role"] == "user":
            prompt += "\n\nUser: " + m["content"] + "\n\nAssistant:"
        else:
            pieces.append((prompt, False))
            pieces.append((" " + m["content"], True))
            prompt = ""
    ids: list[int] = []
    labels: list[int] = []
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and getattr(tokenizer, "add_bos_token", False):
        ids.append(bos)
        labels.append(IGNORE)
    for text, train in pieces:
        tok = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += tok
        labels += tok if train else [IGNORE] * len(tok)
    eos = tokenizer.eos_token_id
    if eos is not None:
        ids.append(eos)
        labels.append(eos)
    return ids, labels


def row_to_conversation(row: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """(messages, context, system) from an SFT row: {messages, context?, system?} or {question, answer, context?}."""
    if "messages" in row:
        msgs = row["messages"]
    elif "question" in row and "answer" in row:
        msgs = [{"role": "user", "content": str(row["question"])}, {"role": "assistant", "content": str(row["answer"])}]
    else:
        raise InputError("expected field 'messages' (or 'question' and 'answer')")
    ctx = row.get("context")
    if ctx is not None and not isinstance(ctx, str):
        raise InputError("field 'context' must be a string")
    return msgs, ctx, row.get("system")
