"""`longkit rag index / ask / info / delete`. (`rag tune` and `eval rag-vs-long` run an evaluation sweep,
so they live in `longkit.eval.rag_cli`; the options shared with them are defined here.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from longkit.cli_backend import API_KEY, BACKEND, BASE_URL, MODEL, backend_spec, check_backend
from longkit.cli_common import friendly_errors
from longkit.models.defaults import DEFAULT_EMBEDDER

if TYPE_CHECKING:
    from longkit.backends.base import Backend
    from longkit.rag.chunk import ChunkConfig
    from longkit.rag.embed import _Base

app = typer.Typer(no_args_is_help=True)

STYLE_HELP = (
    "auto (default: the ChatQA format for ChatQA-family models, the model's own chat template "
    "otherwise) | chatqa | chat."
)
# the shared backend options (longkit.cli_backend), under the names `longkit.eval.rag_cli` imports
_MODEL, _BACKEND, _BASE_URL, _API_KEY = MODEL, BACKEND, BASE_URL, API_KEY


def check_choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    """Refuse a value outside `allowed`, naming the option (checked before any model is loaded)."""
    from longkit.errors import ConfigError

    if value not in allowed:
        raise ConfigError(f"{option}: expected one of {', '.join(allowed)}, got '{value}'")
    return value


def make_generator(
    kind: str,
    model: str | None,
    base_url: str | None,
    api_key: str | None = None,
    max_context: int | None = None,
    batch_size: int = 1,
) -> Backend:
    """The generation backend named by the shared --backend/--model/--base-url/--api-key options."""
    return backend_spec(kind, model, base_url, api_key, max_context=max_context, batch_size=batch_size).build()


def say(line: str) -> None:
    """A note for the user on stderr (stdout stays machine-readable)."""
    print(line, file=sys.stderr, flush=True)


def _index_out(out: Path) -> Path:
    """--out for `rag index`: absent, empty, or an index; never a regular file or someone's other directory."""
    from longkit.errors import InputError
    from longkit.io import output_dir

    if out.is_dir() and not (out / "manifest.json").exists() and any(out.iterdir()):
        raise InputError(
            f"--out {out}: a directory that holds other files and no index; choose a new or empty directory"
        )
    return output_dir(out)


@app.command("index")
@friendly_errors
def index_cmd(
    docs: list[str] = typer.Argument(..., help="Text files, directories, JSONL files ({id, text}) or 'pydoc:topics'."),
    out: Path = typer.Option(..., "--out", "-o", help="Index directory (created, or extended/resumed if it exists)."),
    embedder: str = typer.Option(DEFAULT_EMBEDDER, help="Bundled name, sentence-transformers dir, 'decoder:PATH'."),
    chunk_size: int = typer.Option(
        200, min=1, max=1_000_000, help="Chunk length in units (tokens of the embedder, or words)."
    ),
    overlap: int = typer.Option(0, min=0, help="Units shared by consecutive chunks (less than --chunk-size)."),
    unit: str = typer.Option("token", help="token | word."),
    tolerance: float = typer.Option(
        0.15, min=0.0, max=0.99, help="Fraction of chunk size a chunk may end early to land on a boundary."
    ),
    on_overflow: str = typer.Option("error", help="Chunk longer than the embedder reads: error | split | pool."),
    kind: str = typer.Option("exact", help="exact | hnsw (large collections)."),
    commit_every: int = typer.Option(
        256,
        min=1,
        help="Chunks per commit (a document may span commits); a stopped "
        "run keeps every committed chunk and a rerun resumes after them.",
    ),
    batch_size: int = typer.Option(32, min=1, max=4096, help="Texts per embedding batch."),
    max_tokens: int | None = typer.Option(None, min=8, max=32768, help="Decoder embedders: token limit (up to 32768)."),
    verify: bool = typer.Option(False, "--verify", help="Check every segment's checksum of an existing index first."),
) -> None:
    """Chunk, embed and index documents; a rerun skips unchanged ones, replaces changed ones, resumes a stopped run."""
    from longkit.errors import ConfigError
    from longkit.rag.build import OVERFLOW_POLICIES, chunking_record
    from longkit.rag.chunk import ChunkConfig
    from longkit.rag.embed import load_embedder

    check_choice("--unit", unit, ("token", "word"))
    check_choice("--on-overflow", on_overflow, OVERFLOW_POLICIES)
    check_choice("--kind", kind, ("exact", "hnsw"))
    if overlap >= chunk_size:
        raise ConfigError(f"--overlap {overlap}: must be less than --chunk-size {chunk_size}")
    cfg = ChunkConfig(size=chunk_size, overlap=overlap, unit=unit, tolerance=tolerance)
    chunking = chunking_record(cfg, "embedder" if unit == "token" else "words", on_overflow)
    n_docs = _check_index_run(docs, out, chunking, kind, verify)
    kwargs: dict[str, Any] = {"batch_size": batch_size}
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    emb = load_embedder(embedder, **kwargs)
    _run_index(docs, out, emb, cfg, chunking, kind, commit_every, n_docs)


def _check_index_run(docs: list[str], out: Path, chunking: dict[str, Any], kind: str, verify: bool) -> int:
    """Read and check every input, the index and its settings before any write; returns the number of documents."""
    from longkit.errors import InputError
    from longkit.rag.build import scan_documents
    from longkit.rag.index import VectorIndex
    from longkit.rag.manifest import check_build_settings
    from longkit.rag.sources import iter_documents, list_sources

    list_sources(docs, exclude=out)  # every input exists and is readable (cheap checks first)
    if out.exists():
        _index_out(out)
    if (out / "manifest.json").exists():
        index = VectorIndex.open(out, verify=verify)  # read-only: a damaged index is reported before any work
        check_build_settings(index.manifest, out, kind=kind, chunking=chunking)  # the embedder's, once it loads
        if verify:
            say(f"{out}: every segment checksum matches the manifest")
    scan = scan_documents(iter_documents(docs, exclude=out))  # every document read, decoded and parsed
    if not scan.with_text:
        raise InputError(
            f"{' '.join(docs)}: no text to index" + (f" ({scan.documents} empty documents)" if scan.documents else "")
        )
    return scan.documents


def _run_index(
    docs: list[str],
    out: Path,
    emb: _Base,
    cfg: ChunkConfig,
    chunking: dict[str, Any],
    kind: str,
    commit_every: int,
    n_docs: int,
) -> None:
    """Index the (already checked) documents into out and print what the run did."""
    from longkit.errors import InputError
    from longkit.progress import Progress
    from longkit.rag.build import index_documents, open_or_create
    from longkit.rag.sources import iter_documents

    created = not (out / "manifest.json").exists()
    _index_out(out)
    index = open_or_create(out, emb, chunking, kind)  # refuses another embedder before writing
    before = len(index)
    try:
        with Progress("indexing", total=n_docs, unit="docs") as bar:
            stats = index_documents(
                index,
                iter_documents(docs, exclude=out),
                emb,
                cfg,
                on_overflow=chunking["on_overflow"],
                commit_every=commit_every,
                progress=lambda d, c: bar.advance(d - bar.done),
            )
    except BaseException:
        if created and len(index) == 0:  # nothing committed: leave no empty index behind
            _remove_index_dir(out)
        raise
    if len(index) == 0:
        if created:
            _remove_index_dir(out)
        raise InputError(
            f"{' '.join(docs)}: the documents hold no text to index"
            + (f" ({stats.empty} empty)" if stats.empty else "")
        )
    typer.echo(
        json.dumps(
            {
                "index": str(out),
                "chunks_before": before,
                **stats.to_dict(),
                "chunks": len(index),
                "documents": len(index.doc_rows()),
            },
            indent=2,
        )
    )


def _remove_index_dir(out: Path) -> list[str]:
    """Remove an index's own files and `rag tune`'s default output, then the empty directory; returns what is left."""
    import shutil

    own = {"manifest.json", "segments", "hnsw.faiss", "tune", ".hnsw.faiss.tmp"}
    for p in list(out.iterdir()) if out.is_dir() else []:
        if p.name in own or (p.name.startswith(".manifest.json.") and p.name.endswith(".tmp")):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    try:
        out.rmdir()
    except OSError:
        pass
    return sorted(p.name for p in out.iterdir()) if out.is_dir() else []


def _find_doc_id(doc_id: str, known: set[str]) -> str | None:
    """The indexed id a user means: the id itself, or a file path naming the document's resolved path."""
    if doc_id in known:
        return doc_id
    try:
        resolved = str(Path(doc_id).resolve())
    except (OSError, RuntimeError):  # not a usable path (too long, a symlink loop)
        return None
    return resolved if resolved in known else None


@app.command("delete")
@friendly_errors
def delete_cmd(
    index_dir: Path = typer.Argument(..., help="Index directory."),
    doc_ids: list[str] | None = typer.Argument(
        None, help="Document ids (as `rag info --documents` lists them) or the documents' file paths."
    ),
    everything: bool = typer.Option(False, "--all", help="Delete the whole index (its own files), to start fresh."),
) -> None:
    """Remove documents from an index, or the whole index with --all."""
    from longkit.errors import ConfigError, InputError
    from longkit.rag.index import VectorIndex

    if everything:
        if doc_ids:
            raise ConfigError("--all: deletes the whole index; expected no document ids with it")
        if not (index_dir / "manifest.json").is_file():  # only a directory that holds an index is emptied
            raise InputError(f"{index_dir}: no index here (missing manifest.json)")
        left = _remove_index_dir(index_dir)  # a damaged index can be deleted too: nothing of it is read
        typer.echo(json.dumps({"deleted": str(index_dir), "left": left}))
        return
    if not doc_ids:
        raise ConfigError(
            "Missing argument 'DOC_IDS...': expected the ids of the documents to remove, "
            "or --all to delete the whole index"
        )
    idx = VectorIndex.open(index_dir, writable=True)
    known = set(idx.doc_rows())
    found = {d: _find_doc_id(d, known) for d in doc_ids}
    missing = [d for d, f in found.items() if f is None]
    if len(missing) == len(found):
        raise InputError(
            f"{index_dir}: no document with id {', '.join(repr(d) for d in missing[:5])} "
            "(`longkit rag info --documents` lists the ids)"
        )
    removed = idx.delete(f for f in found.values() if f is not None)
    typer.echo(json.dumps({"removed_chunks": removed, "chunks": len(idx), "not_found": missing}))


@app.command("info")
@friendly_errors
def info_cmd(
    index_dir: Path = typer.Argument(..., help="Index directory."),
    verify: bool = typer.Option(False, "--verify", help="Check every segment file's checksum."),
    documents: bool = typer.Option(False, "--documents", help="Also list the document ids."),
) -> None:
    """Print an index's manifest summary."""
    from longkit.rag.index import VectorIndex

    idx = VectorIndex.open(index_dir, verify=verify)
    m = idx.manifest
    info = {
        "chunks": len(idx),
        "documents": len(idx.doc_rows()),
        "embedder": m["embedder"],
        "chunking": m.get("chunking"),
        "kind": m["kind"],
        "tuned": m.get("tuned"),
    }
    if verify:
        info["verified_files"] = idx.check_files(full=True)
    if documents:
        info["document_ids"] = sorted(idx.doc_rows())
    typer.echo(json.dumps(info, indent=2))


def read_history(path: Path | None) -> list[dict[str, str]]:
    """Earlier turns from a JSON file: a list of {role: user|assistant, content: str}; errors name file and item."""
    from longkit.errors import InputError
    from longkit.io import read_json

    if path is None:
        return []
    msgs = read_json(path, "conversation history")
    if not isinstance(msgs, list):
        raise InputError(f"{path}: expected a JSON list of {{role, content}} messages, got {type(msgs).__name__}")
    for i, m in enumerate(msgs):
        if (
            not isinstance(m, dict)
            or m.get("role") not in ("user", "assistant", "system")
            or not isinstance(m.get("content"), str)
        ):
            raise InputError(
                f'{path}: message {i}: expected {{"role": "user"|"assistant", "content": '
                f'"..."}}, got {json.dumps(m)[:80]}'
            )
    return msgs


@app.command("ask")
@friendly_errors
def ask_cmd(
    index_dir: Path = typer.Argument(..., help="Index directory."),
    question: str = typer.Argument(..., help="The question (the last user turn)."),
    model: str = MODEL,
    backend: str = BACKEND,
    base_url: str | None = BASE_URL,
    api_key: str | None = API_KEY,
    k: int | None = typer.Option(
        None, "--k", "-k", min=1, max=10_000, help="Chunks to retrieve (default: tuned budget, else 5)."
    ),
    budget: int | None = typer.Option(None, min=1, help="Retrieve chunks up to this many tokens instead of top-k."),
    order: str = typer.Option("score", help="score | position (order-preserving RAG)."),
    style: str = typer.Option("auto", help=STYLE_HELP),
    history: Path | None = typer.Option(None, help="JSON file with earlier turns [{role, content}, ...]."),
    history_turns: int = typer.Option(2, min=1, max=100, help="User turns joined as the retrieval query."),
    max_new_tokens: int = typer.Option(128, min=1, max=32768, help="Answer length limit."),
    full_answer: bool = typer.Option(True, "--full-answer/--short-answer", help="ChatQA answer instruction."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer and citations as JSON."),
) -> None:
    """Answer a question from an index; prints the answer and the chunks used."""
    from longkit.errors import ConfigError, InputError
    from longkit.rag.index import VectorIndex
    from longkit.rag.pipeline import FULL_ANSWER, SHORT_ANSWER, RagPipeline
    from longkit.rag.prompt import STYLES

    check_backend(backend)
    check_choice("--order", order, ("score", "position"))
    check_choice("--style", style, STYLES)
    if k is not None and budget is not None:
        raise ConfigError("--k and --budget: give one of them, not both")
    if not question.strip():
        raise InputError("question: is empty")
    messages = read_history(history) + [{"role": "user", "content": question}]
    VectorIndex.open(index_dir)  # a missing or damaged index is reported before the model loads
    gen = make_generator(backend, model, base_url, api_key)
    pipe = RagPipeline.from_index(
        index_dir,
        gen,
        top_k=k,
        token_budget=budget,
        order=order,
        style=style,
        max_new_tokens=max_new_tokens,
        history_turns=history_turns,
        instruction=FULL_ANSWER if full_answer else SHORT_ANSWER,
    )
    ans = pipe.answer(messages if len(messages) > 1 else question)
    if as_json:
        typer.echo(
            json.dumps(
                {**ans.to_dict(), "empty": not ans.text.strip(), "style": pipe.settings.style},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    typer.echo(ans.text if ans.text.strip() else "(empty answer)")
    if not ans.text.strip():
        say(
            f"note: the model gave an empty answer with the {pipe.settings.style} prompt style; "
            f"try --style {'chat' if pipe.settings.style == 'chatqa' else 'chatqa'}"
        )
    typer.echo("")
    typer.secho(
        f"chunks used ({len(ans.hits)}, {ans.context_tokens} context tokens"
        + (f", {ans.dropped} dropped to fit the window" if ans.dropped else "")
        + "):",
        bold=True,
    )
    for h in ans.hits:
        preview = " ".join(h.chunk.text.split())[:160]
        typer.echo(
            f"  [{h.rank + 1}] {h.chunk.doc_id} #{h.chunk.position} chars {h.chunk.start}-{h.chunk.end} "
            f"score {h.score:.3f}: {preview}"
        )
