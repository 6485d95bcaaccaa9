"""`longkit data ...` sub-commands."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from longkit.cli_common import friendly_errors

app = typer.Typer(no_args_is_help=True)


def _corpus_is_current(out: Path, specs: list, tokenizer_name: str, verify: bool = False) -> bool:
    """Whether out holds an undamaged corpus tokenized from these sources with this tokenizer."""
    import json

    from longkit.data.sources import TokenizedCorpus
    from longkit.errors import InputError

    meta = out / "meta.json"
    if not meta.exists() or not (out / "tokens.bin").exists():
        return False
    try:
        m = json.loads(meta.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return False
    if not isinstance(m, dict) or m.get("tokenizer") != tokenizer_name or \
            m.get("specs") != json.loads(json.dumps([s.__dict__ for s in specs])):
        return False
    try:
        TokenizedCorpus(out, verify=verify)  # sizes (and SHA-256 with --verify): a damaged corpus is redone
    except InputError as exc:
        typer.secho(f"warning: {exc}; tokenizing again", fg="yellow", err=True)
        return False
    return True


def _markdown(report: dict) -> str:
    lines = [f"# Data build: {report['config']['transform']} · seq_len {report['config']['seq_len']}", ""]
    if report["config"]["transform"] == "utk":
        from longkit.data.utk import fidelity_note

        lines += [fidelity_note(report["config"]["utk"], report["config"]["overflow"]), ""]
    pk = report["packing"]
    lines += ["| tokens in | text placed | structure + separators | pad | dropped | sequences | empty docs |",
              "|---|---|---|---|---|---|---|",
              f"| {pk['tokens_in']} | {pk['tokens_text']} | {pk['tokens_structure']} | {pk['tokens_pad']} | "
              f"{pk['tokens_dropped']} | {pk['sequences']} | {pk['empty_docs']} |", ""]
    for name in ("before", "after"):
        mix = report["mix"][name]
        lines += [f"## Token mix {name} upsampling ({mix['tokens']} tokens, {mix['docs']} docs)", "",
                  "| source | share | long share | " + " | ".join(mix["buckets"]) + " |",
                  "|---" * (3 + len(mix["buckets"])) + "|"]
        for src, s in mix["sources"].items():
            lines.append(f"| {src} | {s['share']:.3f} | {s['long_share']:.3f} | "
                         + " | ".join(str(v) for v in s["tokens_by_bucket"].values()) + " |")
        lines.append("")
    st = report["sequences"]
    kd = st["knot_distance"]
    lines += ["## Sequences", "", f"- chunks per sequence: {st['chunks_per_sequence']}",
              f"- documents split: {st['docs_split']} ({st['docs_split_per_sequence']:.2f} per sequence)",
              f"- masked label share: {st['masked_label_share']:.4f}",
              f"- tied-knot distance (tail knot of chunk j to head knot of chunk j+1), {kd['pairs']} pairs, "
              f"mean {kd['mean']:.1f} tokens:", "",
              "| distance | " + " | ".join(kd["bins"]) + " |", "|---" * (1 + len(kd["bins"])) + "|",
              "| pairs | " + " | ".join(str(c) for c in kd["counts"]) + " |", ""]
    if report.get("special_tokens_added") is not None:
        lines.append(f"UtK special tokens added to the tokenizer: {report['special_tokens_added']} "
                     f"(resize embeddings to {report['vocab_size']}).")
    return "\n".join(lines) + "\n"


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kd = report["sequences"]["knot_distance"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(range(len(kd["counts"])), kd["counts"])
    ax.set_xticks(range(len(kd["counts"])), kd["bins"], rotation=30, fontsize=7)
    ax.set_xlabel("tokens between tied knots")
    ax.set_ylabel("knot pairs")
    ax.set_title("UtK tied-knot distances")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_manifest(root: Path, shards: list[tuple[Path, int]], cfg_dict: dict) -> None:
    """manifest.json: per-shard size and SHA-256 (checked by `data inspect`, fully with --verify)."""
    from longkit.data.stats import MANIFEST
    from longkit.io import sha256_file, write_json

    write_json(root / MANIFEST, {
        "version": 1, "seq_len": cfg_dict["seq_len"], "transform": cfg_dict["transform"],
        "shards": {p.relative_to(root).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256_file(p),
                                                    "sequences": n} for p, n in shards},
    })


@app.command("build")
@friendly_errors
def build(config: Path = typer.Argument(..., help="data config YAML (see configs/data/)"),
          out: Optional[Path] = typer.Option(None, help="output folder (default: the config's out)"),
          max_sequences: Optional[int] = typer.Option(None, min=1, help="stop after this many sequences"),
          num_proc: Optional[int] = typer.Option(None, min=1, max=512, help="tokenization processes"),
          verify: bool = typer.Option(False, "--verify", help="check a reused corpus's SHA-256s, not only sizes")
          ) -> None:
    """Tokenize the sources once, upsample, transform and pack; write shards, a checksummed manifest and a report."""
    import time


    from longkit.data.config import load_data_config
    from longkit.data.dataset import PackedDataset
    from longkit.data.sources import TokenizedCorpus, iter_documents, tokenize_corpus
    from longkit.data.stats import MANIFEST, PackStats, write_shard
    from longkit.data.upsample import mix_report
    from longkit.data.utk import add_utk_special_tokens
    from longkit.errors import ConfigError, InputError
    from longkit.io import atomic_write_text, output_dir, write_json
    from longkit.models.load import load_tokenizer
    from longkit.progress import Progress

    cfg = load_data_config(config)
    if out is not None:
        cfg.out = str(out)
    if max_sequences is not None:
        cfg.max_sequences = max_sequences
    if num_proc is not None:
        cfg.num_proc = num_proc
    if not cfg.sources:
        raise ConfigError(f"{config}: field 'sources': list at least one source (a JSONL, Parquet or text path)")
    for i, spec in enumerate(cfg.sources):
        if spec.resolved_type() in ("jsonl", "parquet", "text"):
            if not Path(spec.path).exists():
                raise ConfigError(f"{config}: field 'sources[{i}].path': {spec.path} not found")
            if next(iter_documents(spec), None) is None:  # before the tokenizer loads: reading one row is cheap
                raise InputError(f"{spec.path}: source has no documents")
    root = output_dir(cfg.out, "--out" if out is not None else f"{config}: field 'out'")
    tok = load_tokenizer(cfg.tokenizer)
    corpus_dir = root / "corpus"
    t0 = time.perf_counter()
    if _corpus_is_current(corpus_dir, cfg.sources, cfg.tokenizer, verify=verify):
        corpus = TokenizedCorpus(corpus_dir)
        typer.echo(f"corpus: reusing {corpus_dir} ({len(corpus)} docs, {int(corpus.lengths.sum())} tokens)")
    else:
        corpus = tokenize_corpus(cfg.sources, tok, corpus_dir, num_proc=cfg.num_proc, tokenizer_name=cfg.tokenizer)
        typer.echo(f"corpus: tokenized {len(corpus)} docs, {int(corpus.lengths.sum())} tokens "
                   f"in {time.perf_counter() - t0:.1f}s -> {corpus_dir}")
    added = None
    if cfg.transform == "utk":
        added = add_utk_special_tokens(tok, cfg.utk)
        tok.save_pretrained(root / "tokenizer")
        typer.echo(f"tokenizer: {added} UtK special tokens added, vocab {len(tok)} -> {root / 'tokenizer'}")
    ds = PackedDataset.from_config(cfg, tok, corpus=corpus, with_meta=True, epochs=1)
    order = ds.order(0)
    # total for progress: the cap, else the epoch's tokens over seq_len (packing overhead makes it a lower bound)
    est = -(-int(corpus.lengths[order].sum()) // cfg.seq_len) if len(order) else 0
    total = min(cfg.max_sequences, est) if cfg.max_sequences else est
    stats = PackStats()
    shard_dir = root / "shards"
    buf: list = []
    written: list[tuple[Path, int]] = []
    t1 = time.perf_counter()

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
    if not written:
        raise ConfigError(f"{config}: packing produced no sequences (the corpus has {int(corpus.lengths.sum())} "
                          "tokens); add documents or lower seq_len")
    keep = {p.name for p, _ in written}
    for old in shard_dir.glob("shard-*.npz"):  # shards of an earlier, longer build
        if old.name not in keep:
            old.unlink()
    n_shards = len(written)
    _write_manifest(root, written, cfg.to_dict())
    secs = time.perf_counter() - t1
    lengths, src, names = corpus.lengths, corpus.doc_source, corpus.source_names
    report = {
        "config": cfg.to_dict(), "shards": n_shards, "pack_seconds": secs,
        "special_tokens_added": added, "vocab_size": len(tok),
        "mix": {"before": mix_report(lengths, src, names, None, cfg.upsample.buckets, cfg.upsample.threshold),
                "after": mix_report(lengths, src, names, order, cfg.upsample.buckets, cfg.upsample.threshold)},
        "packing": dict(ds.stats), "sequences": stats.report(),
    }
    write_json(root / "stats.json", report)
    atomic_write_text(root / "stats.md", _markdown(report))
    _plot(report, root / "knot_distances.png")
    pk = report["packing"]
    typer.echo(f"packed {pk['sequences']} sequences of {cfg.seq_len} into {n_shards} shard(s) in {secs:.1f}s: "
               f"{pk['tokens_text']} text + {pk['tokens_structure']} structure + {pk['tokens_pad']} pad tokens, "
               f"{pk['tokens_dropped']} dropped")
    if cfg.max_sequences and pk["sequences"] < cfg.max_sequences:
        typer.echo(f"note: max_sequences is {cfg.max_sequences} but one pass over the corpus "
                   f"({int(corpus.lengths[order].sum())} tokens) fills only {pk['sequences']}; add documents or "
                   "enable upsampling for more")
    typer.echo(f"report: {root / 'stats.md'}, {root / 'stats.json'}, {root / 'knot_distances.png'}; "
               f"checksums: {root / MANIFEST}")


@app.command("inspect")
@friendly_errors
def inspect(shard: Path = typer.Argument(..., help="a shard file written by `longkit data build`"),
            index: int = typer.Option(0, min=0, help="which sample of the shard"),
            tokenizer: Optional[str] = typer.Option(None, help="tokenizer (default: <build>/tokenizer or the config's)"),
            width: int = typer.Option(160, min=20, max=100_000, help="characters shown per run of text"),
            runs: int = typer.Option(60, min=1, help="how many runs to show"),
            verify: bool = typer.Option(False, "--verify", help="check the shard's SHA-256 against the build manifest")
            ) -> None:
    """Print one packed sample with chunk text, knots, labels and loss masks made visible."""
    from longkit.data.render import render_sample
    from longkit.data.stats import read_shard
    from longkit.errors import InputError
    from longkit.io import read_json
    from longkit.models.load import load_tokenizer

    samples = read_shard(shard, verify=verify)
    if verify:
        typer.echo(f"verified: {shard} matches its SHA-256 in the build manifest", err=True)
    if index >= len(samples):
        raise InputError(f"--index {index}: {shard} holds samples 0..{len(samples) - 1}")
    root = shard.resolve().parent.parent
    if tokenizer is None:
        if (root / "tokenizer").is_dir():
            tokenizer = str(root / "tokenizer")
        elif (root / "stats.json").exists():
            rep = read_json(root / "stats.json", "build report")
            tokenizer = rep.get("config", {}).get("tokenizer") if isinstance(rep, dict) else None
            if not isinstance(tokenizer, str):
                raise InputError(f"{root / 'stats.json'}: no config.tokenizer; pass --tokenizer")
        else:
            raise InputError(f"{shard}: cannot find the build's tokenizer; pass --tokenizer")
    if Path(tokenizer).is_dir() and not (Path(tokenizer) / "config.json").exists():
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise InputError(f"--tokenizer {tokenizer}: cannot load a tokenizer from it ({exc})") from None
    else:
        tok = load_tokenizer(tokenizer)
    typer.echo(render_sample(samples[index], tok, width=width, max_parts=runs))
