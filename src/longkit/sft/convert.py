"""Converters from the official row schemas of the ChatQA SFT datasets to longkit's SFT rows
({messages, context?}, read by longkit.sft.format.row_to_conversation), one small function per schema.

Two schemas exist (see longkit.sft.hub for the datasets, files and revisions):

- ChatQA 1.5 training data (nvidia/ChatQA-Training-Data): a JSON list of
  `{messages: [{role: user|assistant, content}], answers: [...], document?: str}`; the conversation ends with the
  user's turn and its reply is `answers[0]`: a string, a `{text, answer_start}` span (SQuAD) or a list of reference
  strings (NarrativeQA, which holds two). `document` is the context; the `sft` subset has none.
- ChatQA 2 long SFT data (nvidia/ChatQA2-Long-SFT-data): Megatron-LM's QA-finetuning layout
  (`<name>/<name>_QA_train.json`, read by tools/retro/sft/dataset_conv.py `preprocess`): a JSON list of
  `{question, answer | answers, sub-paragraphs?}`.

Strict by design: a row that does not fit its schema is a one-line InputError naming the file, the row number
(1-based position in the file) and the field. The only rows left out are rows without any answer, which
Megatron-LM's reader leaves out too (`if len(answers) < 1: continue`); they are counted with that reason.
"""

from __future__ import annotations

import codecs
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from longkit.errors import InputError, located

RowConverter = Callable[[Any], dict[str, Any]]
NO_ANSWER = "no answer (an empty answer list, which Megatron-LM's QA reader also skips)"
_CHUNK = 1 << 23  # 8 MiB: the long-SFT files are JSON lists of several GB, read a chunk at a time
_MAX_ROW = 1 << 28  # 256 MiB: far above a 128K-token row (about 1 MB), so a broken row fails without reading on


class Dropped(Exception):
    """A row left out on purpose; the message is the reason, counted in the conversion report."""


def _object(row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise InputError(f"expected a JSON object, got {type(row).__name__}")
    return row


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"field '{field}' must be a string, got {type(value).__name__}")
    return value


def _turns(messages: Any) -> list[dict[str, str]]:
    """The conversation as {role, content} turns (role user or assistant), in order."""
    if not isinstance(messages, list) or not messages:
        raise InputError("field 'messages' must be a non-empty list")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            role = m.get("role") if isinstance(m, dict) else m
            raise InputError(f"field 'messages[{i}].role' must be 'user' or 'assistant', got {role!r}")
        turns.append({"role": m["role"], "content": _text(m.get("content"), f"messages[{i}].content")})
    return turns


def _first_answer(answers: Any, field: str) -> str:
    """answers[0] as text: a string, a SQuAD `{text}` span, or the first of a list of references."""
    if not isinstance(answers, list):
        raise InputError(f"field '{field}' must be a list, got {type(answers).__name__}")
    if not answers:
        raise Dropped(NO_ANSWER)
    first = answers[0]
    if isinstance(first, dict):
        return _text(first.get("text"), f"{field}[0].text")
    if isinstance(first, list):  # NarrativeQA: two human-written references; the first is kept (deterministic)
        if not first:
            raise InputError(f"field '{field}[0]' is an empty list of references")
        return _text(first[0], f"{field}[0][0]")
    return _text(first, f"{field}[0]")


def chatqa_row(row: Any, instruction: str | None = None) -> dict[str, Any]:
    """A ChatQA 1.5 training row: the turns, then answers[0] as the assistant's reply; `document` as the context.

    ChatQA's stage 2 prefixes a dataset-type instruction to the user's turn (dataset card); it goes before the
    first user turn, followed by a space, as the ChatQA-1.5 model card's prompt code places its instruction."""
    obj = _object(row)
    turns = _turns(obj.get("messages"))
    if turns[-1]["role"] != "user":
        raise InputError("field 'messages' must end with a user turn (its reply is in 'answers')")
    reply = _first_answer(obj.get("answers"), "answers")
    if instruction:
        turns[0] = {"role": "user", "content": f"{instruction} {turns[0]['content']}"}
    out: dict[str, Any] = {"messages": [*turns, {"role": "assistant", "content": reply}]}
    if obj.get("document") is not None and _text(obj["document"], "document").strip():
        out["context"] = obj["document"]
    return out


def _megatron_answer(obj: dict[str, Any]) -> str:
    """The reply as Megatron-LM's reader picks it: `answers`, else `answer` (a string, a list, or a scalar)."""
    if "answers" in obj:
        return _first_answer(obj["answers"], "answers")
    if "answer" not in obj:
        raise InputError("expected field 'answer' or 'answers'")
    answer = obj["answer"]
    if isinstance(answer, list):
        return _first_answer(answer, "answer")
    if isinstance(answer, str):
        return answer
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return str(answer)  # Megatron-LM's reader takes str() of any other answer; numbers are the sensible case
    raise InputError(f"field 'answer' must be a string or a list, got {type(answer).__name__}")


def _strip_turn_markers(question: str) -> str:
    """The question without a leading "User:" and a trailing "Assistant:".

    Assumption (not confirmed from NVIDIA's code): long_sft questions are stored as a ready-made turn,
    "User: <text>\\n\\nAssistant:", as third-party readers of the file report; longkit adds those markers itself
    (longkit.sft.format), so keeping them would double them. A question without them is kept as it is."""
    q = question.strip()
    if q.startswith("User:"):
        q = q[len("User:") :].lstrip()
    if q.endswith("Assistant:"):
        q = q[: -len("Assistant:")].rstrip()
    return q


def _sub_paragraphs(obj: dict[str, Any]) -> str | None:
    """The context: `sub-paragraphs` as a string, or a [title, text, ...] list joined by blank lines."""
    ctx = obj.get("sub-paragraphs")
    if ctx is None:
        return None
    if isinstance(ctx, list):
        return "\n\n".join(_text(p, f"sub-paragraphs[{i}]") for i, p in enumerate(ctx))
    return _text(ctx, "sub-paragraphs")


def megatron_qa_row(row: Any) -> dict[str, Any]:
    """A ChatQA 2 long-SFT row ({question, answer|answers, sub-paragraphs?}) as one user turn and its reply.

    No instruction is added: the ChatQA2-Long-SFT-data card names none for these subsets."""
    obj = _object(row)
    question = _strip_turn_markers(_text(obj.get("question"), "question"))
    reply = _megatron_answer(obj)
    out: dict[str, Any] = {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]}
    ctx = _sub_paragraphs(obj)
    if ctx is not None and ctx.strip():
        out["context"] = ctx
    return out


class _Reader:
    """Incremental UTF-8 text over a binary file, for decoding JSON values one at a time."""

    def __init__(self, path: Path) -> None:
        self.fh = path.open("rb")
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.eof = False

    def more(self) -> bool:
        """Append the next chunk to the buffer (dropping what was consumed); False at the end of the file."""
        if self.eof:
            return False
        data = self.fh.read(_CHUNK)
        self.eof = not data
        self.buf = self.buf[self.pos :] + self.decoder.decode(data, final=self.eof)
        self.pos = 0
        return bool(data)

    def skip_ws(self) -> str:
        """The next non-whitespace character ('' at the end of the file), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos : self.pos + 1]

    def value(self, decoder: json.JSONDecoder) -> Any:
        """The JSON value at the current position; reads further chunks while it is incomplete."""
        while True:
            try:
                obj, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # an unfinished row reads on, but not past _MAX_ROW: a broken row must not pull in the whole file
                if len(self.buf) - self.pos > _MAX_ROW:
                    raise InputError(f"invalid JSON ({exc.msg}) in its first {_MAX_ROW >> 20} MiB") from None
                if self.more():
                    continue
                raise InputError(f"invalid JSON ({exc.msg})") from None
            if end == len(self.buf) and not self.eof and self.more():
                continue  # a number or literal may go on in the next chunk
            self.pos = end
            return obj


def iter_json_rows(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(row number, value) for each item of a JSON list, or each value of a JSON-lines file, read incrementally
    (the long-SFT files are too large to load whole); malformed JSON names the file and the row."""
    path = Path(path)
    reader = _Reader(path)
    decoder = json.JSONDecoder()
    try:
        is_list = reader.skip_ws() == "["
        if is_list:
            reader.pos += 1
        n = 0
        while True:
            c = reader.skip_ws()
            if (is_list and c == "]") or (not is_list and c == ""):
                break
            if c == "":
                raise InputError(f"{path}: row {n + 1}: invalid JSON (the list is not closed)")
            if is_list and n and c != ",":
                raise InputError(f"{path}: row {n + 1}: invalid JSON (expected ',' between rows)")
            if is_list and n:
                reader.pos += 1
                reader.skip_ws()
            n += 1
            with located(f"{path}: row {n}"):
                yield n, reader.value(decoder)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid UTF-8") from None
    finally:
        reader.fh.close()


def convert_file(src: str | Path, dst: str | Path, convert: RowConverter) -> dict[str, Any]:
    """Convert every row of src into dst (JSONL, written atomically: a failed conversion leaves nothing);
    returns {read, converted, dropped: {reason: count}}."""
    from longkit.io import atomic_writer
    from longkit.sft.format import check_trainable

    read, converted, dropped = 0, 0, Counter[str]()
    with atomic_writer(dst) as out:
        for n, row in iter_json_rows(src):
            read += 1
            with located(f"{src}: row {n}"):
                try:
                    rec = convert(row)
                except Dropped as why:
                    dropped[str(why)] += 1
                    continue
                check_trainable(rec["messages"])
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            converted += 1
    return {"read": read, "converted": converted, "dropped": dict(dropped)}
