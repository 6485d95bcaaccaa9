"""Packing documents into fixed-length training sequences, shared by the plain, CIP and UtK transforms.

A *transform* decides, per document piece, how many chunks it is cut into, which structure tokens
surround each chunk and in which order the chunks of one sequence are emitted. The packer here owns
everything else: filling sequences of `seq_len` tokens from a document stream, the document
separator, splitting or carrying over a document that does not fit, padding the last sequence,
labels (-100 on masked structure and padding), position ids and `cu_seqlens`.

Token accounting rule: every token of every non-empty document appears exactly once in the packed
output (as chunk text), except with `overflow="truncate"` (the authors' UtK behaviour): there a
sequence takes `seq_len` tokens of text and separators from the stream, the transform adds its
structure, and the sequence is cut back to `seq_len` from its end, so exactly the overflow that the
structure tokens cause is lost; the cut document continues in the next sequence after the window.
Dropped text is counted in `Packer.stats["tokens_dropped"]` (tokens_in == tokens_text + tokens_dropped).
Empty documents carry no tokens; they are skipped and counted in `stats["empty_docs"]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longkit.data.plan import (
    EMPTY,
    IGNORE,
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
    Piece,
    Transform,
)
from longkit.data.utk import untie_utk
from longkit.errors import ConfigError

__all__ = [
    "EMPTY",
    "IGNORE",
    "LEARN",
    "LEARN_MASK_NEXT",
    "MASK",
    "MASK_NEXT",
    "SEG_CHUNK",
    "SEG_DOC",
    "SEG_END",
    "SEG_KEY",
    "SEG_LAST",
    "SEG_NCHUNKS",
    "SEG_OFFSET",
    "SEG_START",
    "ChunkPlan",
    "PackedSample",
    "Packer",
    "Piece",
    "Transform",
    "pack_documents",
    "reassemble",
    "untie",
]


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
        d: dict[str, Any] = {
            "input_ids": self.input_ids,
            "labels": self.labels,
            "position_ids": self.position_ids,
            "cu_seqlens": self.cu_seqlens,
        }
        if with_meta:
            d["segments"] = self.segments
            d["num_pad"] = self.num_pad
            d["structure"] = self.structure
        return d


class Packer:
    """Fill sequences of `seq_len` tokens from a document stream through a transform."""

    def __init__(
        self,
        seq_len: int,
        transform: Transform | None = None,
        separator: np.ndarray | list[int] | tuple[int, ...] = (),
        pad_id: int = 0,
        overflow: str = "split",
        intra_doc_attention: bool = False,
        pad_last: bool = True,
    ):
        if overflow not in ("split", "carry", "truncate"):
            raise ConfigError(f"packing overflow must be split, carry or truncate, got '{overflow}'")
        self.seq_len = int(seq_len)
        self.transform = transform or Transform()
        if intra_doc_attention and self.transform.cross_chunk:
            raise ConfigError(
                f"intra_doc_attention: must be false with the {self.transform.name} transform "
                "(its chunks of one document must attend to each other)"
            )
        self.separator = np.asarray(separator, dtype=np.int32)
        self.sep_kind = self.transform.sep_kind
        self._structure = dict(self.transform.structure())
        if self.transform.sep_after_text:
            self._structure["separator"] = self.separator.tolist()
        self.pad_id = int(pad_id)
        self.overflow = overflow
        self.intra_doc = intra_doc_attention
        self.pad_last = pad_last
        if self.seq_len < len(self.separator) + 2:
            raise ConfigError(f"seq_len {seq_len} is too short to hold a separator and one token")
        self.stats: dict[str, int] = {
            "sequences": 0,
            "docs": 0,
            "empty_docs": 0,
            "tokens_in": 0,
            "tokens_text": 0,
            "tokens_structure": 0,
            "tokens_pad": 0,
            "tokens_dropped": 0,
            "docs_split_across": 0,
        }

    # -- planning -----------------------------------------------------------------------------------
    def fill(
        self, pending: Piece | None, docs: Iterator[Piece], rng: np.random.Generator
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
            if self.overflow == "truncate":
                # the window holds seq_len tokens of text and separators; structure is cut back afterwards
                s = sep if pending.last else 0
                if m + s <= space:
                    pieces.append(pending)
                    plans.append(tr.plan(m, rng))
                    space -= m + s
                    pending = None
                    if space == 0:
                        break
                    continue
                fit = min(space, m)
                if fit:  # else only the separator is left and it opens the next window
                    pieces.append(Piece(pending.key, pending.doc_id, pending.offset, pending.tokens[:fit], last=False))
                    plans.append(tr.plan(fit, rng))
                    self.stats["docs_split_across"] += 1
                    pending = Piece(
                        pending.key, pending.doc_id, pending.offset + fit, pending.tokens[fit:], last=pending.last
                    )
                break
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
            self.stats["docs_split_across"] += 1
            pending = Piece(pending.key, pending.doc_id, pending.offset + fit, pending.tokens[fit:], last=pending.last)
            break
        if self.overflow == "truncate":
            self._cut_back(pieces, plans)
        return pieces, plans, pending, exhausted

    def _cut_back(self, pieces: list[Piece], plans: list[ChunkPlan]) -> None:
        """Cut a window back to seq_len from its end, as the authors' `tokens[:sequence_length]`.

        The end of the window is its last piece (the authors keep the last chunk of the last
        document at the end of the stream): first its separator, then its text tail. A piece too
        short to keep its planned chunks is left unsplit (its structure is no longer added); one with
        no token left is removed, and the cut goes on into the piece before it.
        """
        sep = len(self.separator)
        excess = sum(len(p.tokens) + c.overhead + (sep if p.last else 0) for p, c in zip(pieces, plans)) - self.seq_len
        while excess > 0 and pieces:
            p, plan = pieces[-1], plans[-1]
            if p.last and sep:
                pieces[-1] = p = Piece(p.key, p.doc_id, p.offset, p.tokens, last=False)
                excess -= sep
                continue
            keep = len(p.tokens) - excess
            if keep >= max(plan.n, 1):
                pieces[-1] = Piece(p.key, p.doc_id, p.offset, p.tokens[:keep], last=False)
                self.stats["tokens_dropped"] += excess
                return
            if plan.n > 1:
                plans[-1] = ChunkPlan(1)
                excess -= plan.overhead
                continue
            self.stats["tokens_dropped"] += len(p.tokens)
            excess -= len(p.tokens)
            pieces.pop()
            plans.pop()

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
        sep_after_text = tr.sep_after_text
        for i, c in enumerate(stream.tolist()):
            pi = int(piece_of[c])
            j = int(chunk_of[c])
            piece = pieces[pi]
            a, b = c_start_l[c], c_end_l[c]
            if has_parts and plans[pi].n > 1:
                before, after = tr.parts(plans, pi, j)
                for arr, kind in before:
                    arrays.append(arr)
                    kinds.append(kind)
                    owners.append(pi)
                text_part.append(len(arrays))
                arrays.append(piece.tokens[a:b])
                kinds.append(LEARN)
                owners.append(pi)
                for arr, kind in after:
                    arrays.append(arr)
                    kinds.append(kind)
                    owners.append(pi)
            else:
                text_part.append(len(arrays))
                arrays.append(piece.tokens[a:b])
                kinds.append(LEARN)
                owners.append(pi)
            if sep_after_text and piece.last and len(sep) and j == plans[pi].n - 1:
                arrays.append(sep)  # `text EOD` (authors)
                kinds.append(self.sep_kind)
                owners.append(pi)
            if last_pos[pi] == i:
                for arr, kind in tr.trailer(plans[pi]) if has_parts else ():
                    arrays.append(arr)
                    kinds.append(kind)
                    owners.append(pi)
                if not sep_after_text and piece.last and len(sep):
                    arrays.append(sep)
                    kinds.append(self.sep_kind)
                    owners.append(pi)
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        used = int(lengths.sum())
        n_pad = self.seq_len - used
        if n_pad < 0:
            raise AssertionError(f"packing overflow: {used} > {self.seq_len}")  # planning bug, never input
        if n_pad:
            arrays.append(np.full(n_pad, self.pad_id, dtype=np.int32))
            kinds.append(MASK)
            owners.append(-1)
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
        return PackedSample(input_ids, labels, position_ids, cu, segs, n_pad, dict(self._structure))

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


def pack_documents(
    docs: Iterable[np.ndarray],
    seq_len: int,
    transform: Transform | None = None,
    separator: list[int] | tuple[int, ...] | np.ndarray = (),
    seed: int = 0,
    **kwargs: Any,
) -> list[PackedSample]:
    """Pack a list of token arrays (keys = their positions) into samples; convenience for tests and tools."""
    pieces = (Piece(i, i, 0, np.asarray(d, dtype=np.int32)) for i, d in enumerate(docs))
    packer = Packer(seq_len, transform, separator, **kwargs)
    return list(packer.pack(pieces, np.random.default_rng(seed)))


def untie(sample: PackedSample | dict[str, Any]) -> dict[int, tuple[int, int, np.ndarray, bool]]:
    """Restore each document piece of a sample: {key: (doc_id, offset, tokens, ends_document)}."""
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
        toks = np.concatenate([ids[r[SEG_START] : r[SEG_END]] for r in rows])
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
