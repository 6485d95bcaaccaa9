"""SFT commands that live under `longkit data` (e.g. `data synth-long`)."""

from __future__ import annotations

import typer

from longkit.cli_common import friendly_errors


def register_data_commands(data_app: typer.Typer) -> None:
    """Add SFT data commands to the data app."""

    @data_app.command("synth-long")
    @friendly_errors
    def synth_long(
        inputs: list[str] = typer.Argument(..., help="JSONL files of {document, summary, qa: [{question, answer}]}."),
        out: str = typer.Option(..., "--out", help="Output SFT JSONL (ChatQA format rows: context + messages)."),
        lengths: str = typer.Option("32768,65536,131072", "--lengths", help="Target context lengths in tokens."),
        tokenizer: str = typer.Option("smollm2-135m-instruct", "--tokenizer", help="Tokenizer that counts tokens."),
        qa_per_sample: int = typer.Option(1, "--qa-per-sample", help="QA pairs per sample (as a multi-turn chat)."),
        no_fill: bool = typer.Option(False, "--no-fill", help="Do not pad short documents with other documents."),
        seed: int = typer.Option(0, "--seed"),
        document_field: str = typer.Option("document", "--document-field"),
        summary_field: str = typer.Option("summary", "--summary-field"),
        qa_field: str = typer.Option("qa", "--qa-field"),
    ) -> None:
        """Insert each summary into its long source at a random sentence boundary (NarrativeQA-style long SFT)."""
        from longkit.cli_common import parse_int_list
        from longkit.io import iter_jsonl, write_jsonl
        from longkit.models.load import load_tokenizer
        from longkit.sft.synth import SynthOptions, synthesize

        opts = SynthOptions(lengths=tuple(parse_int_list(lengths, "--lengths")), qa_per_sample=qa_per_sample,
                            fill=not no_fill, seed=seed, document_field=document_field,
                            summary_field=summary_field, qa_field=qa_field)
        rows = [(f"{p}:{n}", r) for p in inputs for n, r in iter_jsonl(p)]
        tok = load_tokenizer(tokenizer)
        samples = list(synthesize(rows, tok, opts))
        write_jsonl(out, samples)
        typer.echo(f"wrote {len(samples)} samples to {out}")
