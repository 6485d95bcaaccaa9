"""`longkit eval ...` sub-commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from longkit.cli_common import friendly_errors

app = typer.Typer(no_args_is_help=True)


def _needle_command(task_name: str, doc: str):  # noqa: ANN202  (typer builds the signature)
    @friendly_errors
    def command(
        model: str | None = typer.Option(None, "--model", "-m", help="Model name, GGUF file, directory or served id."),
        backend: str | None = typer.Option(None, help="hf | openai | vllm."),
        base_url: str | None = typer.Option(None, help="OpenAI-compatible server URL (openai backend)."),
        tokenizer: str | None = typer.Option(None, help="Tokenizer to measure lengths with (openai backend)."),
        lengths: str | None = typer.Option(None, help="Context lengths: 1024,2048 or linspace:1024:8192:8."),
        depths: str | None = typer.Option(None, help="Needle depths in percent: 0,50,100 or linspace:0:100:5."),
        haystack: str | None = typer.Option(None, help="pydoc | noise | a directory of .txt files."),
        template: str | None = typer.Option(None, help="question-after | question-both | question-before | custom."),
        needle: list[str] | None = typer.Option(None, help="Needle text (repeat for multiple needles)."),
        question: str | None = typer.Option(None, help="Question asked about the needle(s)."),
        answer: list[str] | None = typer.Option(None, help="Reference answer(s) (repeat)."),
        answer_budget: int | None = typer.Option(None, help="Tokens reserved for the answer."),
        batch_size: int | None = typer.Option(None, help="Prompts per backend call."),
        allow_extrapolation: bool | None = typer.Option(None, "--allow-extrapolation",
                                                        help="Allow lengths beyond the context window."),
        judge_model: str | None = typer.Option(None, help="Also score with an LLM judge (any backend)."),
        seed: int | None = typer.Option(None, help="Seed for passkeys."),
        out: str | None = typer.Option(None, help="Output directory (results.jsonl, summary.json, report.md)."),
        config: Path | None = typer.Option(None, "--config", "-c", help="YAML config; options override it."),
    ) -> None:
        from longkit.config import load_config
        from longkit.eval.needle_run import NeedleRunConfig, run_needles

        overrides = dict(model=model, backend=backend, base_url=base_url, tokenizer=tokenizer, lengths=lengths,
                         depths=depths, haystack=haystack, template=template, needles=needle or None,
                         question=question, answers=answer or None, answer_budget=answer_budget,
                         batch_size=batch_size, allow_extrapolation=allow_extrapolation, judge_model=judge_model,
                         seed=seed, out=out or (None if config else f"runs/{task_name}"))
        cfg = load_config(NeedleRunConfig, config, overrides)
        summary = run_needles(cfg, task_name)
        typer.echo(json.dumps({"overall": summary["overall"], "by_length": summary["by"].get("length", {})}, indent=2))
        typer.echo(f"report: {Path(cfg.out) / 'report.md'}")

    command.__doc__ = doc
    return command


app.command("niah")(_needle_command(
    "niah", "Needle-in-a-Haystack over context lengths x depths (ChatQA 2's needle by default)."))
app.command("passkey")(_needle_command(
    "passkey", "Passkey retrieval: 'The pass key is {key}. Remember it. {key} is the pass key.'"))
