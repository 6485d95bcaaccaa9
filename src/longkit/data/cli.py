"""`longkit data ...` sub-commands."""

from __future__ import annotations

from pathlib import Path

import typer

from longkit.cli_common import friendly_errors

app = typer.Typer(no_args_is_help=True)


@app.command("build")
@friendly_errors
def build(
    config: Path = typer.Argument(..., help="data config YAML (see configs/data/)"),
    out: Path | None = typer.Option(None, help="output folder (default: the config's out)"),
    max_sequences: int | None = typer.Option(None, min=1, help="stop after this many sequences"),
    num_proc: int | None = typer.Option(None, min=1, max=512, help="tokenization processes"),
    verify: bool = typer.Option(False, "--verify", help="check a reused corpus's SHA-256s, not only sizes"),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="rebuild an output made with other settings in place (its corpus is "
        "reused when the tokenizer and sources match)",
    ),
) -> None:
    """Tokenize the sources once, upsample, transform and pack; write shards, a checksummed manifest and a report.

    Into an output holding this same build: already complete, nothing written. Another config is refused by
    field (--overwrite rebuilds in place); edited source files are tokenized again."""
    from longkit.data.build import build as run_build

    run_build(
        config,
        out=out,
        max_sequences=max_sequences,
        num_proc=num_proc,
        verify=verify,
        overwrite=overwrite,
        log=typer.echo,
        warn=lambda line: typer.secho(line, fg="yellow", err=True),
    )


@app.command("inspect")
@friendly_errors
def inspect(
    shard: Path = typer.Argument(..., help="a shard file written by `longkit data build`"),
    index: int = typer.Option(0, min=0, help="which sample of the shard"),
    tokenizer: str | None = typer.Option(None, help="tokenizer (default: <build>/tokenizer or the config's)"),
    width: int = typer.Option(160, min=20, max=100_000, help="characters shown per run of text"),
    runs: int = typer.Option(60, min=1, help="how many runs to show"),
    verify: bool = typer.Option(False, "--verify", help="check the shard's SHA-256 against the build manifest"),
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
    _check_shard_tokenizer(root, tok, tokenizer)
    typer.echo(render_sample(samples[index], tok, width=width, max_parts=runs))


def _check_shard_tokenizer(root: Path, tok: object, name: str) -> None:
    """The shards' ids mean tokens only for the tokenizer that made the build's corpus: another one is refused
    (it would print other words) — its appended UtK tokens aside."""
    from longkit.data.reuse import CorpusOrigin, tokenizer_mismatch
    from longkit.errors import InputError

    origin = CorpusOrigin.read(root / "corpus")
    why = None if origin is None else tokenizer_mismatch(origin, tok, name)
    if why:
        raise InputError(
            f"--tokenizer {name}: the shards of {root} hold ids of another tokenizer: {why}; leave "
            "--tokenizer out to read them with the build's own"
        )
