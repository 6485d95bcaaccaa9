"""RAG versus long context (ChatQA 2, Figure 2): one QA set answered with the whole document
(middle-truncated to the window) and with RAG over chunk sizes × top-k, scored with the evaluation
metrics, logged per sample (resumable), summarised and plotted. `longkit rag tune` runs the same sweep
(`longkit.eval.rag_tune`) and hands the summary to `longkit.rag.tune.choose_setting`.

`run_rag_vs_long(options)` is the whole command as a library call; `sweep(items, backend, embedder, plan)`
is the measurement over models already loaded. An evaluation that uses RAG, so it lives in eval/ and
reaches RAG through rag.pipeline and rag.build."""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from longkit.backends.base import Backend
from longkit.backends.spec import BackendSpec
from longkit.errors import ConfigError, InputError
from longkit.eval.rag_qa import QAItem, load_qa
from longkit.eval.rag_vs_long_estimate import describe_estimate, estimate_run
from longkit.eval.rag_vs_long_report import plot_rag_vs_long, render_report, setting_key, summarize
from longkit.eval.runner import check_run_record, run_identity
from longkit.io import ResultLog, atomic_write_text, output_dir, write_json
from longkit.progress import Progress
from longkit.rag.build import chunking_record, index_documents, open_or_create
from longkit.rag.chunk import ChunkConfig
from longkit.rag.embed import _Base
from longkit.rag.pipeline import Prepared, RagSettings, prepare_long, prepare_rag, resolved_style
from longkit.rag.retrieve import Retriever, query_from_messages

# re-exported: the QA set, the estimate and the report are part of this evaluation's interface
__all__ = [
    "DEFAULT_CHUNK_SIZES",
    "DEFAULT_TOP_KS",
    "METRICS",
    "QAItem",
    "RagVsLongOptions",
    "SweepPlan",
    "check_choice",
    "describe_estimate",
    "estimate_run",
    "load_qa",
    "plot_rag_vs_long",
    "render_report",
    "run_rag_vs_long",
    "summarize",
    "sweep",
]

DEFAULT_CHUNK_SIZES = (300, 600, 1200)
DEFAULT_TOP_KS = (5, 10, 20, 40)
METRICS = ("token_f1", "exact_match", "substring_match")
ORDERS = ("score", "position")
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def check_choice(option: str, value: str, allowed: Sequence[str]) -> str:
    """Refuse a value outside `allowed`, naming the option."""
    if value not in allowed:
        raise ConfigError(f"{option}: expected one of {', '.join(allowed)}, got '{value}'")
    return value


def check_sizes(option: str, values: Sequence[int]) -> tuple[int, ...]:
    """At least one value, every one >= 1."""
    if not values:
        raise ConfigError(f"{option}: give at least one value")
    bad = [v for v in values if v < 1]
    if bad:
        raise ConfigError(f"{option}: every value must be >= 1, got {bad[0]}")
    return tuple(values)


@dataclass(frozen=True)
class SweepPlan:
    """What one sweep measures: chunk sizes × top-k (and the whole document), how prompts are built and scored."""

    chunk_sizes: tuple[int, ...] = DEFAULT_CHUNK_SIZES
    top_ks: tuple[int, ...] = DEFAULT_TOP_KS
    settings: RagSettings = field(default_factory=RagSettings)
    metric: str = "token_f1"
    include_long: bool = True
    chunk_unit: str = "token"
    chunk_overlap: int = 0
    batch_size: int = 8  # prompts per backend call

    def __post_init__(self) -> None:
        check_choice("metric", self.metric, METRICS)
        if any(c < 1 for c in self.chunk_sizes) or any(k < 1 for k in self.top_ks):
            raise ConfigError("chunk sizes and top-k values must be >= 1")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class RagVsLongOptions:
    """`longkit eval rag-vs-long` as one object: each field is the option of the same name."""

    qa: Path
    # the generator; its batch size is also the prompts per backend call
    generator: BackendSpec = field(default_factory=lambda: BackendSpec.model_validate({"batch_size": 4}))
    embedder: str = "all-minilm-l6-v2"
    chunk_sizes: tuple[int, ...] = DEFAULT_CHUNK_SIZES
    top_ks: tuple[int, ...] = DEFAULT_TOP_KS
    out: Path = Path("runs/rag-vs-long")
    order: str = "score"
    style: str = "auto"
    metric: str = "token_f1"
    max_new_tokens: int = 32
    limit: int | None = None
    include_long: bool = True
    estimate_only: bool = False

    def __post_init__(self) -> None:
        from longkit.rag.prompt import STYLES

        check_choice("--order", self.order, ORDERS)
        check_choice("--style", self.style, STYLES)
        check_choice("--metric", self.metric, METRICS)
        check_sizes("--chunk-sizes", self.chunk_sizes)
        check_sizes("--top-ks", self.top_ks)
        if self.max_new_tokens < 1:
            raise ConfigError(f"--max-new-tokens: must be >= 1, got {self.max_new_tokens}")

    def plan(self) -> SweepPlan:
        """The sweep these options ask for."""
        settings = RagSettings(order=self.order, style=self.style, max_new_tokens=self.max_new_tokens)
        return SweepPlan(
            chunk_sizes=tuple(self.chunk_sizes),
            top_ks=tuple(self.top_ks),
            settings=settings,
            metric=self.metric,
            include_long=self.include_long,
            batch_size=self.generator.batch_size,
        )


def open_generator(spec: BackendSpec) -> Backend:
    """The generator a spec names; a --max-context beyond the model's own positions is refused."""
    gen = spec.build()
    native = getattr(getattr(getattr(gen, "model", None), "config", None), "max_position_embeddings", None)
    if spec.max_context is not None and isinstance(native, int) and spec.max_context > native:
        raise ConfigError(
            f"--max-context {spec.max_context}: beyond the model's {native} positions; "
            "extend the model first (longkit model extend) or give a smaller window"
        )
    return gen


def run_rag_vs_long(
    options: RagVsLongOptions,
    *,
    log: Say | None = None,
    progress: bool = False,
    check: Callable[[Backend, RagVsLongOptions], None] | None = None,
) -> dict[str, Any]:
    """The whole evaluation: cheap checks, then load the models and sweep; returns the summary (or the estimate)."""
    # `check` runs once the generator is loaded, before the embedder and any long work (rag tune refuses the
    # budgets its window cannot take there)
    from longkit.rag.embed import load_embedder

    say = log or _quiet
    items = load_qa(options.qa, limit=options.limit)
    output_dir(options.out)
    gen = open_generator(options.generator)
    if check is not None:
        check(gen, options)
    emb = load_embedder(options.embedder)
    say(
        f"{len(items)} questions x ({len(options.chunk_sizes)} chunk sizes x {len(options.top_ks)} top-k"
        + (" + long context" if options.include_long else "")
        + "); measuring..."
    )
    return sweep(
        items,
        gen,
        emb,
        options.plan(),
        out_dir=options.out,
        model_name=options.generator.model or "",
        progress=progress,
        on_estimate=lambda e: say(describe_estimate(e)),
        estimate_only=options.estimate_only,
    )


def _prompt_key(prep: Prepared) -> str:
    r = prep.request
    body = r.prompt if r.prompt is not None else repr(r.messages)
    return hashlib.sha1(f"{r.max_new_tokens}|{r.stop}|{body}".encode()).hexdigest()


class Job(NamedTuple):
    """One prompt to answer: its log key, question, prepared prompt, and setting (None, None: long context)."""

    key: str
    item: QAItem
    prep: Prepared
    chunk_size: int | None
    top_k: int | None


@dataclass
class _Run:
    """One sweep in progress: what it measures, with what, and where it logs."""

    items: Sequence[QAItem]
    backend: Backend
    embedder: _Base
    plan: SweepPlan
    settings: RagSettings
    out: Path
    log: ResultLog
    progress: bool

    def todo(self, size: int | None, k: int | None, item: QAItem) -> bool:
        """Whether this setting's answer to this question is not logged yet."""
        return f"{setting_key(size, k)}|{item.id}" not in self.log


def _open_run(
    items: Sequence[QAItem],
    backend: Backend,
    embedder: _Base,
    plan: SweepPlan,
    out: Path,
    model_name: str,
    progress: bool,
) -> tuple[_Run, dict[str, Any]]:
    """Resolve the prompt style and check the folder's run record (another model or settings are refused)."""
    settings = dataclasses.replace(plan.settings, style=resolved_style(plan.settings.style, backend, model_name))
    identity = run_identity(backend, model_name)
    identity["generation"].update(
        max_new_tokens=settings.max_new_tokens,
        style=settings.style,
        instruction=settings.instruction,
        order=settings.order,
        history_turns=settings.history_turns,
    )
    check_run_record(
        out,
        {
            "kind": "rag-vs-long",
            **identity,
            "metric": plan.metric,
            "embedder": embedder.name,
            "chunking": {"unit": plan.chunk_unit, "overlap": plan.chunk_overlap},
        },
    )
    run = _Run(items, backend, embedder, plan, settings, out, ResultLog(out / "results.jsonl"), progress)
    return run, identity


def _rag_jobs(run: _Run, sizes: Sequence[int]) -> list[Job]:
    """Index the documents at each chunk size and prepare every pending RAG prompt."""
    plan, emb = run.plan, run.embedder
    docs = {it.doc_id: it.document for it in run.items}
    jobs: list[Job] = []
    query_vecs = None
    for size in sizes:
        cfg = ChunkConfig(size=size, overlap=plan.chunk_overlap, unit=plan.chunk_unit)
        record = chunking_record(cfg, "generator" if plan.chunk_unit == "token" else "words", "pool")
        index = open_or_create(run.out / "indexes" / f"chunk-{size}", emb, record)
        with Progress(f"indexing chunk size {size}", total=len(docs), unit="docs", enabled=run.progress) as bar:
            index_documents(
                index,
                docs.items(),
                emb,
                cfg,
                tokenizer=run.backend.tokenizer.hf,
                on_overflow="pool",
                commit_every=64,
                progress=lambda d, c: bar.advance(d - bar.done),
            )
        retriever = Retriever(index, emb)
        if query_vecs is None:
            qs = [query_from_messages(it.question, run.settings.history_turns) for it in run.items]
            query_vecs = dict(zip([it.id for it in run.items], emb.embed_queries(qs)))
        for it in run.items:
            for k in plan.top_ks:
                if run.todo(size, k, it):
                    s = dataclasses.replace(run.settings, top_k=k, token_budget=None)
                    prep = prepare_rag(
                        retriever, run.backend, it.question, s, doc_ids=[it.doc_id], query_vector=query_vecs[it.id]
                    )
                    jobs.append(Job(f"{setting_key(size, k)}|{it.id}", it, prep, size, k))
    return jobs


def _log(log: ResultLog, job: Job, pk: str, completion: tuple[str, int], score_fn: Callable[..., float]) -> None:
    pred, prompt_tokens = completion
    prep = job.prep
    log.append(
        {
            "key": job.key,
            "id": job.item.id,
            "setting": job.key.split("|")[0],
            "chunk_size": job.chunk_size,
            "top_k": job.top_k,
            "score": float(score_fn(pred, job.item.answers)),
            "prediction": pred,
            "answers": job.item.answers,
            "context_tokens": prep.context_tokens,
            "prompt_tokens": prompt_tokens,
            "dropped_chunks": prep.dropped,
            "truncated": prep.truncated,
            "prompt_key": pk,
            "chunks": [{"position": h.chunk.position, "score": round(h.score, 5)} for h in prep.hits],
        }
    )


def _generate(run: _Run, jobs: list[Job]) -> None:
    """Answer and log every job; settings that give the same prompt (e.g. a large k capped by the window) are
    generated once."""
    from longkit.eval import metrics

    score_fn = getattr(metrics, run.plan.metric)
    done_by_prompt = {r["prompt_key"]: r for r in run.log.records() if "prompt_key" in r}
    unique: dict[str, int] = {}
    for i, job in enumerate(jobs):
        pk = _prompt_key(job.prep)
        if pk not in done_by_prompt:
            unique.setdefault(pk, i)
    todo = sorted(unique.values(), key=lambda i: len(str(jobs[i].prep.request.prompt or jobs[i].prep.request.messages)))
    completions: dict[str, tuple[str, int]] = {
        pk: (r["prediction"], r["prompt_tokens"]) for pk, r in done_by_prompt.items()
    }
    batch_size = run.plan.batch_size
    with Progress("generating", total=len(todo), unit="prompts", enabled=run.progress) as bar:
        for b in range(0, len(todo), batch_size):
            batch = todo[b : b + batch_size]
            outs = run.backend.generate([jobs[i].prep.request for i in batch])
            for i, o in zip(batch, outs):
                pk = _prompt_key(jobs[i].prep)
                completions[pk] = (o.text.strip(), o.prompt_tokens)
                _log(run.log, jobs[i], pk, completions[pk], score_fn)
            bar.advance(len(batch))
    for job in jobs:  # the duplicates
        if job.key not in run.log:
            pk = _prompt_key(job.prep)
            _log(run.log, job, pk, completions[pk], score_fn)


def _pending(run: _Run) -> tuple[list[Job], list[int], int]:
    """The long-context prompts still to answer, the chunk sizes with RAG answers to do, and how many."""
    long_jobs = [
        Job(f"long|{it.id}", it, prepare_long(it.document, it.question, run.backend, run.settings), None, None)
        for it in run.items
        if run.plan.include_long and run.todo(None, None, it)
    ]
    pairs = [(size, it, k) for size in run.plan.chunk_sizes for it in run.items for k in run.plan.top_ks]
    sizes = list(dict.fromkeys(size for size, it, k in pairs if run.todo(size, k, it)))
    return long_jobs, sizes, sum(1 for size, it, k in pairs if size in sizes and run.todo(size, k, it))


def sweep(
    items: Sequence[QAItem],
    backend: Backend,
    embedder: _Base,
    plan: SweepPlan | None = None,
    out_dir: str | Path | None = None,
    *,
    model_name: str = "",
    progress: bool = False,
    on_estimate: Callable[[dict[str, Any]], None] | None = None,
    estimate_only: bool = False,
) -> dict[str, Any]:
    """Answer every item with the whole document and with RAG at each chunk size × k; returns the summary
    (also written to out_dir with per-sample results, a Markdown report and the plot).

    Chunks are cut with the generator's tokenizer, so chunk sizes and the plotted "retrieved tokens"
    are the tokens the model reads; chunks longer than the embedder's limit are embedded by window
    pooling (never truncated). Rerunning with the same out_dir skips what is already logged; an out_dir
    that holds a run with another backend, model or generation settings is refused (run.json).
    Before any long work, the run time is estimated from a measured prefill and passed to `on_estimate`
    (with `estimate_only`, the run stops there and the estimate is returned).
    """
    plan = plan or SweepPlan()
    if not items:
        raise InputError("the QA set is empty")
    # without out_dir the logs and indexes live in a scratch folder that is removed afterwards
    scratch = tempfile.TemporaryDirectory(prefix="longkit-rag-vs-long-") if out_dir is None else nullcontext(out_dir)
    with scratch as where:
        out = output_dir(where)
        run, identity = _open_run(items, backend, embedder, plan, out, model_name, progress)
        long_jobs, sizes, n_rag = _pending(run)
        if long_jobs or n_rag:
            est = estimate_run(
                backend, embedder, items, run.settings, [j.prep.request for j in long_jobs], sizes, plan.top_ks, run.log
            )
            if on_estimate is not None:
                on_estimate(est)
            if estimate_only:
                return {"estimate": est}
        _generate(run, long_jobs + _rag_jobs(run, sizes))
        summary = summarize(run.log.records(), items, plan.chunk_sizes, plan.top_ks, plan.include_long)
        summary.update(
            metric=plan.metric,
            model=identity["model"],
            backend=identity["backend"],
            max_context=backend.max_context,
            embedder=embedder.name,
            n_questions=len(items),
            prompt_style=run.settings.style,
            order=run.settings.order,
            max_new_tokens=run.settings.max_new_tokens,
        )
        write_json(out / "summary.json", summary)
        atomic_write_text(out / "report.md", render_report(summary))
        if out_dir is not None:
            plot_rag_vs_long(summary, out / "rag_vs_long.png")
    return summary
