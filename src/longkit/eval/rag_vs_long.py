"""RAG versus long context (ChatQA 2, Figure 2): one QA set answered with the whole document
(middle-truncated to the window) and with RAG over chunk sizes × top-k, scored with the evaluation
metrics, logged per sample (resumable), summarised and plotted. `longkit rag tune` runs the same sweep
and hands the summary to `longkit.rag.tune.choose_setting`.

An evaluation that uses RAG, so it lives in eval/ and reaches RAG through rag.pipeline and rag.build."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longkit.backends.base import Backend
from longkit.errors import ConfigError, InputError
from longkit.eval.runner import check_run_record, run_identity
from longkit.io import ResultLog, atomic_write_text, iter_jsonl, output_dir, write_json
from longkit.progress import Progress, _fmt_seconds
from longkit.rag.build import chunking_record, index_documents, open_or_create
from longkit.rag.chunk import ChunkConfig
from longkit.rag.embed import _Base
from longkit.rag.pipeline import Prepared, RagSettings, prepare_long, prepare_rag, resolved_style
from longkit.rag.retrieve import Retriever, query_from_messages
from longkit.rag.sources import doc_hash, resolve_document

DEFAULT_CHUNK_SIZES = (300, 600, 1200)
DEFAULT_TOP_KS = (5, 10, 20, 40)
METRICS = ("token_f1", "exact_match", "substring_match")


@dataclass
class QAItem:
    """One question about one document."""

    id: str
    question: str | list[dict[str, str]]
    answers: list[str]
    document: str

    @property
    def doc_id(self) -> str:
        """Stable id of the document (its content hash)."""
        return "doc-" + doc_hash(self.document)[:16]


def load_qa(path: str | Path, limit: int | None = None) -> list[QAItem]:
    """Read `{document | document_path, question, answers[, id]}` rows; errors name file and line."""
    from longkit.rag.prompt import as_messages

    path = Path(path)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit: expected a positive number of questions, got {limit}")
    items: list[QAItem] = []
    docs: dict[str, str] = {}
    seen: dict[str, int] = {}
    for lineno, row in iter_jsonl(path, required=("question", "answers")):
        where = f"{path}:{lineno}"
        q = row["question"]
        if not (isinstance(q, str) and q.strip()) and not (isinstance(q, list) and q):
            raise InputError(f"{where}: field 'question' must be a non-empty string or a list of messages")
        if isinstance(q, list):
            if not all(isinstance(m, dict) for m in q):
                raise InputError(f"{where}: field 'question': every message must be an object {{role, content}}")
            try:
                as_messages(q)
            except InputError as exc:
                raise InputError(f"{where}: field 'question': {exc}") from None
        qid = str(row.get("id", f"{path.name}:{lineno}"))
        if qid in seen:
            raise InputError(f"{where}: field 'id': '{qid}' already used on line {seen[qid]}; ids must be unique")
        seen[qid] = lineno
        answers = row["answers"]
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
            raise InputError(f"{where}: field 'answers' must be a non-empty list of strings")
        key = row.get("document_path") if isinstance(row.get("document_path"), str) else None
        if key is not None and key in docs:
            text = docs[key]
        else:
            text = resolve_document(row, path.parent, where)
            if key is not None:
                docs[key] = text
        items.append(QAItem(qid, q, answers, text))
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise InputError(f"{path}: no questions")
    return items


def _metric(name: str) -> Callable[[str, Sequence[str]], float]:
    from longkit.eval import metrics

    if name not in METRICS:
        raise ConfigError(f"metric must be one of {METRICS}, got '{name}'")
    return getattr(metrics, name)


def _setting_key(chunk_size: int | None, k: int | None) -> str:
    return "long" if chunk_size is None else f"rag-c{chunk_size}-k{k}"


def _prompt_key(prep: Prepared) -> str:
    r = prep.request
    body = r.prompt if r.prompt is not None else repr(r.messages)
    return hashlib.sha1(f"{r.max_new_tokens}|{r.stop}|{body}".encode()).hexdigest()


def run_rag_vs_long(
    items: Sequence[QAItem],
    backend: Backend,
    embedder: _Base,
    out_dir: str | Path | None = None,
    chunk_sizes: Sequence[int] = DEFAULT_CHUNK_SIZES,
    top_ks: Sequence[int] = DEFAULT_TOP_KS,
    settings: RagSettings | None = None,
    metric: str = "token_f1",
    include_long: bool = True,
    chunk_unit: str = "token",
    chunk_overlap: int = 0,
    batch_size: int = 8,
    model_name: str = "",
    progress: bool = False,
    on_estimate: Callable[[dict[str, Any]], None] | None = None,
    estimate_only: bool = False,
) -> dict[str, Any]:
    """Answer every item with the whole document and with RAG at each chunk size × k; returns the
    summary (also written to out_dir with per-sample results, a Markdown report and the plot).

    Chunks are cut with the generator's tokenizer, so chunk sizes and the plotted "retrieved tokens"
    are the tokens the model reads; chunks longer than the embedder's limit are embedded by window
    pooling (never truncated). Rerunning with the same out_dir skips what is already logged; an out_dir
    that holds a run with another backend, model or generation settings is refused (run.json).
    Before any long work, the run time is estimated from a measured prefill and passed to `on_estimate`
    (with `estimate_only`, the run stops there and the estimate is returned).
    """
    settings = settings or RagSettings()
    settings = dataclasses.replace(settings, style=resolved_style(settings.style, backend, model_name))
    score_fn = _metric(metric)
    if not items:
        raise InputError("the QA set is empty")
    if any(c < 1 for c in chunk_sizes) or any(k < 1 for k in top_ks):
        raise ConfigError("chunk sizes and top-k values must be >= 1")
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="longkit-rag-vs-long-")
        out_dir = tmp.name
    out = output_dir(out_dir)
    identity = run_identity(backend, model_name)
    identity["generation"].update(max_new_tokens=settings.max_new_tokens, style=settings.style,
                                  instruction=settings.instruction, order=settings.order,
                                  history_turns=settings.history_turns)
    check_run_record(out, {"kind": "rag-vs-long", **identity, "metric": metric, "embedder": embedder.name,
                           "chunking": {"unit": chunk_unit, "overlap": chunk_overlap}})
    log = ResultLog(out / "results.jsonl")
    docs = {it.doc_id: it.document for it in items}
    gen_tok = backend.tokenizer.hf

    long_jobs: list[tuple[str, QAItem, Prepared, int | None, int | None]] = []
    if include_long:
        for it in items:
            if f"long|{it.id}" not in log:
                long_jobs.append((f"long|{it.id}", it, prepare_long(it.document, it.question, backend, settings),
                                  None, None))
    pending_sizes = [size for size in chunk_sizes
                     if any(f"{_setting_key(size, k)}|{it.id}" not in log for it in items for k in top_ks)]
    n_rag = sum(1 for size in pending_sizes for it in items for k in top_ks
                if f"{_setting_key(size, k)}|{it.id}" not in log)
    if long_jobs or n_rag:
        est = estimate_run(backend, embedder, items, settings, long_jobs, pending_sizes, top_ks, log)
        if on_estimate is not None:
            on_estimate(est)
        if estimate_only:
            if tmp is not None:
                tmp.cleanup()
            return {"estimate": est}

    jobs = list(long_jobs)
    query_vecs = None
    for size in pending_sizes:
        cfg = ChunkConfig(size=size, overlap=chunk_overlap, unit=chunk_unit)
        record = chunking_record(cfg, "generator" if chunk_unit == "token" else "words", "pool")
        index = open_or_create(out / "indexes" / f"chunk-{size}", embedder, record)
        with Progress(f"indexing chunk size {size}", total=len(docs), unit="docs", enabled=progress) as bar:
            index_documents(index, docs.items(), embedder, cfg, tokenizer=gen_tok, on_overflow="pool",
                            commit_every=64, progress=lambda d, c: bar.advance(d - bar.done))
        retriever = Retriever(index, embedder)
        if query_vecs is None:
            qs = [query_from_messages(it.question, settings.history_turns) for it in items]
            query_vecs = dict(zip([it.id for it in items], embedder.embed_queries(qs)))
        for it in items:
            for k in top_ks:
                key = f"{_setting_key(size, k)}|{it.id}"
                if key in log:
                    continue
                s = dataclasses.replace(settings, top_k=k, token_budget=None)
                prep = prepare_rag(retriever, backend, it.question, s, doc_ids=[it.doc_id], query_vector=query_vecs[it.id])
                jobs.append((key, it, prep, size, k))

    # Settings that give the same prompt (e.g. large k capped by the window) are generated once.
    done_by_prompt = {r["prompt_key"]: r for r in log.records() if "prompt_key" in r}
    unique: dict[str, int] = {}
    for i, (_, _, prep, _, _) in enumerate(jobs):
        pk = _prompt_key(prep)
        if pk not in done_by_prompt:
            unique.setdefault(pk, i)
    todo = sorted(unique.values(), key=lambda i: len(str(jobs[i][2].request.prompt or jobs[i][2].request.messages)))
    completions: dict[str, Any] = {pk: (r["prediction"], r["prompt_tokens"]) for pk, r in done_by_prompt.items()}
    with Progress("generating", total=len(todo), unit="prompts", enabled=progress) as bar:
        for b in range(0, len(todo), batch_size):
            batch = todo[b:b + batch_size]
            outs = backend.generate([jobs[i][2].request for i in batch])
            for i, o in zip(batch, outs):
                pk = _prompt_key(jobs[i][2])
                completions[pk] = (o.text.strip(), o.prompt_tokens)
                _log(log, jobs[i], pk, completions[pk], score_fn)
            bar.advance(len(batch))
    for job in jobs:  # the duplicates
        if job[0] not in log:
            pk = _prompt_key(job[2])
            _log(log, job, pk, completions[pk], score_fn)

    summary = summarize(log.records(), items, chunk_sizes, top_ks, include_long)
    summary.update(metric=metric, model=identity["model"], backend=identity["backend"],
                   max_context=backend.max_context, embedder=embedder.name, n_questions=len(items),
                   prompt_style=settings.style, order=settings.order, max_new_tokens=settings.max_new_tokens)
    write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", render_report(summary))
    if tmp is None:
        plot_rag_vs_long(summary, out / "rag_vs_long.png")
    else:
        tmp.cleanup()
    return summary


def estimate_run(backend: Backend, embedder: _Base, items: Sequence[QAItem], settings: RagSettings,
                 long_jobs: Sequence[tuple], chunk_sizes: Sequence[int], top_ks: Sequence[int],
                 log: ResultLog | None = None) -> dict[str, Any]:
    """Seconds the run will take, from a measured prefill of its longest prompt, a measured decode step and
    a measured embedding batch; an upper bound (every answer is counted at its full token budget)."""
    from longkit.backends.base import GenerationRequest

    tok = backend.tokenizer
    # Prompt lengths: long-context prompts are built already; a RAG prompt is the question's prompt plus
    # at most chunk size × k tokens of context, capped by what the window leaves.
    lengths = [tok.count(tok.render(j[2].request)) for j in long_jobs]
    question_reqs = {it.id: prepare_long("", it.question, backend, settings).request for it in items}
    base = {i: tok.count(tok.render(r)) for i, r in question_reqs.items()}
    room = max(1, backend.max_context - settings.max_new_tokens)
    for size in chunk_sizes:
        for it in items:
            for k in top_ks:
                if log is None or f"{_setting_key(size, k)}|{it.id}" not in log:
                    lengths.append(min(room, base[it.id] + size * k))
    if not lengths:
        return {"prompts": 0, "seconds": 0.0}
    # The prefill is measured on the longest prompt there can be: a whole document cut to the window.
    if long_jobs:
        longest_req = max(long_jobs, key=lambda j: tok.count(tok.render(j[2].request)))[2].request
    else:
        longest_req = prepare_long(items[0].document, items[0].question, backend, settings).request
    short_req = min(question_reqs.values(), key=lambda r: tok.count(tok.render(r)))
    n_long = tok.count(tok.render(longest_req))
    n_short = tok.count(tok.render(short_req))

    def timed(req: GenerationRequest, new: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        c = backend.generate([dataclasses.replace(req, max_new_tokens=new, stop=[])])[0]
        return time.perf_counter() - t0, c.completion_tokens

    t_long, _ = timed(longest_req, 1)
    t_short, _ = timed(short_req, 1)
    steps = min(9, settings.max_new_tokens)
    t_dec, produced = timed(short_req, steps) if steps > 1 else (t_short, 1)
    per_token = (t_dec - t_short) / (produced - 1) if produced > 1 and t_dec > t_short else t_short
    # Prefill time grows with length; interpolate between the two measured prompts (linear: an upper
    # bound for shorter prompts, since attention's share grows with length).
    slope = (t_long - t_short) / max(1, n_long - n_short) if n_long > n_short else t_long / max(1, n_long)

    def prefill(n: int) -> float:
        return max(t_short, t_short + slope * (n - n_short))

    gen_s = sum(prefill(n) for n in lengths) + len(lengths) * (settings.max_new_tokens - 1) * per_token
    embed_s = 0.0
    if chunk_sizes:
        doc_tokens = sum(tok.count(d) for d in {it.doc_id: it.document for it in items}.values())
        sample = [items[0].document[: embedder.max_tokens * 3]] * 4
        t0 = time.perf_counter()
        embedder.embed_documents(sample, pool_long=True)
        per_window = (time.perf_counter() - t0) / len(sample)
        windows = sum(math.ceil(doc_tokens / size) * math.ceil(size / max(1, embedder.max_tokens - 2))
                      for size in chunk_sizes)
        embed_s = windows * per_window
    return {"prompts": len(lengths), "prompt_tokens": int(sum(lengths)), "longest_prompt_tokens": n_long,
            "prefill_tokens_per_second": round(n_long / t_long, 1) if t_long > 0 else None,
            "decode_seconds_per_token": round(per_token, 4), "generation_seconds": round(gen_s, 1),
            "embedding_seconds": round(embed_s, 1), "seconds": round(gen_s + embed_s, 1),
            "max_new_tokens": settings.max_new_tokens}


def describe_estimate(est: dict[str, Any]) -> str:
    """One line for the user: what will run and about how long it will take."""
    if not est.get("prompts"):
        return "estimate: nothing left to generate"
    rate = est.get("prefill_tokens_per_second")
    return (f"estimate: {est['prompts']} prompts ({est['prompt_tokens']:,} prompt tokens, up to "
            f"{est['max_new_tokens']} answer tokens each); measured prefill {rate:,.0f} tokens/s on a "
            f"{est['longest_prompt_tokens']:,}-token prompt → about {_fmt_seconds(est['seconds'])} "
            f"(generation {_fmt_seconds(est['generation_seconds'])}, indexing {_fmt_seconds(est['embedding_seconds'])}); "
            "--limit N runs fewer questions")


def _log(log: ResultLog, job: tuple, pk: str, completion: tuple[str, int], score_fn: Callable) -> None:
    key, it, prep, size, k = job
    pred, prompt_tokens = completion
    log.append({
        "key": key, "id": it.id, "setting": key.split("|")[0], "chunk_size": size, "top_k": k,
        "score": float(score_fn(pred, it.answers)), "prediction": pred, "answers": it.answers,
        "context_tokens": prep.context_tokens, "prompt_tokens": prompt_tokens, "dropped_chunks": prep.dropped,
        "truncated": prep.truncated, "prompt_key": pk,
        "chunks": [{"position": h.chunk.position, "score": round(h.score, 5)} for h in prep.hits],
    })


def summarize(records: list[dict[str, Any]], items: Sequence[QAItem], chunk_sizes: Sequence[int],
              top_ks: Sequence[int], include_long: bool) -> dict[str, Any]:
    """Mean score and mean context tokens per setting, over the given items."""
    ids = {it.id for it in items}
    by_setting: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r["id"] in ids:
            by_setting.setdefault(r["setting"], []).append(r)

    def stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(rows)
        return {"n": n, "score": sum(r["score"] for r in rows) / n if n else math.nan,
                "context_tokens": sum(r["context_tokens"] for r in rows) / n if n else math.nan,
                "dropped_chunks": sum(r["dropped_chunks"] for r in rows),
                "truncated": sum(bool(r["truncated"]) for r in rows),
                "empty_answers": sum(not str(r["prediction"]).strip() for r in rows)}

    rag = []
    for size in chunk_sizes:
        for k in top_ks:
            rows = by_setting.get(_setting_key(size, k), [])
            rag.append({"chunk_size": size, "top_k": k, "token_budget": size * k, **stats(rows)})
    summary: dict[str, Any] = {"rag": rag}
    # Empty answers are counted, not hidden: a prompt style the model does not follow shows up here first.
    summary["empty_answers"] = sum(r["empty_answers"] for r in rag)
    summary["answers"] = sum(r["n"] for r in rag)
    if include_long:
        summary["long_context"] = stats(by_setting.get("long", []))
        summary["empty_answers"] += summary["long_context"]["empty_answers"]
        summary["answers"] += summary["long_context"]["n"]
    scored = [r for r in rag if r["n"]]
    if scored:
        best = max(scored, key=lambda r: (r["score"], -r["context_tokens"]))
        summary["best_rag"] = {k: best[k] for k in ("chunk_size", "top_k", "score", "context_tokens")}
    return summary


def render_report(summary: dict[str, Any]) -> str:
    """A Markdown table of the sweep."""
    lines = [f"# RAG vs long context — {summary.get('model', '')}", "",
             f"{summary.get('n_questions')} questions, metric {summary.get('metric')}, window "
             f"{summary.get('max_context')} tokens, embedder {summary.get('embedder')}, order {summary.get('order')}, "
             f"prompt style {summary.get('prompt_style')}; {summary.get('empty_answers', 0)} of "
             f"{summary.get('answers', 0)} answers empty.", "",
             "| setting | chunk size | top-k | mean context tokens | score | empty answers | chunks dropped to fit |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lc = summary.get("long_context")
    if lc:
        lines.append(f"| long context | – | – | {lc['context_tokens']:.0f} | {lc['score']:.3f} | "
                     f"{lc.get('empty_answers', 0)} | {lc['truncated']} of {lc['n']} prompts middle-truncated |")
    for r in summary["rag"]:
        if r["n"]:
            lines.append(f"| RAG | {r['chunk_size']} | {r['top_k']} | {r['context_tokens']:.0f} | {r['score']:.3f} | "
                         f"{r.get('empty_answers', 0)} | {r['dropped_chunks']} |")
    return "\n".join(lines) + "\n"


def plot_rag_vs_long(summary: dict[str, Any], path: str | Path) -> Path:
    """Accuracy against retrieved tokens, one line per chunk size; long context as a horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    sizes = sorted({r["chunk_size"] for r in summary["rag"]})
    for size in sizes:
        rows = sorted((r for r in summary["rag"] if r["chunk_size"] == size and r["n"]), key=lambda r: r["top_k"])
        if rows:
            ax.plot([r["context_tokens"] for r in rows], [r["score"] for r in rows], marker="o", label=f"RAG, chunk {size}")
            for r in rows:
                ax.annotate(f"k={r['top_k']}", (r["context_tokens"], r["score"]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
    lc = summary.get("long_context")
    if lc and lc["n"]:
        ax.axhline(lc["score"], color="black", linestyle="--",
                   label=f"long context ({lc['context_tokens']:.0f} tokens)")
    ax.set_xscale("log")
    ax.set_xlabel("retrieved context tokens (mean)")
    ax.set_ylabel(summary.get("metric", "score"))
    ax.set_title(f"RAG vs long context: {summary.get('model', '')}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
