"""Untie the Knots (UtK): chunk documents, tie chunks with knot tokens and labels, shuffle, backtrace.

Layout of a document split into n chunks (chunk j in original order, labels L_j random strings, unique
within the sequence: from a prefix-free pool, or drawn fresh per chunk as in the authors' code):

    <CL> L_j </CL> [head knot, j > 0] text_j [tail knot, j < n-1]

and after the chunk of the document that comes last in the stream:

    <S> L_1 [sep] L_2 ... L_n </S>            (the backtracing target; labels in original order)

The document separator follows the target (longkit) or, as in the authors' code where the EOD is the
document's last token, the text of chunk n-1 (`text EOD <S> ... </S>` when that chunk comes last).
Loss mask (labels = -100): the `<CL> L </CL>` span, the knots and `<S>` (and, in the authors'
preset, the position after a knot, after `</CL>`, after `</S>` and after the separator). The labels
inside `<S>...</S>` and `</S>` are learned. Documents not chosen for splitting (probability 1 - p)
stay one chunk with no structure.

`untie(sample)` parses the token stream: it reads each chunk's label, reads the backtracing target
and orders the chunks by it, checks every knot, and returns the original documents exactly.
The authors' file fills the target of a sequence's last document from a wrong index (its
`sample_to_part_indices_map` gets the part number, not the stream position, of the part kept last);
longkit writes the target of every document from its own chunks' labels, which untie() checks.
"""

from __future__ import annotations

import bisect
import string
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from longkit.data.plan import (
    LEARN,
    LEARN_MASK_NEXT,
    MASK,
    MASK_NEXT,
    SEG_CHUNK,
    SEG_DOC,
    SEG_END,
    SEG_KEY,
    SEG_LAST,
    SEG_NCHUNKS,
    SEG_OFFSET,
    SEG_START,
    ChunkPlan,
    Part,
    Transform,
)
from longkit.errors import ConfigError

DEFAULT_CHUNK_DIST = {2: 0.5, 3: 0.4, 4: 0.1}


@dataclass
class UtKConfig:
    """Every switch of the augmentation; defaults follow the paper, `utk_preset('authors')` the released code."""

    probability: float = 0.8  # chance that a document is split
    # per-sequence choice among chunk-count distributions: [(weight, {n: prob})]
    chunk_dists: list[tuple[float, dict[int, float]]] = field(default_factory=lambda: [(1.0, dict(DEFAULT_CHUNK_DIST))])
    split: str = "random"  # random: uniformly random cut points; even: len // n * k (authors' default)
    preserve_order: bool = True  # chunks of one document keep their relative order after shuffling
    chunk_labels: bool = True
    backtrace: bool = True
    label_length: int = 6
    label_chars: str = string.ascii_letters + string.digits
    label_pool: int = 8192
    label_seed: int = 1234
    cl_open: str = "<CL>"
    cl_close: str = "</CL>"
    head_knots: list[str] = field(default_factory=lambda: ["<HK>"])  # one token, or one per chunk index >= 1
    tail_knots: list[str] = field(default_factory=lambda: ["<TK>"])  # one token, or one per chunk index < n-1
    bt_open: str = "<S>"
    bt_close: str = "</S>"
    bt_sep: str | None = None
    mask_after_knots: bool = False
    mask_after_bt_close: bool = False
    # switches for the authors' released code (utk_preset('authors')); the defaults are longkit's own
    label_draw: str = "pool"  # pool: from a fixed prefix-free pool; fresh: a new random string per chunk
    short_docs: str = "fewer"  # fewer: a piece shorter than n gets one chunk per token; whole: not split
    separator_after: str = "target"  # target: `... </S> SEP`; text: `text SEP <S> ... </S>` (EOD inside the doc)
    mask_after_label: bool = False  # also mask the position after `</CL>` (first text token of chunk 0)
    mask_after_separator: bool = False  # also mask the position after the separator (Megatron eod_mask_loss)
    keep_tail_last: bool = False  # the sequence's last chunk of its last piece stays at the end of the stream

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ConfigError(f"utk.probability must be in [0, 1], got {self.probability}")
        if self.split not in ("random", "even"):
            raise ConfigError(f"utk.split must be random or even, got '{self.split}'")
        for name, allowed in (
            ("label_draw", ("pool", "fresh")),
            ("short_docs", ("fewer", "whole")),
            ("separator_after", ("target", "text")),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"utk.{name} must be {' or '.join(allowed)}, got '{getattr(self, name)}'")
        if self.label_length < 1:
            raise ConfigError(f"utk.label_length must be >= 1, got {self.label_length}")
        if self.backtrace and not self.chunk_labels:
            raise ConfigError("utk.backtrace needs utk.chunk_labels (the target lists the chunk labels)")
        dists = []
        item: Any  # from YAML or to_dict(): {weight, counts} mappings as well as (weight, dist) pairs
        for item in self.chunk_dists:
            w, dist = (item["weight"], item["counts"]) if isinstance(item, dict) and "counts" in item else item
            dist = {int(k): float(v) for k, v in dict(dist).items()}
            if not dist or min(dist) < 1 or any(v < 0 for v in dist.values()) or sum(dist.values()) <= 0:
                raise ConfigError(f"utk.chunk_dists: bad distribution {dist} (counts >= 1, probabilities >= 0)")
            dists.append((float(w), dist))
        if not dists or sum(w for w, _ in dists) <= 0:
            raise ConfigError("utk.chunk_dists must hold at least one distribution with positive weight")
        self.chunk_dists = dists
        need = self.max_chunks - 1
        for name, knots in (("head_knots", self.head_knots), ("tail_knots", self.tail_knots)):
            if not knots or (len(knots) != 1 and len(knots) < need):
                raise ConfigError(f"utk.{name}: give one token or one per chunk boundary ({need}), got {len(knots)}")

    @property
    def max_chunks(self) -> int:
        """Largest chunk count any distribution can draw."""
        return max(max(n for n, p in d.items() if p > 0) for _, d in self.chunk_dists)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for YAML/JSON reports)."""
        d = asdict(self)
        d["chunk_dists"] = [{"weight": w, "counts": dict(c)} for w, c in self.chunk_dists]
        return d


# The authors' released implementation, which the 'authors' preset follows (Megatron-style dataset):
AUTHORS_SOURCE = ("rgtjf/Untie-the-Knots", "gpt_dataset_utk.py", "69acc161a72912008738d41675354a0f87e0456e")


def utk_preset(name: str = "paper") -> UtKConfig:
    """Named configurations: 'paper' (longkit's defaults) or 'authors' (the released gpt_dataset_utk.py)."""
    if name == "paper":
        return UtKConfig()
    if name == "authors":
        # Each switch is pinned to gpt_dataset_utk.py at AUTHORS_SOURCE by tests/data/test_data_utk_authors.py.
        return UtKConfig(
            # GPTDatasetUtK.__getitem__ draws one chunk_probs row per sample (sequence) from chunk_probs_cfg;
            # its docstring example ([0.7, 0.3], [[1, 0, 0], [0, 0, 1.0]]): no split, or 3 chunks
            probability=1.0,
            chunk_dists=[(0.7, {1: 1.0}), (0.3, {3: 1.0})],
            split="even",  # use_length_sampler=False: len(sample) // n_chunks * chunk_id
            short_docs="whole",  # `elif len(sample) < n_chunks: split_positions = []`
            preserve_order=False,  # preserve_partial_order: bool = False
            keep_tail_last=True,  # shuffle_preserve_partial_order_multi_hop keeps the last part last
            label_draw="fresh",  # generate_random_string(6, rng) per chunk, ascii letters + digits
            cl_open="<D>",
            cl_close="</D>",  # sort_tokens <D> </D> <S> <s> </S>
            head_knots=[f"<knot_{j}_head>" for j in range(1, 3)],  # chunk_tokens[2*chunk_id - 1]
            tail_knots=[f"<knot_{j}_tail>" for j in range(0, 2)],  # chunk_tokens[2*chunk_id]
            bt_open="<S>",
            bt_close="</S>",
            bt_sep="<s>",
            separator_after="text",  # EOD is the last token of the document's last chunk: `text EOD <S> ... </S>`
            mask_after_knots=True,  # loss_mask[tokens == chunk_token] and [labels == chunk_token]
            mask_after_label=True,  # loss_mask[start: end + 1] over each <D> ... </D> span of tokens
            mask_after_bt_close=True,  # loss_mask[tokens == S_end_token]
            mask_after_separator=True,  # Megatron eod_mask_loss: loss_mask[tokens == eod]
        )
    raise ConfigError(f"unknown UtK preset '{name}' (paper, authors)")


# switches that change what is trained (token strings, pool size and seed only rename or reseed)
_BEHAVIOUR = (
    "probability",
    "chunk_dists",
    "split",
    "short_docs",
    "preserve_order",
    "keep_tail_last",
    "chunk_labels",
    "backtrace",
    "label_draw",
    "label_length",
    "label_chars",
    "separator_after",
    "mask_after_knots",
    "mask_after_label",
    "mask_after_bt_close",
    "mask_after_separator",
)


def authors_differences(config: UtKConfig | dict[str, Any], overflow: str = "truncate") -> list[str]:
    """Names of the switches (and `overflow`) where a configuration differs from the authors' released code."""
    import json

    def norm(d: dict[str, Any]) -> dict[str, Any]:  # as written to stats.json (chunk counts as strings)
        plain: dict[str, Any] = json.loads(json.dumps(d))
        return plain

    have = norm(config.to_dict() if isinstance(config, UtKConfig) else dict(config))
    want = norm(utk_preset("authors").to_dict())
    out = [k for k in _BEHAVIOUR if have.get(k) != want[k]]
    if have.get("bt_sep") is None:  # their target separates labels with <s>
        out.append("bt_sep")
    if overflow != "truncate":
        out.append("overflow")
    return out


def fidelity_note(config: UtKConfig | dict[str, Any], overflow: str = "truncate") -> str:
    """One line for report headers: whether this UtK run follows the authors' code, and where it differs."""
    repo, path, commit = AUTHORS_SOURCE
    src = f"{repo}/{path}@{commit[:7]}"
    diff = authors_differences(config, overflow)
    if not diff:
        return f"UtK follows the authors' released code ({src})."
    return (
        f"UtK differs from the authors' released code ({src}) in: {', '.join(diff)} "
        "(longkit's own settings; `utk: {preset: authors}` with `overflow: truncate` follows theirs)."
    )


def utk_special_tokens(config: UtKConfig) -> list[str]:
    """The special tokens this configuration needs in the tokenizer, in a stable order."""
    toks = [config.cl_open, config.cl_close] if config.chunk_labels else []
    toks += list(config.head_knots) + list(config.tail_knots)
    if config.backtrace:
        toks += [config.bt_open, config.bt_close] + ([config.bt_sep] if config.bt_sep else [])
    return list(dict.fromkeys(toks))


def add_utk_special_tokens(tokenizer: Any, config: UtKConfig) -> int:
    """Add the missing UtK special tokens to a HF tokenizer; returns how many were added (resize by that)."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in utk_special_tokens(config) if t not in vocab]
    if not missing:
        return 0
    return int(tokenizer.add_tokens(missing, special_tokens=True))


def _ids(vocab: dict[str, int], names: list[str]) -> list[int]:
    missing = [n for n in names if n not in vocab]
    if missing:
        raise ConfigError(
            f"tokenizer lacks the UtK special tokens {missing}; call "
            "longkit.data.utk.add_utk_special_tokens(tokenizer, config) and resize the model embeddings"
        )
    return [int(vocab[n]) for n in names]


def encode_text(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Tokenize texts as ordinary text (no BOS/EOS, special-token strings inside are split as text)."""
    try:
        ids: list[list[int]] = tokenizer(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    except TypeError:
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return ids


def _label_encoder(tokenizer: Any) -> Any:
    """Batch encoder for label strings (plain alphanumerics: no special tokens to handle)."""
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch"):
        return lambda strings: [e.ids for e in backend.encode_batch(strings, add_special_tokens=False)]
    return lambda strings: encode_text(tokenizer, strings)


def build_label_pool(tokenizer: Any, config: UtKConfig) -> list[np.ndarray]:
    """Distinct random labels, tokenized, filtered so no label's tokens are a prefix of another's."""
    rng = np.random.default_rng(config.label_seed)
    chars = np.array(list(config.label_chars), dtype="<U1")
    draws = chars[rng.integers(0, len(chars), size=(config.label_pool * 2, config.label_length))]
    strings = sorted(set(np.ascontiguousarray(draws).view(f"<U{config.label_length}").ravel().tolist()))
    ids = _label_encoder(tokenizer)(strings)
    seqs = sorted({tuple(x) for x in ids if len(x) > 0})
    keep: list[tuple[int, ...]] = []
    for s in seqs:  # sorted: a prefix sorts right before the sequences it prefixes
        if keep and s[: len(keep[-1])] == keep[-1]:
            continue
        keep.append(s)
    order = np.random.default_rng(config.label_seed + 1).permutation(len(keep))[: config.label_pool]
    return [np.asarray(keep[i], dtype=np.int32) for i in order]


class UtKTransform(Transform):
    """The UtK augmentation as a packing transform (see module docstring for the layout)."""

    name = "utk"
    has_parts = True
    cross_chunk = True

    def __init__(self, tokenizer: Any, config: UtKConfig | None = None):
        self.config = cfg = config or UtKConfig()
        vocab = tokenizer.get_vocab()
        self.cl_open = np.asarray(_ids(vocab, [cfg.cl_open]) if cfg.chunk_labels else [], np.int32)
        self.cl_close = np.asarray(_ids(vocab, [cfg.cl_close]) if cfg.chunk_labels else [], np.int32)
        self.heads = [np.asarray([i], np.int32) for i in _ids(vocab, list(cfg.head_knots))]
        self.tails = [np.asarray([i], np.int32) for i in _ids(vocab, list(cfg.tail_knots))]
        if cfg.backtrace:
            self.bt_open = np.asarray(_ids(vocab, [cfg.bt_open]), np.int32)
            self.bt_close = np.asarray(_ids(vocab, [cfg.bt_close]), np.int32)
            self.bt_sep = np.asarray(_ids(vocab, [cfg.bt_sep]) if cfg.bt_sep else [], np.int32)
        self.fresh = cfg.chunk_labels and cfg.label_draw == "fresh"
        self.pool = build_label_pool(tokenizer, cfg) if cfg.chunk_labels and not self.fresh else []
        self.wrapped = [np.concatenate((self.cl_open, x, self.cl_close)) for x in self.pool]
        self._encode = _label_encoder(tokenizer) if self.fresh else None
        self._chars = np.array(list(cfg.label_chars), dtype="<U1")
        self.knot_kind = MASK_NEXT if cfg.mask_after_knots else MASK
        self.label_kind = MASK_NEXT if cfg.mask_after_label else MASK
        self.close_kind = LEARN_MASK_NEXT if cfg.mask_after_bt_close else LEARN
        self.sep_kind = LEARN_MASK_NEXT if cfg.mask_after_separator else LEARN
        self.sep_after_text = cfg.separator_after == "text"
        w = np.array([w for w, _ in cfg.chunk_dists], dtype=np.float64)
        self.dist_weights = w / w.sum()
        self.dists = []
        for _, d in cfg.chunk_dists:
            ns = sorted(n for n in d if d[n] > 0)
            ps = np.array([d[n] for n in ns], dtype=np.float64)
            self.dists.append((ns, np.cumsum(ps / ps.sum()).tolist()))
        self._dist = self.dists[0]
        self._reset_labels()
        self.sep_len = len(self.bt_sep) if cfg.backtrace else 0

    def _reset_labels(self) -> None:
        self._used: set[int] = set()  # pool indices drawn in this sequence
        self._labels: list[np.ndarray] = []  # fresh labels of this sequence (label_draw: fresh)
        self._wrapped: list[np.ndarray] = []
        self._taken: set[tuple[int, ...]] = set()
        self._prefixes: set[tuple[int, ...]] = set()

    def begin_sequence(self, rng: np.random.Generator) -> None:
        """Pick this sequence's chunk-count distribution and forget the labels used so far."""
        k = int(rng.choice(len(self.dists), p=self.dist_weights)) if len(self.dists) > 1 else 0
        self._dist = self.dists[k]
        self._reset_labels()

    def label(self, k: int) -> np.ndarray:
        """Tokens of label k of the current sequence's plans."""
        return self._labels[k] if self.fresh else self.pool[k]

    def _wrapped_label(self, k: int) -> np.ndarray:
        return self._wrapped[k] if self.fresh else self.wrapped[k]

    def _draw_labels(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n labels not yet used in this sequence: from the pool, or fresh random strings."""
        if self.fresh:
            return self._draw_fresh(n, rng)
        if len(self._used) + n > len(self.pool):
            raise ConfigError(
                f"utk.label_pool ({len(self.pool)} usable labels) is too small for the chunks of "
                "one sequence; raise label_pool or label_length"
            )
        out: list[int] = []
        while len(out) < n:
            for x in rng.integers(0, len(self.pool), size=n - len(out)).tolist():
                if x not in self._used:
                    self._used.add(x)
                    out.append(x)
        return np.asarray(out, dtype=np.int64)

    def _draw_fresh(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n new random strings, tokenized, as the authors' generate_random_string(6, rng) per chunk.

        A draw whose tokens equal, prefix or extend a label already used in this sequence is drawn
        again (with 62^6 strings that is rare), so that untie() can read every label back exactly.
        """
        cfg = self.config
        encode = self._encode
        assert encode is not None  # set whenever labels are drawn fresh, which is when this is called
        out: list[int] = []
        for _ in range(1000):
            draws = self._chars[rng.integers(0, len(self._chars), size=(n - len(out), cfg.label_length))]
            strings = np.ascontiguousarray(draws).view(f"<U{cfg.label_length}").ravel().tolist()
            for ids in encode(strings):
                t = tuple(ids)
                if (
                    not t
                    or t in self._taken
                    or t in self._prefixes
                    or any(t[:i] in self._taken for i in range(1, len(t)))
                ):
                    continue
                self._taken.add(t)
                self._prefixes.update(t[:i] for i in range(1, len(t)))
                lab = np.asarray(t, dtype=np.int32)
                self._labels.append(lab)
                self._wrapped.append(np.concatenate((self.cl_open, lab, self.cl_close)))
                out.append(len(self._labels) - 1)
            if len(out) == n:
                return np.asarray(out, dtype=np.int64)
        raise ConfigError(
            "utk.label_length: cannot draw distinct chunk labels for one sequence; "
            "raise label_length or use more label_chars"
        )

    def plan(self, length: int, rng: np.random.Generator) -> ChunkPlan:
        """Draw whether and into how many chunks a piece is split, and its chunk labels."""
        cfg = self.config
        if length < 2 or (cfg.probability < 1.0 and rng.random() >= cfg.probability):
            return ChunkPlan(1)
        ns, cum = self._dist
        n = ns[0] if len(ns) == 1 else ns[min(bisect.bisect_right(cum, rng.random()), len(ns) - 1)]
        if n > length:  # fewer tokens than chunks
            n = 1 if cfg.short_docs == "whole" else length
        if n <= 1:
            return ChunkPlan(1)
        overhead = 2 * (n - 1)  # head + tail knots
        labels = None
        if cfg.chunk_labels:
            labels = self._draw_labels(n, rng)
            lab = sum(len(self.label(i)) for i in labels.tolist())
            overhead += n * (len(self.cl_open) + len(self.cl_close)) + lab
            if cfg.backtrace:
                overhead += 2 + lab + (n - 1) * self.sep_len
        return ChunkPlan(n, labels, overhead)

    def split_points(self, lengths: np.ndarray, ns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Cut points: uniformly random (paper) or even, len // n * k (authors' default)."""
        if self.config.split == "even":
            k = ns - 1
            piece = np.repeat(np.arange(len(ns)), k)
            first = np.concatenate(([0], np.cumsum(k)[:-1]))
            j = np.arange(len(piece)) - first[piece] + 1
            cuts: np.ndarray = (lengths[piece] // ns[piece]) * j
            return cuts
        return super().split_points(lengths, ns, rng)

    def order(self, n_per_piece: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Shuffle all chunks of the sequence, optionally keeping each document's chunk order.

        With keep_tail_last (authors) the last chunk of the last piece stays at the end and the
        others are shuffled before it.
        """
        total = int(n_per_piece.sum())
        free = total - 1 if self.config.keep_tail_last and total else total
        pos = rng.permutation(free)
        if self.config.preserve_order:
            piece_of = np.repeat(np.arange(len(n_per_piece)), n_per_piece)[:free]
            pos = pos[np.lexsort((pos, piece_of))]
        if free < total:
            pos = np.append(pos, free)
        return np.argsort(pos, kind="stable")

    def _head(self, j: int) -> np.ndarray:
        return self.heads[0] if len(self.heads) == 1 else self.heads[j - 1]

    def _tail(self, j: int) -> np.ndarray:
        return self.tails[0] if len(self.tails) == 1 else self.tails[j]

    def parts(self, plans: list[ChunkPlan], piece: int, chunk: int) -> tuple[list[Part], list[Part]]:
        """`<CL> label </CL> [head]` before chunk text, `[tail]` after it."""
        plan = plans[piece]
        if plan.n == 1:
            return [], []
        before: list[Part] = []
        if plan.labels is not None:
            before.append((self._wrapped_label(int(plan.labels[chunk])), self.label_kind))
        if chunk > 0:
            before.append((self._head(chunk), self.knot_kind))
        after = [(self._tail(chunk), self.knot_kind)] if chunk < plan.n - 1 else []
        return before, after

    def trailer(self, plan: ChunkPlan) -> list[Part]:
        """`<S> L_1 [sep] ... L_n </S>` after the document's last chunk in the stream."""
        if plan.n == 1 or not self.config.backtrace:
            return []
        labels = plan.labels
        assert labels is not None  # backtrace needs chunk_labels, so every split piece has its labels
        body: list[np.ndarray] = []
        for i, k in enumerate(labels.tolist()):
            if i and self.sep_len:
                body.append(self.bt_sep)
            body.append(self.label(k))
        return [(self.bt_open, MASK), (np.concatenate(body), LEARN), (self.bt_close, self.close_kind)]

    def structure(self) -> dict[str, Any]:
        """Token ids untie() needs."""
        cfg = self.config
        return {
            "transform": "utk",
            "cl_open": self.cl_open.tolist(),
            "cl_close": self.cl_close.tolist(),
            "heads": [int(h[0]) for h in self.heads],
            "tails": [int(t[0]) for t in self.tails],
            "bt_open": self.bt_open.tolist() if cfg.backtrace else [],
            "bt_close": self.bt_close.tolist() if cfg.backtrace else [],
            "bt_sep": self.bt_sep.tolist() if cfg.backtrace else [],
        }


def _parse_labels(body: np.ndarray, labels: list[np.ndarray], sep: list[int]) -> list[int]:
    """Split a backtracing body into label indices (labels are prefix-free, so greedy is exact)."""
    out: list[int] = []
    p = 0
    body_l = body.tolist()
    cand = [x.tolist() for x in labels]
    while p < len(body_l):
        if out and sep:
            if body_l[p : p + len(sep)] != sep:
                raise ValueError(f"backtracing target: expected separator at {p}")
            p += len(sep)
        for i, lab in enumerate(cand):
            if body_l[p : p + len(lab)] == lab:
                out.append(i)
                p += len(lab)
                break
        else:
            raise ValueError(f"backtracing target: no chunk label matches at token {p}")
    return out


def untie_utk(d: dict[str, Any]) -> dict[int, tuple[int, int, np.ndarray, bool]]:
    """Untie a UtK sample from its tokens: {key: (doc_id, offset, original tokens, ends_document)}."""
    ids = np.asarray(d["input_ids"])
    st = d["structure"]
    segs = np.asarray(d["segments"])
    heads, tails = st["heads"], st["tails"]
    head_set, tail_set = set(heads), set(tails)
    cl_open, cl_close = st["cl_open"], st["cl_close"]
    out: dict[int, tuple[int, int, np.ndarray, bool]] = {}
    keys = [] if not len(segs) else list(dict.fromkeys(segs[:, SEG_KEY].tolist()))
    for key in keys:
        rows = segs[segs[:, SEG_KEY] == key]  # stream order
        n = int(rows[0, SEG_NCHUNKS])
        if n == 1:
            r = rows[0]
            out[key] = (int(r[SEG_DOC]), int(r[SEG_OFFSET]), ids[r[SEG_START] : r[SEG_END]].copy(), bool(r[SEG_LAST]))
            continue
        if len(rows) != n:
            raise ValueError(f"document {key}: {len(rows)} chunks found, {n} expected")
        has_head, has_tail, labels = [], [], []
        for r in rows:
            p = int(r[SEG_START]) - 1
            has_head.append(p >= 0 and int(ids[p]) in head_set)
            if has_head[-1]:
                p -= 1
            if cl_open:
                if int(ids[p]) != cl_close[0]:
                    raise ValueError(f"document {key}: no </CL> before chunk at {r[SEG_START]}")
                q = p - 1
                while q >= 0 and int(ids[q]) != cl_open[0]:
                    q -= 1
                if q < 0:
                    raise ValueError(f"document {key}: unterminated chunk label before {r[SEG_START]}")
                labels.append(ids[q + 1 : p])
            e = int(r[SEG_END])
            has_tail.append(e < len(ids) and int(ids[e]) in tail_set)
        if st["bt_open"]:
            last = int(np.argmax(rows[:, SEG_START]))
            e = int(rows[last, SEG_END]) + int(has_tail[last])
            doc_sep = st.get("separator") or []
            if doc_sep and not has_tail[last] and rows[last, SEG_LAST]:  # `text EOD <S> ...` (authors)
                if ids[e : e + len(doc_sep)].tolist() != doc_sep:
                    raise ValueError(f"document {key}: separator missing after its last chunk at {e}")
                e += len(doc_sep)
            if int(ids[e]) != st["bt_open"][0]:
                raise ValueError(f"document {key}: backtracing target <S> missing at {e}")
            close = e + 1
            while close < len(ids) and int(ids[close]) != st["bt_close"][0]:
                close += 1
            order = _parse_labels(ids[e + 1 : close], labels, st["bt_sep"])
            if sorted(order) != list(range(n)):
                raise ValueError(f"document {key}: backtracing target names chunks {order}")
        else:
            order = np.argsort(rows[:, SEG_CHUNK], kind="stable").tolist()
        for j, i in enumerate(order):  # chunk j of the original document is rows[i]
            want_head = heads[0] if len(heads) == 1 else (heads[j - 1] if j > 0 else None)
            want_tail = tails[0] if len(tails) == 1 else (tails[j] if j < n - 1 else None)
            s, e = int(rows[i, SEG_START]), int(rows[i, SEG_END])
            if has_head[i] != (j > 0) or (j > 0 and int(ids[s - 1]) != want_head):
                raise ValueError(f"document {key}: chunk {j} has a wrong head knot")
            if has_tail[i] != (j < n - 1) or (j < n - 1 and int(ids[e]) != want_tail):
                raise ValueError(f"document {key}: chunk {j} has a wrong tail knot")
        first = rows[order[0]]
        toks = np.concatenate([ids[rows[i, SEG_START] : rows[i, SEG_END]] for i in order])
        out[key] = (int(first[SEG_DOC]), int(first[SEG_OFFSET]), toks, bool(first[SEG_LAST]))
    return out
