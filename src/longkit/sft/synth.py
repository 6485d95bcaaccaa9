"""Synthetic long SFT samples (ChatQA 2, NarrativeQA-style): insert a summary into its long source
document at a random sentence boundary, so QA pairs written from the summary stay answerable from a
32K-128K-token context.

Input: JSONL rows {id?, document, summary, qa: [{question, answer}, ...]} (field names configurable).
Output: SFT rows {id, context, messages, meta} in longkit's ChatQA SFT format.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from longkit.errors import InputError, located
from longkit.limits import MAX_TOKENS

_SENT = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, keeping each sentence's trailing whitespace (pieces join back exactly)."""
    pieces, start = [], 0
    for m in _SENT.finditer(text):
        pieces.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        pieces.append(text[start:])
    return [p for p in pieces if p]


@dataclass
class SynthOptions:
    """Knobs of synth-long."""

    lengths: tuple[int, ...] = (32768, 65536, 131072)
    qa_per_sample: int = 1
    fill: bool = True  # documents shorter than the target are followed by other documents (distractors)
    seed: int = 0
    document_field: str = "document"
    summary_field: str = "summary"
    qa_field: str = "qa"


def _qa(row: dict[str, Any], opts: SynthOptions) -> list[tuple[str, str]]:
    """The row's (question, answer) pairs."""
    qa = row.get(opts.qa_field)
    if not isinstance(qa, list) or not qa:
        raise InputError(f"field '{opts.qa_field}' must be a non-empty list of {{question, answer}}")
    out = []
    for i, p in enumerate(qa):
        if not isinstance(p, dict) or not isinstance(p.get("question"), str) or not isinstance(p.get("answer"), str):
            raise InputError(f"{opts.qa_field}[{i}] needs string fields 'question' and 'answer'")
        out.append((p["question"], p["answer"]))
    return out


SHORT_FRACTION = 0.9  # a sample under 90% of its target length is reported as short, with the reason


def short_reason(context_tokens: int, target: int, opts: SynthOptions, n_docs: int, all_tokens: int) -> str | None:
    """Why a sample is shorter than asked (None when it is within SHORT_FRACTION of the target)."""
    if context_tokens >= SHORT_FRACTION * target:
        return None
    if not opts.fill:
        return "document shorter than the target and --no-fill"
    if n_docs < 2:
        return "document shorter than the target and no other documents to fill with"
    if all_tokens < SHORT_FRACTION * target:
        return "all input documents together are shorter than the target"
    return "the other documents' leading sentences did not fit the remaining room"


def summarize(samples: list[dict[str, Any]], lengths: tuple[int, ...]) -> dict[str, Any]:
    """Per target length: samples made, context tokens (min/median/max) and how many are short, and why."""
    out: dict[str, Any] = {}
    for t in lengths:
        got = [s["meta"] for s in samples if s["meta"]["target_length"] == t]
        toks = sorted(m["context_tokens"] for m in got)
        reasons: dict[str, int] = {}
        for m in got:
            if m.get("short_reason"):
                reasons[m["short_reason"]] = reasons.get(m["short_reason"], 0) + 1
        out[str(t)] = {
            "samples": len(got),
            "short": sum(reasons.values()),
            "reasons": reasons,
            "context_tokens": {"min": toks[0], "median": toks[len(toks) // 2], "max": toks[-1]} if toks else None,
        }
    return out


def validate_options(opts: SynthOptions) -> None:
    """Refuse lengths and counts that cannot make a sample (before any tokenizing)."""
    from longkit.errors import ConfigError

    if not opts.lengths:
        raise ConfigError("--lengths: give at least one target length")
    for n in opts.lengths:
        if not MIN_LENGTH <= n <= MAX_TOKENS:
            raise ConfigError(f"--lengths: each length must be in [{MIN_LENGTH}, {MAX_TOKENS}] tokens, got {n}")
    if opts.qa_per_sample < 1:
        raise ConfigError(f"--qa-per-sample: must be >= 1, got {opts.qa_per_sample}")


MIN_LENGTH = 64


def sentence_tokens(tokenizer: Any, sents: list[str]) -> np.ndarray:
    """Tokens of each sentence as they fall in the joined text (they add up to the document's token count).

    Tokenizing sentences one by one overcounts (a sentence alone starts without its leading space and ends with
    its own whitespace token), which made samples ~20% shorter than their target; offsets avoid that.
    """
    if not sents:
        return np.zeros(0, dtype=np.int64)
    text = "".join(sents)
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:  # older transformers: slow (Python) tokenizers refuse offsets
        enc = {}
    if "offset_mapping" not in enc:  # no offsets (a Python-backend tokenizer): count each sentence on its own
        return np.asarray([len(x) for x in tokenizer(sents, add_special_tokens=False)["input_ids"]], dtype=np.int64)
    starts = np.asarray([o[0] for o in enc["offset_mapping"]], dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum([len(x) for x in sents])])
    idx = np.searchsorted(starts, bounds, "left")
    return np.diff(idx).astype(np.int64)


@dataclass
class _Doc:
    """One input row, split into sentences and counted, with its QA pairs."""

    source: str  # where the row came from (file:line)
    row: dict[str, Any]
    sents: list[str]
    counts: np.ndarray
    qa: list[tuple[str, str]]


def _read_doc(source: str, row: dict[str, Any], tokenizer: Any, opts: SynthOptions) -> _Doc:
    """Check a row's fields and count its sentences' tokens."""
    for f in (opts.document_field, opts.summary_field):
        if not isinstance(row.get(f), str) or not row[f].strip():
            raise InputError(f"field '{f}' must be a non-empty string")
    sents = split_sentences(row[opts.document_field])
    return _Doc(source, row, sents, sentence_tokens(tokenizer, sents), _qa(row, opts))


def synthesize(
    rows: list[tuple[str, dict[str, Any]]], tokenizer: Any, opts: SynthOptions, progress: Any = None
) -> Iterator[dict[str, Any]]:
    """Yield one long SFT sample per (row, target length); `rows` are (where, row) pairs."""
    validate_options(opts)
    rng = np.random.default_rng(opts.seed)
    docs = []
    for where, row in rows:
        with located(where):
            docs.append(_read_doc(where, row, tokenizer, opts))
    all_tokens = int(sum(int(d.counts.sum()) for d in docs))
    for k, doc in enumerate(docs):
        summary = doc.row[opts.summary_field].strip()
        s_tok = len(tokenizer(summary, add_special_tokens=False)["input_ids"])
        if s_tok >= min(opts.lengths):
            with located(doc.source):
                raise InputError(
                    f"field '{opts.summary_field}' is {s_tok} tokens, not shorter than the target "
                    f"length {min(opts.lengths)}; use larger --lengths or a shorter summary"
                )
        for target in opts.lengths:
            sample = _sample(docs, k, summary, s_tok, target, tokenizer, opts, rng)
            why = short_reason(sample["meta"]["context_tokens"], target, opts, len(docs), all_tokens + s_tok)
            if why:
                sample["meta"]["short_reason"] = why
            if progress is not None:
                progress.advance()
            yield sample


def _window(counts: np.ndarray, budget: int, rng: np.random.Generator) -> tuple[int, int]:
    """A random window [lo, hi) of whole sentences that fits the budget (the whole document when it fits)."""
    if counts.sum() <= budget:
        return 0, len(counts)
    csum = np.concatenate([[0], np.cumsum(counts)])
    # starts from which a full budget of text follows (a start near the end made a short sample)
    starts = np.flatnonzero(csum[:-1] + budget <= csum[-1])
    lo = int(rng.choice(starts)) if len(starts) else 0
    return lo, int(np.searchsorted(csum, csum[lo] + budget, "right") - 1)


def _fill(docs: list[_Doc], k: int, room: int, rng: np.random.Generator) -> list[str]:
    """Leading sentences of the other documents (distractors), up to `room` tokens."""
    extra: list[str] = []
    for j in (j for j in rng.permutation(len(docs)) if j != k):
        take = int(np.searchsorted(np.cumsum(docs[j].counts), room, "right"))
        if take == 0:
            continue
        extra.append("".join(docs[j].sents[:take]).strip())
        room -= int(docs[j].counts[:take].sum())
        if room <= 0:
            break
    return extra


def _sample(
    docs: list[_Doc],
    k: int,
    summary: str,
    s_tok: int,
    target: int,
    tokenizer: Any,
    opts: SynthOptions,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """One sample: document k's window with the summary at a random sentence boundary, filled to `target`."""
    doc = docs[k]
    lo, hi = _window(doc.counts, max(0, target - s_tok - 4), rng)  # room for the "\n\n" joins around the summary
    window = doc.sents[lo:hi]
    used = int(doc.counts[lo:hi].sum())
    at = int(rng.integers(0, len(window) + 1))  # any sentence boundary, both ends included
    parts = [p for p in ("".join(window[:at]).rstrip(), summary, "".join(window[at:]).lstrip()) if p]
    context = "\n\n".join(parts)
    extra: list[str] = []
    if opts.fill and used + s_tok < target and len(docs) > 1:
        extra = _fill(docs, k, target - used - s_tok, rng)
        if extra:  # distractors go around the source so the summary's position stays random overall
            cut = int(rng.integers(0, len(extra) + 1))
            context = "\n\n".join(extra[:cut] + [context] + extra[cut:])
    picks = rng.choice(len(doc.qa), size=min(opts.qa_per_sample, len(doc.qa)), replace=False)
    messages = []
    for p in picks:
        messages += [{"role": "user", "content": doc.qa[p][0]}, {"role": "assistant", "content": doc.qa[p][1]}]
    meta = {
        "source": doc.source,
        "target_length": target,
        "context_tokens": len(tokenizer(context, add_special_tokens=False)["input_ids"]),
        "summary_sentence": lo + at,
        "window": [lo, hi],
        "distractor_docs": len(extra),
    }
    return {"id": f"{doc.row.get('id', k)}-{target}", "context": context, "messages": messages, "meta": meta}
