"""SFT commands that live under `longkit data` (e.g. `data synth-long`)."""

from __future__ import annotations

import typer

from longkit.cli_common import friendly_errors
from longkit.models.defaults import DEFAULT_GENERATOR


def register_data_commands(data_app: typer.Typer) -> None:
    """Add SFT data commands to the data app."""

    @data_app.command("synth-long")
    @friendly_errors
    def synth_long(
        inputs: list[str] = typer.Argument(..., help="JSONL files of {document, summary, qa: [{question, answer}]}."),
        out: str = typer.Option(..., "--out", help="Output SFT JSONL (ChatQA format rows: context + messages)."),
        lengths: str = typer.Option("32768,65536,131072", "--lengths", help="Target context lengths in tokens."),
        tokenizer: str = typer.Option(DEFAULT_GENERATOR, "--tokenizer", help="Tokenizer that counts tokens."),
        qa_per_sample: int = typer.Option(
            1, "--qa-per-sample", min=1, max=1000, help="QA pairs per sample (as a multi-turn chat)."
        ),
        no_fill: bool = typer.Option(False, "--no-fill", help="Do not pad short documents with other documents."),
        seed: int = typer.Option(0, "--seed", min=0),
        document_field: str = typer.Option("document", "--document-field"),
        summary_field: str = typer.Option("summary", "--summary-field"),
        qa_field: str = typer.Option("qa", "--qa-field"),
    ) -> None:
        """Insert each summary into its long source at a random sentence boundary (NarrativeQA-style long SFT)."""
        from pathlib import Path

        from longkit.cli_common import parse_int_list
        from longkit.errors import InputError
        from longkit.io import iter_jsonl, output_file, write_json, write_jsonl
        from longkit.models.load import load_tokenizer
        from longkit.progress import Progress
        from longkit.sft.synth import SynthOptions, summarize, synthesize, validate_options

        opts = SynthOptions(
            lengths=tuple(parse_int_list(lengths, "--lengths")),
            qa_per_sample=qa_per_sample,
            fill=not no_fill,
            seed=seed,
            document_field=document_field,
            summary_field=summary_field,
            qa_field=qa_field,
        )
        validate_options(opts)
        out_path = output_file(out, "--out")
        if any(Path(p).resolve() == out_path.resolve() for p in inputs):
            raise InputError(f"--out {out}: is also an input; choose another output file")
        rows = [(f"{p}:{n}", r) for p in inputs for n, r in iter_jsonl(p)]
        if not rows:
            raise InputError(f"{', '.join(inputs)}: no rows (expected JSONL rows of {{document, summary, qa}})")
        tok = load_tokenizer(tokenizer)
        with Progress("synth-long", total=len(rows) * len(opts.lengths), unit="samples") as prog:
            samples = list(synthesize(rows, tok, opts, progress=prog))
        write_jsonl(out_path, samples)
        report = summarize(samples, opts.lengths)
        write_json(
            out_path.with_name(out_path.name + ".report.json"),
            {
                "inputs": inputs,
                "rows": len(rows),
                "asked": len(rows) * len(opts.lengths),
                "written": len(samples),
                "by_length": report,
            },
        )
        typer.echo(
            f"wrote {len(samples)} of {len(rows) * len(opts.lengths)} samples asked "
            f"({len(rows)} documents x {len(opts.lengths)} lengths) to {out}"
        )
        for t, r in report.items():
            ct = r["context_tokens"]
            line = (
                f"  length {t}: {r['samples']} samples, context tokens min {ct['min']} / median {ct['median']} "
                f"/ max {ct['max']}"
            )
            if r["short"]:
                why = "; ".join(f"{n} because {k}" for k, n in r["reasons"].items())
                line += f"; {r['short']} shorter than 90% of the target: {why}"
            typer.echo(line)
