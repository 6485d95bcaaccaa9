"""Packing documents into fixed-length training sequences, shared by the plain, CIP and UtK transforms.

A *transform* decides, per document piece, how many chunks it is cut into, which structure tokens
surround each chunk and in which order the chunks of one sequence are emitted. The packer here owns
everything else: filling sequences of `seq_len` tokens from a document stream, the document
separator, splitting or carrying over a document that does not fit, padding the last sequence,
labels (-100 on masked structure and padding), position ids and `cu_seqlens`.

Token accounting rule: every token of every non-empty document appears exactly once in the packed
output (as chunk text), except with `overflow="truncate"` (the authors' UtK behaviour) where the
cut-off tail of a document is dropped and counted in `Packer.stats["tokens_dropped"]`.
Empty documents carry no tokens; they are skipped and counted in `stats["empty_docs"]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longkit.errors import ConfigError

IGNORE = -100
# part kinds: learned; masked; masked and the next position masked too (the authors' UtK masks the
# prediction made *from* a knot); learned but the next position masked
LEARN, MASK, MASK_NEXT, LEARN_MASK_NEXT = 0, 1, 2, 3
EMPTY = np.zeros(0, dtype=np.int32)

# columns of PackedSample.segments (one row per chunk of text placed in the sequence)
SEG_KEY, SEG_DOC, SEG_OFFSET, SEG_CHUNK, SEG_NCHUNKS, SEG_START, SEG_END, SEG_LAST = range(8)


@dataclass
class Piece:
    """A document, or the part of one that is placed in the current sequence."""

    key: int  # unique stream position of the document (a repeated document gets a new key)
    doc_id: int  # row of the document in the tokenized corpus
    offset: int  # offset of tokens[0] within the original document
    tokens: np.ndarray
    last: bool = True  # this piece ends its document


@dataclass
class PackedSample:
    """One packed training sequence; the four arrays are what training consumes."""

    input_ids: np.ndarray  # int32 [seq_len]
    labels: np.ndarray  # int32 [seq_len], -100 where the loss is masked; aligned with input_ids (HF shifts)
    position_ids: np.ndarray  # int32 [seq_len]
    cu_seqlens: np.ndarray  # int32 [n_segments + 1], attention segment boundaries (0 ... seq_len)
    segments: np.ndarray  # int64 [n_chunks, 8]: key, doc_id, offset, chunk, n_chunks, start, end, last_piece
    num_pad: int = 0
    structure: dict[str, Any] = field(default_factory=dict)  # token ids untie() needs

    def as_dict(self, with_meta: bool = True) -> dict[str, Any]:
        """The sample as a dict of numpy arrays (what the streaming dataset yields)."""
        d: dict[str, Any] = {"input_ids": self.input_ids, "labels": self.labels,
                             "position_ids": self.position_ids, "cu_seqlens": self.cu_seqlens}
        if with_meta:
            d["segments"] = self.segments
            d["num_pad"] = self.num_pad
            d["structure"] = self.structure
        return d


@dataclass
class ChunkPlan:
    """How a piece is cut: n chunks and, for UtK, the label of each chunk (indices into a label pool)."""

    n: int
    labels: np.ndarray | None = None
    overhead: int = 0  # structure tokens this piece adds (separator excluded)


class Transform:
    """Plain concatenation: one chunk per document, in stream order; base class of CIP and UtK."""

    name = "plain"
    has_parts = False  # whether parts()/trailer() add structure around split pieces

    def begin_sequence(self, rng: np.random.Generator) -> None:
        """Reset per-sequence state (label draws, per-sequence chunk-count distribution)."""

    def plan(self, length: int, rng: np.random.Generator) -> ChunkPlan:
        """Choose the chunking of a piece of `length` tokens."""
        return ChunkPlan(1)

    def split_points(self, lengths: np.ndarray, ns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Cut points of all pieces at once: for piece p, ns[p]-1 sorted distinct cuts in [1, lengths[p]).

        Returned flat, grouped by piece in order (uniformly random, vectorised; pieces whose i.i.d.
        draws collide are redrawn, which keeps the choice uniform over subsets).
        """
        k = ns - 1
        piece = np.repeat(np.arange(len(ns)), k)
        m = lengths[piece]
        cuts = 1 + (rng.random(len(piece)) * (m - 1)).astype(np.int64)
        while True:
            o = np.lexsort((cuts, piece))
            cuts = cuts[o]
            dup = np.flatnonzero((piece[1:] == piece[:-1]) & (cuts[1:] == cuts[:-1]))
            if not len(dup):
                return cuts
            bad = np.isin(piece, piece[dup])
            cuts[bad] = 1 + (rng.random(int(bad.sum())) * (m[bad] - 1)).astype(np.int64)

    def order(self, n_per_piece: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Stream order of all chunks (chunk c of the flattened piece-major list goes to position i)."""
        return np.arange(int(n_per_piece.sum()))

    def parts(self, plans: list[ChunkPlan], piece: int, chunk: int) -> tuple[list, list]:
        """Structure parts before and after chunk text: lists of (tokens, kind)."""
        return [], []

    def trailer(self, plan: ChunkPlan) -> list:
        """Parts appended after a piece's last chunk in stream order (UtK backtracing target)."""
        return []

    def structure(self) -> dict[str, Any]:
        """Token ids untie() needs to parse this transform's output."""
        return {"transform": self.name}


class Packer:
    """Fill sequences of `seq_len` tokens from a document stream through a transform."""

    def __init__(self, seq_len: int, transform: Transform | None = None, separator: np.ndarray | list[int] = (),
                 pad_id: int = 0, overflow: str = "split", intra_doc_attention: bool = False,
                 pad_last: bool = True):
        if overflow not in ("split", "carry", "truncate"):
            raise ConfigError(f"packing overflow must be split, carry or truncate, got '{overflow}'")
        self.seq_len = int(seq_len)
        self.transform = transform or Transform()
        self.separator = np.asarray(separator, dtype=np.int32)
        self.sep_kind = LEARN
        self.pad_id = int(pad_id)
        self.overflow = overflow
        self.intra_doc = intra_doc_attention
        self.pad_last = pad_last
        if self.seq_len < len(self.separator) + 2:
            raise ConfigError(f"seq_len {seq_len} is too short to hold a separator and one token")
        self.stats: dict[str, int] = {"sequences": 0, "docs": 0, "empty_docs": 0, "tokens_in": 0,
                                      "tokens_text": 0, "tokens_structure": 0, "tokens_pad": 0,
                                      "tokens_dropped": 0, "docs_split_across": 0}

    # -- planning -----------------------------------------------------------------------------------
    def fill(self, pending: Piece | None, docs: Iterator[Piece], rng: np.random.Generator
             ) -> tuple[list[Piece], list[ChunkPlan], Piece | None, bool]:
        """Choose the pieces of one sequence; returns (pieces, plans, carried piece, stream exhausted)."""
        tr = self.transform
        tr.begin_sequence(rng)
        space = self.seq_len
        pieces: list[Piece] = []
        plans: list[ChunkPlan] = []
        sep = len(self.separator)
        exhausted = False
        while True:
            if pending is None:
                pending = next(docs, None)
                if pending is None:
                    exhausted = True
                    break
                m = len(pending.tokens)
                self.stats["tokens_in"] += m
                if m == 0:
                    self.stats["empty_docs"] += 1
                    pending = None
                    continue
                self.stats["docs"] += 1
            m = len(pending.tokens)
            plan = tr.plan(m, rng)
            need = m + plan.overhead + (sep if pending.last else 0)
            if need <= space:
                pieces.append(pending)
                plans.append(plan)
                space -= need
                pending = None
                if space == 0:
                    break
                continue
            if self.overflow == "carry" and pieces and need <= self.seq_len:
                break  # starts the next sequence whole; this one is padded
            fit = space - plan.overhead
            if fit < plan.n:  # no room for the planned structure: place the head unsplit
                plan = ChunkPlan(1)
                fit = space
            fit = min(fit, m)  # fits, but its separator does not: the separator opens the next sequence
            head = Piece(pending.key, pending.doc_id, pending.offset, pending.tokens[:fit], last=False)
            pieces.append(head)
            plans.append(plan)
            if self.overflow == "truncate":
                self.stats["tokens_dropped"] += m - fit
                pending = None
            else:
                self.stats["docs_split_across"] += 1
                pending = Piece(pending.key, pending.doc_id, pending.offset + fit, pending.tokens[fit:],
                                last=pending.last)
            break
        return pieces, plans, pending, exhausted

    # -- emission -----------------------------------------------------------------------------------
    def emit(self, pieces: list[Piece], plans: list[ChunkPlan], rng: np.random.Generator) -> PackedSample:
        """Lay out the chosen pieces as one PackedSample (vectorised over tokens)."""
        tr = self.transform
        n_per = np.fromiter((p.n for p in plans), dtype=np.int64, count=len(plans))
        total_chunks = int(n_per.sum())
        piece_of = np.repeat(np.arange(len(pieces)), n_per)
        first = np.concatenate(([0], np.cumsum(n_per)[:-1])) if len(pieces) else np.zeros(0, np.int64)
        chunk_of = np.arange(total_chunks) - first[piece_of] if total_chunks else np.zeros(0, np.int64)
        lengths_p = np.fromiter((len(p.tokens) for p in pieces), dtype=np.int64, count=len(pieces))
        cuts = tr.split_points(lengths_p, n_per, rng)
        inner = chunk_of > 0
        c_start = np.zeros(total_chunks, dtype=np.int64)
        c_start[inner] = cuts
        c_end = np.empty(total_chunks, dtype=np.int64)
        c_end[chunk_of < n_per[piece_of] - 1] = cuts
        c_end[(chunk_of == n_per[piece_of] - 1)] = lengths_p
        c_start_l, c_end_l = c_start.tolist(), c_end.tolist()
        stream = tr.order(n_per, rng)  # stream[i] = flattened chunk index emitted at position i
        # a piece's trailer follows its last chunk in stream order
        last_pos = np.full(len(pieces), -1, dtype=np.int64)
        np.maximum.at(last_pos, piece_of[stream], np.arange(total_chunks))
        last_pos = last_pos.tolist()
        arrays: list[np.ndarray] = []
        kinds: list[int] = []
        owners: list[int] = []
        text_part: list[int] = []  # part index of the text of each stream chunk
        sep = self.separator
        has_parts = tr.has_parts
        for i, c in enumerate(stream.tolist()):
            pi = int(piece_of[c])
            j = int(chunk_of[c])
            piece = pieces[pi]
            a, b = c_start_l[c], c_end_l[c]
            if has_parts and plans[pi].n > 1:
                before, after = tr.parts(plans, pi, j)
                for arr, kind in before:
                    arrays.append(arr); kinds.append(kind); owners.append(pi)
                text_part.append(len(arrays))
                arrays.append(piece.tokens[a:b]); kinds.append(LEARN); owners.append(pi)
                for arr, kind in after:
                    arrays.append(arr); kinds.append(kind); owners.append(pi)
            else:
                text_part.append(len(arrays))
                arrays.append(piece.tokens[a:b]); kinds.append(LEARN); owners.append(pi)
            if last_pos[pi] == i:
                for arr, kind in (tr.trailer(plans[pi]) if has_parts else ()):
                    arrays.append(arr); kinds.append(kind); owners.append(pi)
                if piece.last and len(sep):
                    arrays.append(sep); kinds.append(self.sep_kind); owners.append(pi)
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        used = int(lengths.sum())
        n_pad = self.seq_len - used
        if n_pad < 0:
            raise AssertionError(f"packing overflow: {used} > {self.seq_len}")  # planning bug, never input
        if n_pad:
            arrays.append(np.full(n_pad, self.pad_id, dtype=np.int32)); kinds.append(MASK); owners.append(-1)
            lengths = np.append(lengths, n_pad)
        input_ids = np.concatenate(arrays).astype(np.int32, copy=False) if arrays else np.zeros(0, np.int32)
        kinds_a = np.asarray(kinds, dtype=np.int8)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        labels = input_ids.copy()
        masked = np.repeat((kinds_a == MASK) | (kinds_a == MASK_NEXT), lengths)
        nxt = ends[((kinds_a == MASK_NEXT) | (kinds_a == LEARN_MASK_NEXT)) & (ends < self.seq_len)]
        masked[nxt] = True
        labels[masked] = IGNORE
        # attention segments: runs of parts with the same owner
        owners_a = np.asarray(owners, dtype=np.int64)
        if self.intra_doc and len(owners_a):
            change = np.flatnonzero(np.diff(owners_a)) + 1
            seg_starts = np.concatenate(([0], starts[change]))
            cu = np.concatenate((seg_starts, [self.seq_len])).astype(np.int32)
            seg_len = np.diff(cu)
            position_ids = (np.arange(self.seq_len) - np.repeat(cu[:-1], seg_len)).astype(np.int32)
        else:
            cu = np.array([0, self.seq_len], dtype=np.int32)
            position_ids = np.arange(self.seq_len, dtype=np.int32)
        tp = np.asarray(text_part, dtype=np.int64)
        segs = np.empty((total_chunks, 8), dtype=np.int64)
        if total_chunks:
            pcs = piece_of[stream]
            meta = np.array([(p.key, p.doc_id, p.offset, p.last) for p in pieces], dtype=np.int64)
            segs[:, SEG_KEY] = meta[pcs, 0]
            segs[:, SEG_DOC] = meta[pcs, 1]
            segs[:, SEG_OFFSET] = meta[pcs, 2] + c_start[stream]
            segs[:, SEG_CHUNK] = chunk_of[stream]
            segs[:, SEG_NCHUNKS] = n_per[pcs]
            segs[:, SEG_START] = starts[tp]
            segs[:, SEG_END] = ends[tp]
            segs[:, SEG_LAST] = meta[pcs, 3]
        n_text = int((ends[tp] - starts[tp]).sum()) if total_chunks else 0
        st = self.stats
        st["sequences"] += 1
        st["tokens_text"] += n_text
        st["tokens_pad"] += n_pad
        st["tokens_structure"] += used - n_text
        return PackedSample(input_ids, labels, position_ids, cu, segs, n_pad, tr.structure())

    def pack(self, docs: Iterable[Piece], rng: np.random.Generator) -> Iterator[PackedSample]:
        """Pack a whole document stream (one RNG for the stream); the last sequence is padded."""
        it = iter(docs)
        pending: Piece | None = None
        while True:
            pieces, plans, pending, exhausted = self.fill(pending, it, rng)
            if not pieces:
                return
            if exhausted and not self.pad_last and sum(len(p.tokens) for p in pieces) < self.seq_len:
                return
            yield self.emit(pieces, plans, rng)
            if exhausted and pending is None:
                return


def pack_documents(docs: Iterable[np.ndarray], seq_len: int, transform: Transform | None = None,
                   separator: list[int] | np.ndarray = (), seed: int = 0, **kwargs: Any) -> list[PackedSample]:
    """Pack a list of token arrays (keys = their positions) into samples; convenience for tests and tools."""
    pieces = (Piece(i, i, 0, np.asarray(d, dtype=np.int32)) for i, d in enumerate(docs))
    packer = Packer(seq_len, transform, separator, **kwargs)
    return list(packer.pack(pieces, np.random.default_rng(seed)))


def untie(sample: PackedSample | dict[str, Any]) -> dict[int, tuple[int, int, np.ndarray, bool]]:
    """Restore each document piece of a sample: {key: (doc_id, offset, tokens, ends_document)}."""
    from longkit.data.utk import untie_utk

    d = sample.as_dict() if isinstance(sample, PackedSample) else sample
    structure = d.get("structure") or {}
    if structure.get("transform") == "utk":
        return untie_utk(d)
    ids = d["input_ids"]
    segs = np.asarray(d["segments"])
    out: dict[int, tuple[int, int, np.ndarray, bool]] = {}
    for key in np.unique(segs[:, SEG_KEY]).tolist() if len(segs) else []:
        rows = segs[segs[:, SEG_KEY] == key]
        rows = rows[np.argsort(rows[:, SEG_CHUNK], kind="stable")]
        toks = np.concatenate([ids[r[SEG_START]:r[SEG_END]] for r in rows])
        out[int(key)] = (int(rows[0, SEG_DOC]), int(rows[0, SEG_OFFSET]), toks, bool(rows[0, SEG_LAST]))
    return out


def reassemble(samples: Iterable[PackedSample | dict[str, Any]]) -> dict[int, tuple[int, np.ndarray]]:
    """Untie a stream of samples and join pieces split across sequences: {key: (doc_id, tokens)}."""
    parts: dict[int, list[tuple[int, np.ndarray]]] = {}
    doc_of: dict[int, int] = {}
    for s in samples:
        for key, (doc_id, offset, toks, _last) in untie(s).items():
            parts.setdefault(key, []).append((offset, toks))
            doc_of[key] = doc_id
    out = {}
    for key, lst in parts.items():
        lst.sort(key=lambda t: t[0])
        pos = 0
        for off, toks in lst:
            if off != pos:
                raise ValueError(f"document key {key}: piece at offset {off}, expected {pos} (gap or overlap)")
            pos += len(toks)
        out[key] = (doc_of[key], np.concatenate([t for _, t in lst]))
    return out
