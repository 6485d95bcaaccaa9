"""Per-source length upsampling (Fu et al. 2024, used by ChatQA 2) and token-mix reports.

Each source s gets a token budget T * share_s (share_s = its share of the original tokens unless a
mix is given). Its documents are visited in a seeded random order; a document shorter than
`threshold` tokens is kept with probability `keep_short`, a longer one always; the source stops when
its budget is full. If one pass over a source does not fill its budget, further passes (fresh draws)
repeat documents, so long documents are upsampled while every source keeps its share of tokens.
Lengths are real token counts from the tokenized corpus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longkit.errors import ConfigError

DEFAULT_BUCKETS = (0, 1024, 4096, 16384, 65536)


@dataclass
class UpsampleConfig:
    """Fu et al.'s rule; `enabled=False` keeps every document once."""

    enabled: bool = True
    threshold: int = 4096
    keep_short: float = 0.1
    total_tokens: int | None = None  # default: the corpus's token count
    mix: dict[str, float] | None = None  # source -> share; default: the original shares
    max_passes: int = 1000
    buckets: list[int] = field(default_factory=lambda: list(DEFAULT_BUCKETS))

    def __post_init__(self) -> None:
        if not 0.0 <= self.keep_short <= 1.0:
            raise ConfigError(f"upsample.keep_short must be in [0, 1], got {self.keep_short}")
        if self.threshold < 0:
            raise ConfigError(f"upsample.threshold must be >= 0, got {self.threshold}")


def upsample(
    lengths: np.ndarray, doc_source: np.ndarray, source_names: list[str], config: UpsampleConfig, seed: int = 0
) -> np.ndarray:
    """Indices of the selected documents (repeats allowed), in a seeded random global order."""
    lengths = np.asarray(lengths, dtype=np.int64)
    doc_source = np.asarray(doc_source, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if not config.enabled:
        return rng.permutation(len(lengths))
    n_src = len(source_names)
    src_tokens = np.bincount(doc_source, weights=lengths, minlength=n_src)
    total_in = float(src_tokens.sum())
    total = float(config.total_tokens) if config.total_tokens else total_in
    if config.mix:
        unknown = set(config.mix) - set(source_names)
        if unknown:
            raise ConfigError(f"upsample.mix names unknown source(s) {sorted(unknown)}; sources: {source_names}")
        w = np.array([float(config.mix.get(s, 0.0)) for s in source_names])
        if w.sum() <= 0:
            raise ConfigError("upsample.mix must give a positive share to at least one source")
        shares = w / w.sum()
    else:
        shares = src_tokens / total_in if total_in else np.zeros(n_src)
    picked: list[np.ndarray] = []
    for s in range(n_src):
        budget = total * shares[s]
        if budget <= 0:
            continue
        docs = np.flatnonzero((doc_source == s) & (lengths > 0))
        long_mask = lengths[docs] >= config.threshold
        if not long_mask.any() and config.keep_short == 0:
            raise ConfigError(
                f"source '{source_names[s]}': no document reaches {config.threshold} tokens and "
                "keep_short is 0, so its budget can never be filled"
            )
        got = 0.0
        for _ in range(config.max_passes):
            order = rng.permutation(len(docs))
            keep = long_mask[order] | (rng.random(len(docs)) < config.keep_short)
            sel = docs[order[keep]]
            cum = got + np.cumsum(lengths[sel])
            stop = int(np.searchsorted(cum, budget, side="left"))
            if stop < len(sel):
                picked.append(sel[: stop + 1])
                got = float(cum[stop])
                break
            picked.append(sel)
            got = float(cum[-1]) if len(sel) else got
        else:
            raise ConfigError(f"source '{source_names[s]}': budget not filled after {config.max_passes} passes")
    sel = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    return sel[rng.permutation(len(sel))]


def mix_report(
    lengths: np.ndarray,
    doc_source: np.ndarray,
    source_names: list[str],
    selection: np.ndarray | None = None,
    buckets: list[int] | tuple[int, ...] = DEFAULT_BUCKETS,
    threshold: int = 4096,
) -> dict[str, Any]:
    """Tokens and documents per source and length bucket (of `selection`, default all docs once)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    idx = np.arange(len(lengths)) if selection is None else np.asarray(selection, dtype=np.int64)
    ln = lengths[idx]
    src = np.asarray(doc_source)[idx]
    edges = list(buckets)
    labels = [f"[{_k(a)},{_k(b)})" for a, b in zip(edges, edges[1:])] + [f"[{_k(edges[-1])},inf)"]
    b = np.searchsorted(np.asarray(edges[1:]), ln, side="right")
    total = int(ln.sum())
    out: dict[str, Any] = {"tokens": total, "docs": int(len(idx)), "buckets": labels, "sources": {}}
    for s, name in enumerate(source_names):
        m = src == s
        tok = np.bincount(b[m], weights=ln[m], minlength=len(labels)).astype(np.int64)
        cnt = np.bincount(b[m], minlength=len(labels)).astype(np.int64)
        st = int(tok.sum())
        out["sources"][name] = {
            "tokens": st,
            "docs": int(m.sum()),
            "share": st / total if total else 0.0,
            "tokens_by_bucket": dict(zip(labels, tok.tolist())),
            "docs_by_bucket": dict(zip(labels, cnt.tolist())),
            "long_share": float(ln[m & (ln >= threshold)].sum() / st) if st else 0.0,
        }
    return out


def _k(n: int) -> str:
    return f"{n // 1024}K" if n and n % 1024 == 0 else str(n)
