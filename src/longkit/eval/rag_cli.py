"""`longkit eval rag-vs-long` and `longkit rag tune`: both run the RAG-versus-long-context sweep, an
evaluation, so they live in eval/ (which may use rag/) and are registered on the two command groups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from longkit.cli_common import friendly_errors, parse_int_list
from longkit.rag.cli import _API_KEY, _BACKEND, _BASE_URL, _MODEL, STYLE_HELP, check_choice, make_generator, say

_METRIC_HELP = "token_f1 | exact_match | substring_match."
_CHUNK_SIZES = typer.Option("300,600,1200", help="Chunk sizes in generator tokens.")
_TOP_KS = typer.Option("5,10,20,40", help="Top-k values.")


def _positive_list(text: str, option: str) -> list[int]:
    from longkit.errors import ConfigError

    values = parse_int_list(text, option)
    if not values:
        raise ConfigError(f"{option}: give at least one value")
    bad = [v for v in values if v < 1]
    if bad:
        raise ConfigError(f"{option}: every value must be >= 1, got {bad[0]}")
    return sorted(set(values), key=values.index)


def _sweep(qa: Path, model: str, backend: str, base_url: str | None, api_key: str | None, embedder: str,
           chunk_sizes: str, top_ks: str, out: Path, order: str, style: str, metric: str, max_new_tokens: int,
           batch_size: int, limit: int | None, max_context: int | None, include_long: bool = True,
           estimate_only: bool = False, check: Any = None) -> dict[str, Any]:
    """Validate everything cheap first (options, QA file, output directory), then load models and run."""
    from longkit.eval.rag_vs_long import METRICS, describe_estimate, load_qa, run_rag_vs_long
    from longkit.io import output_dir
    from longkit.rag.embed import load_embedder
    from longkit.rag.pipeline import RagSettings
    from longkit.rag.prompt import STYLES

    check_choice("--order", order, ("score", "position"))
    check_choice("--style", style, STYLES)
    check_choice("--metric", metric, METRICS)
    sizes = _positive_list(chunk_sizes, "--chunk-sizes")
    ks = _positive_list(top_ks, "--top-ks")
    items = load_qa(qa, limit=limit)
    output_dir(out)
    settings = RagSettings(order=order, style=style, max_new_tokens=max_new_tokens)
    gen = make_generator(backend, model, base_url, api_key, max_context=max_context, batch_size=batch_size)
    native = getattr(getattr(getattr(gen, "model", None), "config", None), "max_position_embeddings", None)
    if max_context is not None and isinstance(native, int) and max_context > native:
        from longkit.errors import ConfigError

        raise ConfigError(f"--max-context {max_context}: beyond the model's {native} positions; "
                          "extend the model first (longkit model extend) or give a smaller window")
    if check is not None:
        check(gen, sizes, ks)
    emb = load_embedder(embedder)
    say(f"{len(items)} questions x ({len(sizes)} chunk sizes x {len(ks)} top-k" + (" + long context" if include_long
                                                                                    else "") + "); measuring...")
    return run_rag_vs_long(items, gen, emb, out_dir=out, chunk_sizes=sizes, top_ks=ks, settings=settings,
                           metric=metric, batch_size=batch_size, model_name=model, progress=True,
                           include_long=include_long, on_estimate=lambda e: say(describe_estimate(e)),
                           estimate_only=estimate_only)


def _empty_note(summary: dict[str, Any]) -> None:
    if summary.get("empty_answers"):
        say(f"note: {summary['empty_answers']} of {summary['answers']} answers are empty "
            f"(prompt style {summary.get('prompt_style')}); see the 'empty answers' column")


def register(rag_app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add `rag tune` to the rag group and `rag-vs-long` to the eval group."""

    @rag_app.command("tune")
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
        answer_budget: int | None = typer.Option(None, min=1, max=32768, help="Answer tokens `rag ask` will reserve "
                                                 "(default: 128, its --max-new-tokens); the chosen budget leaves room for them."),
        batch_size: int = typer.Option(4, min=1, max=1024, help="Prompts per backend call."),
        limit: int | None = typer.Option(None, min=1, help="Use only the first N questions."),
        max_context: int | None = typer.Option(None, min=64, help="Override the model's context window."),
    ) -> None:
        """Pick the cheapest chunk size x k within a tolerance of the best accuracy; record it in the index.

        The choice never exceeds the model's window minus the answer budget."""
        from longkit.rag.index import VectorIndex
        from longkit.rag.tune import choose_setting, max_budget

        index = VectorIndex.open(index_dir, writable=True)  # fail early on a missing or damaged index
        reserve = answer_budget or 128

        def fits(gen: Any, sizes: list[int], ks: list[int]) -> None:  # before any long work
            from longkit.errors import ConfigError

            room = max_budget(gen.max_context, reserve)
            if min(sizes) * min(ks) > room:
                raise ConfigError(f"--chunk-sizes/--top-ks: every swept budget exceeds the {room} tokens a "
                                  f"{gen.max_context}-token window leaves after {reserve} answer tokens "
                                  f"(smallest: {min(sizes)} x {min(ks)}); sweep smaller values")

        summary = _sweep(qa, model, backend, base_url, api_key, index.manifest["embedder"]["name"], chunk_sizes,
                         top_ks, out or index_dir / "tune", order, style, metric, max_new_tokens, batch_size, limit,
                         max_context, check=fits)
        window = int(summary["max_context"])
        max_budget(window, reserve)  # a clear error when the answer budget alone fills the window
        choice = choose_setting(summary, tolerance, max_context=window, answer_budget=reserve)
        choice.update(model=model, qa=str(qa), metric=metric, prompt_style=summary.get("prompt_style"),
                      empty_answers=summary.get("empty_answers", 0), answers=summary.get("answers", 0))
        index.update_manifest(tuned=choice)
        typer.echo(json.dumps(choice, indent=2))
        _empty_note(summary)
        skipped = [r for r in summary["rag"] if r["n"] and r["chunk_size"] * r["top_k"] > choice["max_budget"]]
        if skipped:
            say(f"note: {len(skipped)} swept settings exceed the {choice['max_budget']}-token budget this "
                f"{window}-token window leaves after {reserve} answer tokens and were not considered")
        if choice["long_context_beats_rag"]:
            typer.secho("feeding the whole document beats every RAG setting for this model and QA set", fg="yellow")
        built = (index.manifest.get("chunking") or {}).get("size")
        if built and built != choice["chunk_size"]:
            say(f"note: the index uses {built}-token chunks; `rag ask` retrieves up to the tuned budget of "
                f"{choice['token_budget']} tokens. Rebuild with --chunk-size {choice['chunk_size']} to match exactly.")

    @eval_app.command("rag-vs-long")
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
        out: Path = typer.Option(Path("runs/rag-vs-long"), help="Output directory (resumable; a run with another "
                                 "backend, model or generation settings needs another directory)."),
        order: str = typer.Option("score", help="score | position."),
        style: str = typer.Option("auto", help=STYLE_HELP),
        metric: str = typer.Option("token_f1", help=_METRIC_HELP),
        max_new_tokens: int = typer.Option(32, min=1, max=32768, help="Answer length limit."),
        batch_size: int = typer.Option(4, min=1, max=1024, help="Prompts per backend call."),
        limit: int | None = typer.Option(None, min=1, help="Use only the first N questions (the run time scales with it)."),
        max_context: int | None = typer.Option(None, min=64, help="Override the model's context window."),
        estimate_only: bool = typer.Option(False, "--estimate-only", help="Measure a prefill, print the estimated "
                                           "run time and stop."),
    ) -> None:
        """RAG (chunk size x top-k) versus the whole document, with the same model (ChatQA 2, Figure 2).

        Prints an estimate of the run time, from a measured prefill, before the long work starts."""
        from longkit.eval.rag_vs_long import render_report

        summary = _sweep(qa, model, backend, base_url, api_key, embedder, chunk_sizes, top_ks, out, order, style,
                         metric, max_new_tokens, batch_size, limit, max_context, estimate_only=estimate_only)
        if estimate_only:
            typer.echo(json.dumps(summary["estimate"], indent=2))
            return
        typer.echo(render_report(summary))
        _empty_note(summary)
        typer.echo(f"plot: {out / 'rag_vs_long.png'}   summary: {out / 'summary.json'}")
