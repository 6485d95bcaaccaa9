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


def synthesize(rows: list[tuple[str, dict[str, Any]]], tokenizer: Any, opts: SynthOptions) -> Iterator[dict[str, Any]]:
    """Yield one long SFT sample per (row, target length); `rows` are (where, row) pairs."""
    rng = np.random.default_rng(opts.seed)
    docs = []
    for where, row in rows:
        for f in (opts.document_field, opts.summary_field):
            if not isinstance(row.get(f), str) or not row[f].strip():
                raise InputError(f"{where}: field '{f}' must be a non-empty string")
        sents = split_sentences(row[opts.document_field])
        counts = [len(x) for x in tokenizer(sents, add_special_tokens=False)["input_ids"]] if sents else []
        docs.append((where, row, sents, np.asarray(counts, dtype=np.int64), _qa(row, opts, where)))
    for k, (where, row, sents, counts, qa) in enumerate(docs):
        summary = row[opts.summary_field].strip()
        s_tok = len(tokenizer(summary, add_special_tokens=False)["input_ids"])
        for target in opts.lengths:
            budget = max(0, target - s_tok)
            # A random window of whole sentences that fits the budget (the whole document when it fits).
            if counts.sum() <= budget:
                lo, hi = 0, len(sents)
            else:
                csum = np.concatenate([[0], np.cumsum(counts)])
                starts = [i for i in range(len(sents)) if csum[np.searchsorted(csum, csum[i] + budget, "right") - 1] > csum[i]]
                lo = int(rng.choice(starts)) if starts else 0
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
            yield {"id": f"{row.get('id', k)}-{target}", "context": context, "messages": messages,
                   "meta": {"source": where, "target_length": target, "context_tokens": n_ctx,
                            "summary_sentence": lo + at, "window": [lo, hi], "distractor_docs": filled}}
