"""The data pipeline as one library call: tokenize the sources once (or reuse the corpus), upsample,
transform and pack, then write the shards, a checksummed manifest and the report (stats.json, stats.md,
knot_distances.png). `longkit data build` only parses its options, calls `build` and prints."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longkit.data.config import DataConfig
from longkit.data.sources import TokenizedCorpus
from longkit.errors import ConfigError, InputError

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class BuildReport:
    """What `build` wrote: its output folder, the report stored as stats.json, and whether the corpus was reused."""

    root: Path
    stats: dict[str, Any]
    corpus_reused: bool
    already_complete: bool = False

    @property
    def shard_paths(self) -> list[Path]:
        """The shards, in order."""
        return sorted((self.root / "shards").glob("shard-*.npz"))

    @property
    def sequences(self) -> int:
        """Packed sequences written."""
        return int(self.stats["packing"]["sequences"])

    def files(self) -> dict[str, Path]:
        """The report files by role: stats_md, stats_json, plot, manifest."""
        from longkit.data.stats import MANIFEST

        return {
            "stats_md": self.root / "stats.md",
            "stats_json": self.root / "stats.json",
            "plot": self.root / "knot_distances.png",
            "manifest": self.root / MANIFEST,
        }


def write_manifest(root: Path, shards: list[tuple[Path, int]], cfg_dict: dict[str, Any]) -> None:
    """manifest.json: per-shard size and SHA-256 (checked by `data inspect`, fully with --verify)."""
    from longkit.data.stats import MANIFEST
    from longkit.io import sha256_file, write_json

    write_json(
        root / MANIFEST,
        {
            "version": 1,
            "seq_len": cfg_dict["seq_len"],
            "transform": cfg_dict["transform"],
            "shards": {
                p.relative_to(root).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_file(p), "sequences": n}
                for p, n in shards
            },
        },
    )


def _configure(
    config: str | Path | DataConfig, out: str | Path | None, max_sequences: int | None, num_proc: int | None
) -> tuple[DataConfig, str]:
    """The config with the overrides applied (each checked like its YAML field), and how errors name it."""
    from longkit.data.config import load_data_config

    if isinstance(config, DataConfig):
        cfg, where = config.model_copy(deep=True), "config"
    else:
        cfg, where = load_data_config(config), str(config)
    if out is not None:
        cfg.out = str(out)
    if max_sequences is not None:
        cfg.max_sequences = max_sequences
    if num_proc is not None:
        cfg.num_proc = num_proc
    return cfg, where


def check_sources(cfg: DataConfig, where: str) -> None:
    """Every local source exists and has a document (reading one row is cheap: done before the tokenizer loads)."""
    from longkit.data.sources import iter_documents

    if not cfg.sources:
        raise ConfigError(f"{where}: field 'sources': list at least one source (a JSONL, Parquet or text path)")
    for i, spec in enumerate(cfg.sources):
        if spec.resolved_type() in ("jsonl", "parquet", "text"):
            if not Path(spec.path).exists():
                raise ConfigError(f"{where}: field 'sources[{i}].path': {spec.path} not found")
            if next(iter_documents(spec), None) is None:
                raise InputError(f"{spec.path}: source has no documents")
    check_mix_names(cfg, where)


def check_mix_names(cfg: DataConfig, where: str) -> None:
    """upsample.mix names only sources the data has, checked before tokenizing (local sources are read for their
    source names; with a Hub dataset among the sources the names are known only once it is read)."""
    from longkit.data.sources import iter_documents

    mix = cfg.upsample.mix
    if not mix or any(spec.resolved_type() in ("hf", "hub") for spec in cfg.sources):
        return
    names = sorted({name for spec in cfg.sources for name, _ in iter_documents(spec)})
    unknown = sorted(set(mix) - set(names))
    if unknown:
        raise ConfigError(f"{where}: field 'upsample.mix': names unknown source(s) {unknown}; the sources are {names}")


def prepare_corpus(
    cfg: DataConfig,
    tok: Any,
    corpus_dir: Path,
    verify: bool = False,
    log: Say = _quiet,
    warn: Say = _quiet,
    reuse: bool = True,
) -> tuple[TokenizedCorpus, bool]:
    """The tokenized corpus (reused when the same tokenizer and sources made it, else tokenized) and if reused."""
    from longkit.data.reuse import corpus_is_current
    from longkit.data.tokenize import tokenize_corpus

    t0 = time.perf_counter()
    if reuse and corpus_is_current(corpus_dir, tok, cfg.tokenizer, cfg.sources, verify=verify, warn=warn):
        corpus = TokenizedCorpus(corpus_dir)
        log(f"corpus: reusing {corpus_dir} ({len(corpus)} docs, {int(corpus.lengths.sum())} tokens)")
        return corpus, True
    corpus = tokenize_corpus(cfg.sources, tok, corpus_dir, num_proc=cfg.num_proc, tokenizer_name=cfg.tokenizer)
    log(
        f"corpus: tokenized {len(corpus)} docs, {int(corpus.lengths.sum())} tokens "
        f"in {time.perf_counter() - t0:.1f}s -> {corpus_dir}"
    )
    return corpus, False


def _pack(ds: Any, cfg: DataConfig, total: int, shard_dir: Path) -> tuple[Any, list[tuple[Path, int]]]:
    """Pack the epoch into shards of cfg.sequences_per_shard; returns the sequence statistics and the shards."""
    from longkit.data.stats import PackStats, write_shard
    from longkit.progress import Progress

    stats = PackStats()
    buf: list[dict[str, Any]] = []
    written: list[tuple[Path, int]] = []

    def flush() -> None:
        path = shard_dir / f"shard-{len(written):05d}.npz"
        write_shard(path, buf)
        written.append((path, len(buf)))

    with Progress("pack", total=max(total, 1), unit="sequences") as prog:
        for sample in ds:
            stats.add(sample)
            buf.append(sample)
            if prog.total is not None and stats.sequences > prog.total:
                prog.total = stats.sequences  # the estimate ignores structure tokens: never show 26/25
            prog.advance()
            if len(buf) == cfg.sequences_per_shard:
                flush()
                buf = []
            if cfg.max_sequences and stats.sequences >= cfg.max_sequences:
                break
        if buf:
            flush()
    return stats, written


def _remove_stale_shards(shard_dir: Path, written: list[tuple[Path, int]]) -> None:
    keep = {p.name for p, _ in written}
    for old in shard_dir.glob("shard-*.npz"):  # shards of an earlier, longer build
        if old.name not in keep:
            old.unlink()


def _report(
    cfg: DataConfig,
    corpus: TokenizedCorpus,
    order: Any,
    ds: Any,
    stats: Any,
    n_shards: int,
    secs: float,
    added: int | None,
    vocab_size: int,
) -> dict[str, Any]:
    """The stats.json record: config, token mix before/after upsampling, packing totals, sequence statistics."""
    from longkit.data.upsample import mix_report

    lengths, src, names = corpus.lengths, corpus.doc_source, corpus.source_names
    buckets, threshold = cfg.upsample.buckets, cfg.upsample.threshold
    return {
        "config": cfg.to_dict(),
        "shards": n_shards,
        "pack_seconds": secs,
        "special_tokens_added": added,
        "vocab_size": vocab_size,
        "mix": {
            "before": mix_report(lengths, src, names, None, buckets, threshold),
            "after": mix_report(lengths, src, names, order, buckets, threshold),
        },
        "packing": dict(ds.stats),
        "sequences": stats.report(),
    }


def _write_report(root: Path, report: dict[str, Any]) -> None:
    from longkit.data.build_report import markdown, plot_knot_distances
    from longkit.io import atomic_write_text, write_json

    write_json(root / "stats.json", report)
    atomic_write_text(root / "stats.md", markdown(report))
    plot_knot_distances(report, root / "knot_distances.png")


def _summary_lines(cfg: DataConfig, report: BuildReport, epoch_tokens: int) -> list[str]:
    pk = report.stats["packing"]
    lines = [
        f"packed {pk['sequences']} sequences of {cfg.seq_len} into {report.stats['shards']} shard(s) in "
        f"{report.stats['pack_seconds']:.1f}s: {pk['tokens_text']} text + {pk['tokens_structure']} structure + "
        f"{pk['tokens_pad']} pad tokens, {pk['tokens_dropped']} dropped"
    ]
    if cfg.max_sequences and pk["sequences"] < cfg.max_sequences:
        lines.append(
            f"note: max_sequences is {cfg.max_sequences} but one pass over the corpus ({epoch_tokens} "
            f"tokens) fills only {pk['sequences']}; add documents or enable upsampling for more"
        )
    f = report.files()
    lines.append(f"report: {f['stats_md']}, {f['stats_json']}, {f['plot']}; checksums: {f['manifest']}")
    return lines


def build(
    config: str | Path | DataConfig,
    *,
    out: str | Path | None = None,
    max_sequences: int | None = None,
    num_proc: int | None = None,
    verify: bool = False,
    overwrite: bool = False,
    log: Say | None = None,
    warn: Say | None = None,
) -> BuildReport:
    """Run the data pipeline of a config (a YAML path or a DataConfig); log/warn receive the progress lines.

    Into an output that holds a build: the same build is already complete (nothing written, unless `verify`
    asks to check the corpus); another config is refused by field unless `overwrite` (data.build_record)."""
    from longkit.data.build_record import check_rerun, source_files, sources_changed
    from longkit.data.dataset import PackedDataset
    from longkit.data.utk import add_utk_special_tokens
    from longkit.io import output_dir
    from longkit.models.load import load_tokenizer

    log, warn = log or _quiet, warn or _quiet
    cfg, where = _configure(config, out, max_sequences, num_proc)
    check_sources(cfg, where)
    done = check_rerun(cfg, Path(cfg.out), where, overwrite)
    if done is not None and not verify:
        log(
            f"already complete: {cfg.out} holds this build ({done['packing']['sequences']} sequences), made from "
            "these sources; nothing to do"
        )
        return BuildReport(root=Path(cfg.out), stats=done, corpus_reused=True, already_complete=True)
    edited = sources_changed(cfg, Path(cfg.out))
    tok = load_tokenizer(cfg.tokenizer)
    root = output_dir(cfg.out, "--out" if out is not None else f"{where}: field 'out'")
    if edited:
        warn(f"corpus: a source file changed since {root} was built; tokenizing again")
    corpus, reused = prepare_corpus(cfg, tok, root / "corpus", verify=verify, log=log, warn=warn, reuse=not edited)
    added = None
    if cfg.transform == "utk":
        added = add_utk_special_tokens(tok, cfg.utk)
        tok.save_pretrained(root / "tokenizer")
        log(f"tokenizer: {added} UtK special tokens added, vocab {len(tok)} -> {root / 'tokenizer'}")
    ds = PackedDataset.from_config(cfg, tok, corpus=corpus, with_meta=True, epochs=1)
    order = ds.order(0)
    epoch_tokens = int(corpus.lengths[order].sum())
    # total for progress: the cap, else the epoch's tokens over seq_len (packing overhead makes it a lower bound)
    est = -(-epoch_tokens // cfg.seq_len) if len(order) else 0
    t1 = time.perf_counter()
    stats, written = _pack(ds, cfg, min(cfg.max_sequences, est) if cfg.max_sequences else est, root / "shards")
    if not written:
        raise ConfigError(
            f"{where}: packing produced no sequences (the corpus has {int(corpus.lengths.sum())} "
            "tokens); add documents or lower seq_len"
        )
    _remove_stale_shards(root / "shards", written)
    write_manifest(root, written, cfg.to_dict())
    secs = time.perf_counter() - t1
    stats_dict = {
        **_report(cfg, corpus, order, ds, stats, len(written), secs, added, len(tok)),
        "sources": source_files(cfg),
    }
    _write_report(root, stats_dict)
    report = BuildReport(root=root, stats=stats_dict, corpus_reused=reused)
    for line in _summary_lines(cfg, report, epoch_tokens):
        log(line)
    return report
