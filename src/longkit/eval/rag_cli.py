"""`longkit eval rag-vs-long` and `longkit rag tune`: both run the RAG-versus-long-context sweep, an
evaluation, so they live in eval/ (which may use rag/) and are registered on the two command groups.
Each parses its options into one object (`RagVsLongOptions`, `TuneOptions`), calls the library and prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from longkit.cli_common import friendly_errors, parse_int_list
from longkit.rag.cli import _API_KEY, _BACKEND, _BASE_URL, _MODEL, STYLE_HELP, say

if TYPE_CHECKING:
    from longkit.backends.spec import BackendSpec
    from longkit.eval.rag_tune import TuneResult

_METRIC_HELP = "token_f1 | exact_match | substring_match."
_CHUNK_SIZES = typer.Option("300,600,1200", help="Chunk sizes in generator tokens.")
_TOP_KS = typer.Option("5,10,20,40", help="Top-k values.")


def _positive_list(text: str, option: str) -> tuple[int, ...]:
    """A comma list of values >= 1, duplicates dropped (first kept)."""
    from longkit.eval.rag_vs_long import check_sizes

    values = check_sizes(option, parse_int_list(text, option))
    return tuple(sorted(set(values), key=values.index))


def _generator(
    backend: str, model: str, base_url: str | None, api_key: str | None, max_context: int | None, batch_size: int
) -> BackendSpec:
    """The --backend/--model/... options as a BackendSpec (its batch size is also the prompts per call)."""
    from longkit.cli_backend import backend_spec

    return backend_spec(backend, model, base_url, api_key, max_context=max_context, batch_size=batch_size)


def _empty_note(summary: dict[str, Any]) -> None:
    if summary.get("empty_answers"):
        say(
            f"note: {summary['empty_answers']} of {summary['answers']} answers are empty "
            f"(prompt style {summary.get('prompt_style')}); see the 'empty answers' column"
        )


def _print_tune(result: TuneResult) -> None:
    """The choice as JSON on stdout, then notes on stderr."""
    choice = result.choice
    window, reserve = choice["max_context"], choice["answer_budget"]
    typer.echo(json.dumps(choice, indent=2))
    _empty_note(result.summary)
    if result.skipped:
        say(
            f"note: {result.skipped} swept settings exceed the {choice['max_budget']}-token budget this "
            f"{window}-token window leaves after {reserve} answer tokens and were not considered"
        )
    if choice["long_context_beats_rag"]:
        typer.secho("feeding the whole document beats every RAG setting for this model and QA set", fg="yellow")
    built = result.index_chunk_size
    if built and built != choice["chunk_size"]:
        say(
            f"note: the index uses {built}-token chunks; `rag ask` retrieves up to the tuned budget of "
            f"{choice['token_budget']} tokens. Rebuild with --chunk-size {choice['chunk_size']} to match exactly."
        )


@friendly_errors
def tune_cmd(
    index_dir: Path = typer.Argument(..., help="Index whose manifest receives the choice."),
    qa: Path = typer.Option(..., "--qa", help="Dev QA set JSONL {document | document_path, question, answers}."),
    model: str = _MODEL,
    backend: str = _BACKEND,
    base_url: str | None = _BASE_URL,
    api_key: str | None = _API_KEY,
    chunk_sizes: str = _CHUNK_SIZES,
    top_ks: str = _TOP_KS,
    tolerance: float = typer.Option(0.02, min=0.0, max=1.0, help="Accept settings within this much of the best score."),
    out: Path | None = typer.Option(None, help="Sweep directory (default: INDEX/tune)."),
    order: str = typer.Option("score", help="score | position."),
    style: str = typer.Option("auto", help=STYLE_HELP),
    metric: str = typer.Option("token_f1", help=_METRIC_HELP),
    max_new_tokens: int = typer.Option(32, min=1, max=32768, help="Answer length limit while tuning."),
    answer_budget: int | None = typer.Option(
        None,
        min=1,
        max=32768,
        help="Answer tokens `rag ask` will reserve "
        "(default: 128, its --max-new-tokens); the chosen budget leaves room "
        "for them.",
    ),
    batch_size: int = typer.Option(4, min=1, max=1024, help="Prompts per backend call."),
    limit: int | None = typer.Option(None, min=1, help="Use only the first N questions."),
    max_context: int | None = typer.Option(None, min=64, help="Override the model's context window."),
) -> None:
    """Pick the cheapest chunk size x k within a tolerance of the best accuracy; record it in the index.

    The choice never exceeds the model's window minus the answer budget."""
    from longkit.eval.rag_tune import TuneOptions, tune

    options = TuneOptions(
        index=index_dir,
        qa=qa,
        generator=_generator(backend, model, base_url, api_key, max_context, batch_size),
        chunk_sizes=_positive_list(chunk_sizes, "--chunk-sizes"),
        top_ks=_positive_list(top_ks, "--top-ks"),
        tolerance=tolerance,
        out=out,
        order=order,
        style=style,
        metric=metric,
        max_new_tokens=max_new_tokens,
        answer_budget=answer_budget,
        limit=limit,
    )
    _print_tune(tune(options, log=say, progress=True))


@friendly_errors
def rag_vs_long_cmd(
    qa: Path = typer.Argument(..., help="QA set JSONL {document | document_path, question, answers}."),
    model: str = _MODEL,
    backend: str = _BACKEND,
    base_url: str | None = _BASE_URL,
    api_key: str | None = _API_KEY,
    embedder: str = typer.Option("all-minilm-l6-v2", help="Retriever embedder."),
    chunk_sizes: str = _CHUNK_SIZES,
    top_ks: str = _TOP_KS,
    out: Path = typer.Option(
        Path("runs/rag-vs-long"),
        help="Output directory (resumable; a run with another "
        "backend, model or generation settings needs another directory).",
    ),
    order: str = typer.Option("score", help="score | position."),
    style: str = typer.Option("auto", help=STYLE_HELP),
    metric: str = typer.Option("token_f1", help=_METRIC_HELP),
    max_new_tokens: int = typer.Option(32, min=1, max=32768, help="Answer length limit."),
    batch_size: int = typer.Option(4, min=1, max=1024, help="Prompts per backend call."),
    limit: int | None = typer.Option(None, min=1, help="Use only the first N questions (the run time scales with it)."),
    max_context: int | None = typer.Option(None, min=64, help="Override the model's context window."),
    estimate_only: bool = typer.Option(
        False, "--estimate-only", help="Measure a prefill, print the estimated run time and stop."
    ),
) -> None:
    """RAG (chunk size x top-k) versus the whole document, with the same model (ChatQA 2, Figure 2).

    Prints an estimate of the run time, from a measured prefill, before the long work starts."""
    from longkit.eval.rag_vs_long import RagVsLongOptions, render_report, run_rag_vs_long

    options = RagVsLongOptions(
        qa=qa,
        generator=_generator(backend, model, base_url, api_key, max_context, batch_size),
        embedder=embedder,
        chunk_sizes=_positive_list(chunk_sizes, "--chunk-sizes"),
        top_ks=_positive_list(top_ks, "--top-ks"),
        out=out,
        order=order,
        style=style,
        metric=metric,
        max_new_tokens=max_new_tokens,
        limit=limit,
        estimate_only=estimate_only,
    )
    summary = run_rag_vs_long(options, log=say, progress=True)
    if estimate_only:
        typer.echo(json.dumps(summary["estimate"], indent=2))
        return
    typer.echo(render_report(summary))
    _empty_note(summary)
    typer.echo(f"plot: {out / 'rag_vs_long.png'}   summary: {out / 'summary.json'}")


def register(rag_app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add `rag tune` to the rag group and `rag-vs-long` to the eval group."""
    rag_app.command("tune")(tune_cmd)
    eval_app.command("rag-vs-long")(rag_vs_long_cmd)
