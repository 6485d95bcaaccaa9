"""`longkit rag ...` sub-commands, and `longkit eval rag-vs-long`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from longkit.cli_common import friendly_errors, parse_int_list

app = typer.Typer(no_args_is_help=True)

_MODEL = typer.Option("smollm2-135m-instruct", "--model", "-m", help="Generator: bundled name, GGUF, directory or served id.")
_BACKEND = typer.Option("hf", help="hf | openai | vllm.")
_BASE_URL = typer.Option(None, help="OpenAI-compatible server URL (openai backend).")


def _backend(kind: str, model: str, base_url: str | None, max_context: int | None = None, batch_size: int = 1) -> Any:
    from longkit.backends import make_backend

    return make_backend(kind, model, base_url=base_url, max_context=max_context, batch_size=batch_size)


def _progress_bar(description: str):  # noqa: ANN202
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=False)


@app.command("index")
@friendly_errors
def index_cmd(
    docs: list[str] = typer.Argument(..., help="Text files, directories, JSONL files ({id, text}) or 'pydoc:topics'."),
    out: Path = typer.Option(..., "--out", "-o", help="Index directory (created, or extended/resumed if it exists)."),
    embedder: str = typer.Option("all-minilm-l6-v2", help="Bundled name, sentence-transformers dir, 'decoder:PATH'."),
    chunk_size: int = typer.Option(200, help="Chunk length in units (tokens of the embedder, or words)."),
    overlap: int = typer.Option(0, help="Units shared by consecutive chunks."),
    unit: str = typer.Option("token", help="token | word."),
    tolerance: float = typer.Option(0.15, help="Fraction of chunk size a chunk may end early to land on a boundary."),
    on_overflow: str = typer.Option("error", help="Chunk longer than the embedder reads: error | split | pool."),
    kind: str = typer.Option("exact", help="exact | hnsw (large collections)."),
    commit_every: int = typer.Option(256, help="Chunks per committed batch (an interrupted run resumes from the last)."),
    batch_size: int = typer.Option(32, help="Texts per embedding batch."),
    max_tokens: int | None = typer.Option(None, help="Decoder embedders: token limit (up to 32768)."),
) -> None:
    """Chunk, embed and index documents; rerunning skips unchanged documents and replaces changed ones."""
    from longkit.rag.build import chunking_record, index_documents, open_or_create
    from longkit.rag.chunk import ChunkConfig
    from longkit.rag.embed import load_embedder
    from longkit.rag.sources import iter_documents

    cfg = ChunkConfig(size=chunk_size, overlap=overlap, unit=unit, tolerance=tolerance)
    kwargs: dict[str, Any] = {"batch_size": batch_size}
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    emb = load_embedder(embedder, **kwargs)
    index = open_or_create(out, emb, chunking_record(cfg, "embedder" if unit == "token" else "words", on_overflow), kind)
    before = len(index)
    with _progress_bar("indexing") as bar:
        task = bar.add_task("indexing (docs committed)", total=None)
        stats = index_documents(index, iter_documents(docs), emb, cfg, on_overflow=on_overflow,
                                commit_every=commit_every, progress=lambda d, c: bar.update(task, completed=d))
    typer.echo(json.dumps({"index": str(out), "chunks_before": before, "chunks": len(index), **stats.to_dict()}, indent=2))


@app.command("delete")
@friendly_errors
def delete_cmd(index_dir: Path = typer.Argument(...), doc_ids: list[str] = typer.Argument(...)) -> None:
    """Remove documents (by id) from an index."""
    from longkit.rag.index import VectorIndex

    idx = VectorIndex.open(index_dir, writable=True)
    removed = idx.delete(doc_ids)
    typer.echo(json.dumps({"removed_chunks": removed, "chunks": len(idx)}))


@app.command("info")
@friendly_errors
def info_cmd(index_dir: Path = typer.Argument(...)) -> None:
    """Print an index's manifest summary."""
    from longkit.rag.index import VectorIndex

    idx = VectorIndex.open(index_dir)
    m = idx.manifest
    typer.echo(json.dumps({"chunks": len(idx), "documents": len(idx.doc_rows()), "embedder": m["embedder"],
                           "chunking": m.get("chunking"), "kind": m["kind"], "tuned": m.get("tuned")}, indent=2))


def _read_history(path: Path | None) -> list[dict[str, str]]:
    from longkit.errors import InputError

    if path is None:
        return []
    try:
        msgs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the conversation ({exc})") from None
    if not isinstance(msgs, list):
        raise InputError(f"{path}: expected a JSON list of {{role, content}} messages")
    return msgs


@app.command("ask")
@friendly_errors
def ask_cmd(
    index_dir: Path = typer.Argument(..., help="Index directory."),
    question: str = typer.Argument(..., help="The question (the last user turn)."),
    model: str = _MODEL,
    backend: str = _BACKEND,
    base_url: str | None = _BASE_URL,
    k: int | None = typer.Option(None, "--k", "-k", help="Chunks to retrieve (default: tuned budget, else 5)."),
    budget: int | None = typer.Option(None, help="Retrieve chunks up to this many tokens instead of top-k."),
    order: str = typer.Option("score", help="score | position (order-preserving RAG)."),
    style: str = typer.Option("chatqa", help="chatqa (ChatQA prompt) | chat (the model's chat template)."),
    history: Path | None = typer.Option(None, help="JSON file with earlier turns [{role, content}, ...]."),
    history_turns: int = typer.Option(2, help="User turns joined as the retrieval query."),
    max_new_tokens: int = typer.Option(128, help="Answer length limit."),
    full_answer: bool = typer.Option(True, "--full-answer/--short-answer", help="ChatQA answer instruction."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer and citations as JSON."),
) -> None:
    """Answer a question from an index; prints the answer and the chunks used."""
    from longkit.rag.pipeline import FULL_ANSWER, SHORT_ANSWER, RagPipeline

    gen = _backend(backend, model, base_url)
    pipe = RagPipeline.from_index(index_dir, gen, top_k=k, token_budget=budget, order=order, style=style,
                                  max_new_tokens=max_new_tokens, history_turns=history_turns,
                                  instruction=FULL_ANSWER if full_answer else SHORT_ANSWER)
    messages = _read_history(history) + [{"role": "user", "content": question}]
    ans = pipe.answer(messages if len(messages) > 1 else question)
    if as_json:
        typer.echo(json.dumps(ans.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(ans.text)
    typer.echo("")
    typer.secho(f"chunks used ({len(ans.hits)}, {ans.context_tokens} context tokens"
                + (f", {ans.dropped} dropped to fit the window" if ans.dropped else "") + "):", bold=True)
    for h in ans.hits:
        preview = " ".join(h.chunk.text.split())[:160]
        typer.echo(f"  [{h.rank + 1}] {h.chunk.doc_id} #{h.chunk.position} chars {h.chunk.start}-{h.chunk.end} "
                   f"score {h.score:.3f}: {preview}")


def _sweep(qa: Path, model: str, backend: str, base_url: str | None, embedder: str, chunk_sizes: str, top_ks: str,
           out: Path, order: str, style: str, metric: str, max_new_tokens: int, batch_size: int, limit: int | None,
           max_context: int | None, include_long: bool = True) -> dict[str, Any]:
    from longkit.rag.compare import load_qa, run_rag_vs_long
    from longkit.rag.embed import load_embedder
    from longkit.rag.pipeline import RagSettings

    items = load_qa(qa, limit=limit)
    sizes = parse_int_list(chunk_sizes, "--chunk-sizes")
    ks = parse_int_list(top_ks, "--top-ks")
    settings = RagSettings(order=order, style=style, max_new_tokens=max_new_tokens)
    emb = load_embedder(embedder)
    gen = _backend(backend, model, base_url, max_context=max_context, batch_size=batch_size)
    with _progress_bar("rag-vs-long") as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return run_rag_vs_long(items, gen, emb, out_dir=out, chunk_sizes=sizes, top_ks=ks, settings=settings,
                               metric=metric, batch_size=batch_size, model_name=model, progress=progress,
                               include_long=include_long)


@app.command("tune")
@friendly_errors
def tune_cmd(
    index_dir: Path = typer.Argument(..., help="Index whose manifest receives the choice."),
    qa: Path = typer.Option(..., "--qa", help="Dev QA set JSONL {document | document_path, question, answers}."),
    model: str = _MODEL,
    backend: str = _BACKEND,
    base_url: str | None = _BASE_URL,
    chunk_sizes: str = typer.Option("300,600,1200", help="Chunk sizes (generator tokens)."),
    top_ks: str = typer.Option("5,10,20,40", help="Top-k values."),
    tolerance: float = typer.Option(0.02, help="Accept settings within this much of the best score."),
    out: Path | None = typer.Option(None, help="Sweep directory (default: INDEX/tune)."),
    order: str = typer.Option("score", help="score | position."),
    style: str = typer.Option("chatqa", help="chatqa | chat."),
    metric: str = typer.Option("token_f1", help="token_f1 | exact_match | substring_match."),
    max_new_tokens: int = typer.Option(32, help="Answer length limit."),
    batch_size: int = typer.Option(4, help="Prompts per backend call."),
    limit: int | None = typer.Option(None, help="Use only the first N questions."),
) -> None:
    """Pick the cheapest chunk size x k within a tolerance of the best accuracy; record it in the index."""
    from longkit.rag.compare import choose_setting
    from longkit.rag.index import VectorIndex

    index = VectorIndex.open(index_dir, writable=True)  # fail early on a missing index
    summary = _sweep(qa, model, backend, base_url, index.manifest["embedder"]["name"], chunk_sizes, top_ks,
                     out or index_dir / "tune", order, style, metric, max_new_tokens, batch_size, limit, None)
    choice = choose_setting(summary, tolerance)
    choice.update(model=model, qa=str(qa), metric=metric)
    index.update_manifest(tuned=choice)
    typer.echo(json.dumps(choice, indent=2))
    if choice["long_context_beats_rag"]:
        typer.secho("feeding the whole document beats every RAG setting for this model and QA set", fg="yellow")
    built = (index.manifest.get("chunking") or {}).get("size")
    if built and built != choice["chunk_size"]:
        typer.echo(f"note: the index uses {built}-token chunks; `rag ask` retrieves up to the tuned budget of "
                   f"{choice['token_budget']} tokens. Rebuild with --chunk-size {choice['chunk_size']} to match exactly.")


def register_eval_commands(eval_app: typer.Typer) -> None:
    """Add RAG-backed commands (e.g. `eval rag-vs-long`) to the eval app."""

    @eval_app.command("rag-vs-long")
    @friendly_errors
    def rag_vs_long_cmd(
        qa: Path = typer.Argument(..., help="QA set JSONL {document | document_path, question, answers}."),
        model: str = _MODEL,
        backend: str = _BACKEND,
        base_url: str | None = _BASE_URL,
        embedder: str = typer.Option("all-minilm-l6-v2", help="Retriever embedder."),
        chunk_sizes: str = typer.Option("300,600,1200", help="Chunk sizes in generator tokens."),
        top_ks: str = typer.Option("5,10,20,40", help="Top-k values."),
        out: Path = typer.Option(Path("runs/rag-vs-long"), help="Output directory (resumable)."),
        order: str = typer.Option("score", help="score | position."),
        style: str = typer.Option("chatqa", help="chatqa | chat."),
        metric: str = typer.Option("token_f1", help="token_f1 | exact_match | substring_match."),
        max_new_tokens: int = typer.Option(32, help="Answer length limit."),
        batch_size: int = typer.Option(4, help="Prompts per backend call."),
        limit: int | None = typer.Option(None, help="Use only the first N questions."),
        max_context: int | None = typer.Option(None, help="Override the model's context window."),
    ) -> None:
        """RAG (chunk size x top-k) versus the whole document, with the same model (ChatQA 2, Figure 2)."""
        summary = _sweep(qa, model, backend, base_url, embedder, chunk_sizes, top_ks, out, order, style, metric,
                         max_new_tokens, batch_size, limit, max_context)
        from longkit.rag.compare import render_report

        typer.echo(render_report(summary))
        typer.echo(f"plot: {out / 'rag_vs_long.png'}   summary: {out / 'summary.json'}")
