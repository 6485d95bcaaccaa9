"""Streaming packed dataset: upsampling -> transform (plain / CIP / UtK) -> packing, lazily, per shard.

Interface for training (longkit.train):

    ds = PackedDataset.from_config(cfg, tokenizer)          # or PackedDataset(corpus, transform, ...)
    for sample in ds: ...                                    # a torch.utils.data.IterableDataset

Each sample is a dict of numpy arrays, all int32, of length `seq_len` unless noted:

    input_ids     token ids
    labels        = input_ids where the loss is on, -100 where it is masked (UtK knots, chunk-label
                  spans, <S>, padding). NOT shifted: the model shifts (HF convention).
    position_ids  0..seq_len-1, or restarting at each attention segment with intra_doc_attention
    cu_seqlens    int32 [n_segments + 1], segment boundaries for varlen attention ([0, seq_len]
                  when intra-document attention is off)
    segments, num_pad, structure   metadata for untie()/stats, only with with_meta=True (default off
                  for training; variable-length, so a collate function must drop or handle them)

Sharding (`shard`):
  "sequence" (default) - every rank and data-loader worker walks the one packed stream that a single
    process would see and keeps only its own sequences: micro-batch m (sequences m*B..m*B+B-1 for a
    per-device batch B) belongs to rank m % world, so N ranks x batch B see exactly what one process
    with batch B and gradient accumulation N sees, and training is the same run at any world size.
    Within a rank, its micro-batches go round-robin to the data-loader workers in the order the
    DataLoader collects them. The price is that each worker packs (but does not lay out) the others'
    sequences; packing runs at tens of millions of tokens/s (benchmarks/results/bench_data.json),
    far above what a training rank consumes.
  "document" - documents of the (upsampled, shuffled) order are dealt round-robin to the global
    workers (rank * num_workers + worker id) and each packs its own: no shared work, but the stream
    depends on the number of ranks and workers.
Determinism: the order depends on (seed, epoch); each sequence's augmentation on (seed, global
worker, number of global workers, sequence index) - (seed, 0, 1, index) in sequence mode.
Resume: `state_dict()` is the position after the last yielded sample of this process (the state
that rides with each sample through longkit.train.collate.StatefulStream is the exact one, however
far the loader prefetches); `load_state_dict(state)` makes the next iteration continue with exactly
the next sample. In sequence mode the state after the last sample of a micro-batch points past the
whole group of world micro-batches it belongs to, so it is the same on every rank and one rank's
state resumes them all, with any number of workers.
UtK special tokens: `longkit.data.utk.utk_special_tokens(cfg.utk)` lists them and
`add_utk_special_tokens(tokenizer, cfg.utk)` adds the missing ones and returns how many were added
(resize the model's embeddings to len(tokenizer)).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from longkit.data.config import DataConfig, build_transform, pad_id, resolve_separator
from longkit.data.pack import Packer, Piece, Transform
from longkit.data.sources import TokenizedCorpus
from longkit.data.upsample import UpsampleConfig, upsample
from longkit.errors import ConfigError

if TYPE_CHECKING:
    from torch.utils.data import IterableDataset

    _Base = IterableDataset[dict[str, Any]]
else:
    try:
        from torch.utils.data import IterableDataset as _Base
    except ImportError:  # pragma: no cover - torch is a dependency; keeps the data code importable without it
        _Base = object

KEY_EPOCH_SHIFT = 40  # document keys: epoch << 40 | position in the epoch's order


class _Cursor:
    """Deals this shard's documents as Pieces and remembers where it is."""

    def __init__(self, ds: PackedDataset, g: int, n_global: int, epoch: int, pos: int):
        self.ds, self.g, self.n_global = ds, g, n_global
        self.epoch, self.pos = epoch, pos
        self.last: tuple[int, int] | None = None
        self._order = ds.order(epoch)

    def __iter__(self) -> _Cursor:
        return self

    def piece(self, epoch: int, pos: int, offset: int = 0) -> Piece:
        """The document at (epoch, pos of this shard) from `offset` on."""
        order = self._order if epoch == self.epoch else self.ds.order(epoch)
        gpos = self.g + pos * self.n_global
        doc = int(order[gpos])
        toks = self.ds.corpus.doc(doc)[offset:]
        return Piece((epoch << KEY_EPOCH_SHIFT) | gpos, doc, offset, toks, last=True)

    def __next__(self) -> Piece:
        while True:
            if self.ds.epochs is not None and self.epoch >= self.ds.epochs:
                raise StopIteration
            gpos = self.g + self.pos * self.n_global
            if gpos < len(self._order):
                p = self.piece(self.epoch, self.pos)
                self.last = (self.epoch, self.pos)
                self.pos += 1
                return p
            self.epoch += 1
            self.pos = 0
            if self.ds.epochs is None or self.epoch < self.ds.epochs:
                self._order = self.ds.order(self.epoch)


class PackedDataset(_Base):
    """IterableDataset of packed sequences from a tokenized corpus (see the module docstring)."""

    def __init__(
        self,
        corpus: TokenizedCorpus | str | Path,
        transform: Transform,
        seq_len: int,
        separator: list[int] | tuple[int, ...] = (),
        pad_id: int = 0,
        seed: int = 0,
        overflow: str = "split",
        intra_doc_attention: bool = False,
        upsample_config: UpsampleConfig | None = None,
        epochs: int | None = 1,
        rank: int | None = None,
        world_size: int | None = None,
        with_meta: bool = False,
        shard: str = "sequence",
        batch_size: int = 1,
    ):
        self.corpus = corpus if isinstance(corpus, TokenizedCorpus) else TokenizedCorpus(corpus)
        self.transform = transform
        self.seq_len = int(seq_len)
        self.separator = list(separator)
        self.pad_id = int(pad_id)
        self.seed = int(seed)
        self.overflow = overflow
        self.intra_doc = intra_doc_attention
        self.upsample_config = upsample_config or UpsampleConfig(enabled=False)
        self.epochs = epochs
        self.rank, self.world_size = rank, world_size
        self.with_meta = with_meta
        if shard not in ("sequence", "document"):
            raise ConfigError(f"shard: expected 'sequence' or 'document', got '{shard}'")
        if batch_size < 1:
            raise ConfigError(f"batch_size: expected >= 1, got {batch_size}")
        self.shard, self.batch_size = shard, int(batch_size)
        self._state: dict[str, Any] | None = None
        self._resume: dict[str, Any] | None = None
        self._orders: dict[int, np.ndarray] = {}
        Packer(self.seq_len, transform, self.separator, self.pad_id, overflow, intra_doc_attention)  # validate now

    @classmethod
    def from_config(
        cls, cfg: DataConfig, tokenizer: Any, corpus: TokenizedCorpus | str | None = None, **kwargs: Any
    ) -> PackedDataset:
        """Build from a DataConfig (corpus default: <cfg.out>/corpus)."""
        source = corpus if corpus is not None else Path(cfg.out) / "corpus"
        return cls(
            source,
            build_transform(cfg, tokenizer),
            cfg.seq_len,
            resolve_separator(tokenizer, cfg.separator),
            pad_id(tokenizer),
            seed=cfg.seed,
            overflow=cfg.overflow,
            intra_doc_attention=cfg.intra_doc_attention,
            upsample_config=cfg.upsample,
            **kwargs,
        )

    def order(self, epoch: int) -> np.ndarray:
        """Document order of an epoch: upsampled selection (with repeats) in a seeded random order."""
        if epoch not in self._orders:
            self._orders = {
                epoch: upsample(
                    self.corpus.lengths,
                    self.corpus.doc_source,
                    self.corpus.source_names,
                    self.upsample_config,
                    seed=self.seed * 1_000_003 + epoch,
                )
            }
        return self._orders[epoch]

    def _rank_world(self) -> tuple[int, int]:
        if self.rank is not None:
            return self.rank, self.world_size or 1
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                return dist.get_rank(), dist.get_world_size()
        except ImportError:  # pragma: no cover
            pass
        return 0, 1

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            from torch.utils.data import get_worker_info

            info = get_worker_info()
        except ImportError:  # pragma: no cover
            info = None
        w, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.iter_shard(w, nw)

    def iter_shard(self, worker: int = 0, num_workers: int = 1) -> Iterator[dict[str, Any]]:
        """Iterate the shard of one dataloader worker of this rank (resuming from load_state_dict)."""
        if self.shard == "sequence":
            return self._iter_sequences(worker, num_workers)
        return self._iter_documents(worker, num_workers)

    def _restart(self, st: dict[str, Any] | None, part: int, parts: int) -> tuple[Any, Any, Packer]:
        """A document cursor, the pending piece and a fresh packer at a saved state (or at the start)."""
        cur = _Cursor(self, part, parts, st["epoch"] if st else 0, st["pos"] if st else 0)
        pending = None
        if st and st["pending"]:
            pending = cur.piece(*st["pending"])
            cur.last = (st["pending"][0], st["pending"][1])
        packer = Packer(self.seq_len, self.transform, self.separator, self.pad_id, self.overflow, self.intra_doc)
        self.stats = packer.stats
        return cur, pending, packer

    def _iter_sequences(self, worker: int, num_workers: int) -> Iterator[dict[str, Any]]:
        rank, world = self._rank_world()
        st = self._resume
        self._resume = None
        if st is not None and st.get("shard", "document") != "sequence":
            raise ConfigError("dataset state was saved in 'document' shard mode; resume it with shard='document'")
        start = st["seq"] if st else 0
        cur, pending, packer = self._restart(st, 0, 1)
        B, group = self.batch_size, self.batch_size * world

        def position(seq: int) -> dict[str, Any]:
            pend = None
            if pending is not None:
                e, p = cur.last
                pend = [e, p, int(pending.offset)]
            return {
                "version": 1,
                "shard": "sequence",
                "seed": self.seed,
                "epoch": cur.epoch,
                "pos": cur.pos,
                "pending": pend,
                "seq": seq,
            }

        mine = 0  # this rank's sequences since `start`: decides the worker (the DataLoader's batch order)
        buf: list[tuple[dict[str, Any], dict[str, Any]]] = []
        seq = start
        while True:
            rng = np.random.default_rng([self.seed, 0, 1, seq])
            pieces, plans, pending, exhausted = packer.fill(pending, cur, rng)
            if not pieces:
                break
            if (seq // B) % world == rank:
                if (mine // B) % num_workers == worker:
                    # Only the owner lays the sequence out; the others just advance the packing cursor.
                    buf.append((packer.emit(pieces, plans, rng).as_dict(self.with_meta), position(seq + 1)))
                mine += 1
            seq += 1
            if seq % group == 0 and buf:
                # Past the whole group: the state after a micro-batch's last sample is the same on every rank.
                end = position(seq)
                for i, (sample, state) in enumerate(buf):
                    self._state = end if i == len(buf) - 1 or (i + 1) % B == 0 else state
                    yield sample
                buf = []
            if exhausted and pending is None:
                break
        end = position(seq)
        for i, (sample, state) in enumerate(buf):
            self._state = end if i == len(buf) - 1 else state
            yield sample

    def _iter_documents(self, worker: int, num_workers: int) -> Iterator[dict[str, Any]]:
        rank, world = self._rank_world()
        g, n_global = rank * num_workers + worker, world * num_workers
        st = self._resume
        self._resume = None
        if st is not None and (st["worker"] != [g, n_global]):
            raise ConfigError(
                f"dataset state was saved by global worker {st['worker'][0]} of {st['worker'][1]}, "
                f"cannot resume it as worker {g} of {n_global} (keep world size and num_workers)"
            )
        seq = st["seq"] if st else 0
        cur, pending, packer = self._restart(st, g, n_global)
        while True:
            rng = np.random.default_rng([self.seed, g, n_global, seq])
            pieces, plans, pending, exhausted = packer.fill(pending, cur, rng)
            if not pieces:
                return
            sample = packer.emit(pieces, plans, rng)
            seq += 1
            pend = None
            if pending is not None:
                e, p = cur.last
                pend = [e, p, int(pending.offset)]
            self._state = {
                "version": 1,
                "shard": "document",
                "seed": self.seed,
                "worker": [g, n_global],
                "epoch": cur.epoch,
                "pos": cur.pos,
                "pending": pend,
                "seq": seq,
            }
            yield sample.as_dict(self.with_meta)
            if exhausted and pending is None:
                return

    def state_dict(self) -> dict[str, Any]:
        """Position after the last sample this process yielded (JSON-serialisable)."""
        return dict(self._state) if self._state else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume the next iteration right after the sample at which `state` was taken."""
        if not state:
            self._resume = None
            return
        if state.get("version") != 1 or ("worker" not in state and state.get("shard") != "sequence"):
            raise ConfigError("not a PackedDataset state (missing version/worker)")
        if state["seed"] != self.seed:
            raise ConfigError(f"dataset state has seed {state['seed']}, this dataset {self.seed}")
        self._resume = dict(state)
