"""Human-readable view of a packed sample: chunk text, structure tokens and loss masks made visible."""

from __future__ import annotations

from typing import Any

import numpy as np

from longkit.data.pack import IGNORE, SEG_CHUNK, SEG_END, SEG_KEY, SEG_NCHUNKS, SEG_START

LEGEND = (
    "legend: «doc K c/n» chunk text (loss on) · [[...]] structure, loss masked · "
    "{{...}} structure, loss on (backtracing ids, separators) · key = document stream key"
)


def _short(text: str, width: int) -> str:
    text = text.replace("\n", "⏎")
    if len(text) <= width:
        return text
    half = (width - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def render_sample(sample: dict[str, Any], tokenizer: Any, width: int = 160, max_parts: int = 60) -> str:
    """Render a sample as text: one line per run of chunk text or structure tokens."""
    ids = np.asarray(sample["input_ids"])
    labels = np.asarray(sample["labels"])
    segs = np.asarray(sample["segments"])
    n = len(ids)
    owner = np.full(n, -1, dtype=np.int64)
    for i, r in enumerate(segs):
        owner[r[SEG_START] : r[SEG_END]] = i
    kind = np.where(owner >= 0, 0, np.where(labels == IGNORE, 1, 2))  # 0 text, 1 masked struct, 2 learned struct
    kind[owner >= 0] = 0
    change = np.flatnonzero((np.diff(kind) != 0) | (np.diff(owner) != 0)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [n]))
    num_pad = int(sample.get("num_pad", 0))
    lines = [
        LEGEND,
        f"seq_len={n} text_tokens={int((owner >= 0).sum())} masked={int((labels == IGNORE).sum())} "
        f"pad={num_pad} chunks={len(segs)} segments(cu_seqlens)={len(sample['cu_seqlens']) - 1}",
    ]
    shown = 0
    for a, b in zip(starts.tolist(), ends.tolist()):
        if num_pad and a >= n - num_pad:
            lines.append(f"[[pad x{n - a}]]")
            break
        if shown >= max_parts:
            lines.append(f"... ({len(starts) - shown} more runs)")
            break
        shown += 1
        toks = ids[a:b].tolist()
        if kind[a] == 0:
            r = segs[owner[a]]
            head = f"«doc {int(r[SEG_KEY])} {int(r[SEG_CHUNK]) + 1}/{int(r[SEG_NCHUNKS])}» ({b - a} tok) "
            lines.append(head + _short(tokenizer.decode(toks), width))
        else:
            text = "".join(tokenizer.convert_ids_to_tokens(toks)) if b - a <= 64 else tokenizer.decode(toks)
            text = _short(text.replace("Ġ", " ").replace("Ċ", "⏎"), width)
            lines.append(f"[[{text}]]" if kind[a] == 1 else f"{{{{{text}}}}}")
    return "\n".join(lines)
