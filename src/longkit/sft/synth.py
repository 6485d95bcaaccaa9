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

from longkit.errors import InputError

_SENT = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, keeping each sentence's trailing whitespace (pieces join back exactly)."""
    pieces, start = [], 0
    for m in _SENT.finditer(text):
        pieces.append(text[start:m.end()])
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


def _qa(row: dict[str, Any], opts: SynthOptions, where: str) -> list[tuple[str, str]]:
    qa = row.get(opts.qa_field)
    if not isinstance(qa, list) or not qa:
        raise InputError(f"{where}: field '{opts.qa_field}' must be a non-empty list of {{question, answer}}")
    out = []
    for i, p in enumerate(qa):
        if not isinstance(p, dict) or not isinstance(p.get("question"), str) or not isinstance(p.get("answer"), str):
            raise InputError(f"{where}: {opts.qa_field}[{i}] needs string fields 'question' and 'answer'")
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
        out[str(t)] = {"samples": len(got), "short": sum(reasons.values()), "reasons": reasons,
                       "context_tokens": {"min": toks[0], "median": toks[len(toks) // 2], "max": toks[-1]}
                       if toks else None}
    return out


def validate_options(opts: SynthOptions) -> None:
    """Refuse lengths and counts that cannot make a sample (before any tokenizing)."""
    from longkit.errors import ConfigError

    if not opts.lengths:
        raise ConfigError("--lengths: give at least one target length")
    for n in opts.lengths:
        if not MIN_LENGTH <= n <= MAX_LENGTH:
            raise ConfigError(f"--lengths: each length must be in [{MIN_LENGTH}, {MAX_LENGTH}] tokens, got {n}")
    if opts.qa_per_sample < 1:
        raise ConfigError(f"--qa-per-sample: must be >= 1, got {opts.qa_per_sample}")


MIN_LENGTH = 64
MAX_LENGTH = 1 << 24


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


def synthesize(rows: list[tuple[str, dict[str, Any]]], tokenizer: Any, opts: SynthOptions,
               progress: Any = None) -> Iterator[dict[str, Any]]:
    """Yield one long SFT sample per (row, target length); `rows` are (where, row) pairs."""
    validate_options(opts)
    rng = np.random.default_rng(opts.seed)
    docs = []
    for where, row in rows:
        for f in (opts.document_field, opts.summary_field):
            if not isinstance(row.get(f), str) or not row[f].strip():
                raise InputError(f"{where}: field '{f}' must be a non-empty string")
        sents = split_sentences(row[opts.document_field])
        docs.append((where, row, sents, sentence_tokens(tokenizer, sents), _qa(row, opts, where)))
    all_tokens = int(sum(int(d[3].sum()) for d in docs))
    for k, (where, row, sents, counts, qa) in enumerate(docs):
        summary = row[opts.summary_field].strip()
        s_tok = len(tokenizer(summary, add_special_tokens=False)["input_ids"])
        if s_tok >= min(opts.lengths):
            raise InputError(f"{where}: field '{opts.summary_field}' is {s_tok} tokens, not shorter than the target "
                             f"length {min(opts.lengths)}; use larger --lengths or a shorter summary")
        for target in opts.lengths:
            budget = max(0, target - s_tok - 4)  # room for the "\n\n" joins around the summary
            # A random window of whole sentences that fits the budget (the whole document when it fits).
            if counts.sum() <= budget:
                lo, hi = 0, len(sents)
            else:
                csum = np.concatenate([[0], np.cumsum(counts)])
                # starts from which a full budget of text follows (a start near the end made a short sample)
                starts = np.flatnonzero(csum[:-1] + budget <= csum[-1])
                lo = int(rng.choice(starts)) if len(starts) else 0
                hi = int(np.searchsorted(csum, csum[lo] + budget, "right") - 1)
            window = sents[lo:hi]
            used = int(counts[lo:hi].sum())
            at = int(rng.integers(0, len(window) + 1))  # any sentence boundary, both ends included
            body = "".join(window[:at]).rstrip()
            tail = "".join(window[at:]).lstrip()
            parts = [p for p in (body, summary, tail) if p]
            context = "\n\n".join(parts)
            filled = 0
            if opts.fill and used + s_tok < target and len(docs) > 1:
                others = [j for j in rng.permutation(len(docs)) if j != k]
                extra = []
                room = target - used - s_tok
                for j in others:
                    osents, ocounts = docs[j][2], docs[j][3]
                    take = int(np.searchsorted(np.cumsum(ocounts), room, "right"))
                    if take == 0:
                        continue
                    extra.append("".join(osents[:take]).strip())
                    room -= int(ocounts[:take].sum())
                    filled += 1
                    if room <= 0:
                        break
                # Distractors go around the source so the summary's position stays random overall.
                if extra:
                    cut = int(rng.integers(0, len(extra) + 1))
                    context = "\n\n".join(extra[:cut] + [context] + extra[cut:])
            picks = rng.choice(len(qa), size=min(opts.qa_per_sample, len(qa)), replace=False)
            messages = []
            for p in picks:
                messages += [{"role": "user", "content": qa[p][0]}, {"role": "assistant", "content": qa[p][1]}]
            n_ctx = len(tokenizer(context, add_special_tokens=False)["input_ids"])
            meta = {"source": where, "target_length": target, "context_tokens": n_ctx,
                    "summary_sentence": lo + at, "window": [lo, hi], "distractor_docs": filled}
            why = short_reason(n_ctx, target, opts, len(docs), all_tokens + s_tok)
            if why:
                meta["short_reason"] = why
            if progress is not None:
                progress.advance()
            yield {"id": f"{row.get('id', k)}-{target}", "context": context, "messages": messages, "meta": meta}
