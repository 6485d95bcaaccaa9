"""Perplexity by context length and by position: `longkit eval ppl` and the suite's perplexity tasks.

Context-extension papers report the loss of a model on long documents at several window lengths L
(position interpolation, YaRN, LongRoPE, LongLoRA: PG19 and Proof-pile at 2K-128K). Two protocols:

- `windows`: each document is cut into consecutive non-overlapping windows of L tokens (a tail shorter than L
  is not scored); within a window every token but the first is scored given the tokens before it, exactly
  what transformers computes as `model(window, labels=window).loss` (the non-overlapping chunks of the position
  interpolation and LongLoRA evaluations). With `windows_per_document: 1` it is the first L tokens of each
  document at least L long, like YaRN's `--truncate` (which scores L - 1 tokens after a BOS).
- `sliding`: a window of L tokens advances by a stride S (default 256, YaRN's); each window scores only the
  tokens no earlier window scored, so every token of the document after its first is scored exactly once and,
  after the first window, with at least L - S tokens of context: the strided protocol of YaRN's
  eval/perplexity.py `compute_perplexity` (jquesnelle/yarn@b1d7076) and of transformers' perplexity guide.
  Two deliberate differences from YaRN's script: it prepends a BOS token to every window (L - 1 document tokens
  + BOS) where longkit scores L document tokens, and it averages per-window mean losses where longkit weights
  every token the same (a last short window would otherwise count as much as a full one).

Each scored token also lands in a position bucket (its offset in its window, `bucket` tokens wide), so a
per-position curve shows whether the loss keeps falling past the model's original window or rises.

Results are one JSON line per window (the summed negative log-likelihood, the token count and the per-bucket
sums), appended as windows finish, so a killed run resumes; the token loss per L is the corpus loss
(summed NLL / scored tokens) with a 95% bootstrap interval over documents.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from longkit.backends.base import Backend, ScoreRequest, TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.bootstrap import MAX_RESAMPLES
from longkit.eval.ppl_data import ESSAYS, Document, data_digest, load_documents

__all__ = ["Document", "PplSettings", "load_documents", "make_plan", "plan_windows", "run_ppl", "summarize_ppl"]

MIN_LENGTH = 16
DEFAULT_STRIDE = 256


class PplSettings(BaseModel):
    """What a perplexity run measures (YAML keys and `eval ppl` options)."""

    model_config = ConfigDict(extra="forbid")

    data: str = ESSAYS  # essays | pg19 | proof-pile | a file or directory (.txt, .md, .jsonl[.gz] with 'text')
    lengths: list[int] = Field(default_factory=lambda: [1024, 2048], min_length=1)
    protocol: Literal["windows", "sliding"] = "windows"
    stride: int | None = Field(None, ge=1)  # sliding only; default DEFAULT_STRIDE
    bucket: int = Field(256, ge=1)  # position-bucket width in tokens
    max_documents: int | None = Field(None, ge=1)
    windows_per_document: int | None = Field(None, ge=1)
    bootstrap: int = Field(1000, ge=1, le=MAX_RESAMPLES)  # resamples for the intervals
    seed: int = 0

    @field_validator("lengths")
    @classmethod
    def _lengths(cls, lengths: list[int]) -> list[int]:
        short = [n for n in lengths if n < MIN_LENGTH]
        if short:
            raise ValueError(f"length {short[0]} is below {MIN_LENGTH} tokens")
        return sorted(set(lengths))

    @model_validator(mode="after")
    def _stride(self) -> PplSettings:
        if self.protocol == "windows" and self.stride is not None:
            raise ValueError("stride: only the sliding protocol reads it (set protocol: sliding, or drop stride)")
        if self.protocol == "sliding":
            stride = self.stride_tokens
            too_long = [n for n in self.lengths if stride >= n]
            if too_long:
                raise ValueError(
                    f"stride {stride} must be below every length (length {too_long[0]} is not "
                    "longer): a window must keep some context from the one before"
                )
        return self

    @property
    def stride_tokens(self) -> int:
        """The sliding protocol's stride."""
        return self.stride if self.stride is not None else DEFAULT_STRIDE

    def protocol_record(self) -> dict[str, Any]:
        """The settings that decide the results (the run record refuses another of them in the same --out)."""
        return {
            "data": self.data,
            "lengths": self.lengths,
            "protocol": self.protocol,
            "stride": self.stride_tokens if self.protocol == "sliding" else None,
            "bucket": self.bucket,
            "max_documents": self.max_documents,
            "windows_per_document": self.windows_per_document,
        }


# ---------------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Tokens [start, end) of a document, of which [scored_from, end) are scored given the ones before."""

    doc: str
    length: int
    index: int
    start: int
    scored_from: int
    end: int

    @property
    def key(self) -> str:
        return f"{self.doc}|{self.length}|{self.index}"


def plan_windows(
    n_tokens: int, length: int, protocol: str, stride: int, limit: int | None = None
) -> list[tuple[int, int, int]]:
    """(start, scored_from, end) of each window of a document of n_tokens (none when it is shorter than length)."""
    if n_tokens < length:
        return []
    if protocol == "windows":
        spans = [(s, s + 1, s + length) for s in range(0, n_tokens - length + 1, length)]
    else:
        spans, scored_to = [], 0
        for begin in range(0, n_tokens, stride):
            end = min(begin + length, n_tokens)
            spans.append((begin, max(scored_to, begin + 1), end))
            scored_to = end
            if end == n_tokens:
                break
    return spans[:limit] if limit is not None else spans


@dataclass
class Plan:
    """Every window to score, with the documents too short for each length (reported, never silent)."""

    windows: list[Window]
    tokens: dict[str, list[int]]
    too_short: dict[int, int]
    documents: int


def make_plan(docs: Sequence[Document], tokenizer: TextTokenizer, settings: PplSettings) -> Plan:
    """Tokenize the documents and lay out the windows of each length."""
    docs = list(docs)[: settings.max_documents] if settings.max_documents else list(docs)
    tokens = {d.id: tokenizer.encode(d.text) for d in docs}
    windows: list[Window] = []
    too_short: dict[int, int] = {}
    for length in settings.lengths:
        too_short[length] = 0
        for d in docs:
            spans = plan_windows(
                len(tokens[d.id]), length, settings.protocol, settings.stride_tokens, settings.windows_per_document
            )
            if not spans:
                too_short[length] += 1
            windows += [Window(d.id, length, i, s, f, e) for i, (s, f, e) in enumerate(spans)]
    if not windows:
        longest = max((len(t) for t in tokens.values()), default=0)
        raise InputError(
            f"--data {settings.data}: no document is as long as the shortest length "
            f"{settings.lengths[0]} tokens (the longest has {longest} of {len(docs)}); use shorter "
            "--lengths or longer documents"
        )
    return Plan(windows, tokens, too_short, len(docs))


def score_window(window: Window, ids: list[int], logprobs: Sequence[float], bucket: int) -> dict[str, Any]:
    """The result line of one scored window: summed NLL, token count and per-position-bucket sums."""
    buckets: dict[int, list[float]] = defaultdict(lambda: [0.0, 0])
    for offset, lp in enumerate(logprobs):
        position = window.scored_from - window.start + offset  # the scored token's offset in its window
        cell = buckets[(position // bucket) * bucket]
        cell[0] += -lp
        cell[1] += 1
    nll = -math.fsum(logprobs)
    n = len(logprobs)
    return {
        "meta": {"length": window.length, "doc": window.doc, "window": window.index, "start": window.start},
        "scores": {"score": round(nll / n, 6), "loss": round(nll / n, 6), "nll": nll, "tokens": n},
        "positions": {str(k): [v[0], int(v[1])] for k, v in sorted(buckets.items())},
    }


def request_of(window: Window, ids: list[int]) -> ScoreRequest:
    """The score request of a window: its scored tokens given the window's tokens before them."""
    return ScoreRequest(token_ids=ids[window.scored_from : window.end], context=ids[window.start : window.scored_from])


# ---------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------


def check_lengths(settings: PplSettings, window: int, allow_extrapolation: bool) -> None:
    """Refuse a length beyond the model's window unless extrapolation was asked for."""
    over = [n for n in settings.lengths if n > window]
    if over and not allow_extrapolation:
        raise ConfigError(
            f"--lengths: {over[0]} exceeds the model's {window}-token window (pass "
            "--allow-extrapolation to measure beyond it)"
        )


def run_ppl(
    settings: PplSettings,
    backend: Backend,
    out: str | Path,
    *,
    task_name: str = "ppl",
    model_name: str = "",
    batch_size: int = 1,
    allow_extrapolation: bool = False,
    progress: bool = True,
    on_first_write: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Score every window not already in out/results.jsonl, then write summary.json; returns the summary.

    Everything is checked (backend can score, lengths, documents, the output's run record) before the first write.
    """
    from longkit.backends.registry import scorer
    from longkit.eval.runner import LazyLog, refuse_other_run, run_identity
    from longkit.io import ResultLog, write_json
    from longkit.progress import Progress

    # a suite hands over its cached view of the model: scores go to the model it wraps (they are not cached)
    model = getattr(backend, "inner", backend)
    scoring = scorer(model, f"perplexity ({task_name})")
    check_lengths(settings, model.max_context, allow_extrapolation)
    if max(settings.lengths) > model.max_context:  # extrapolation asked for: a view with a wider window
        from longkit.eval.suite.cache import with_window

        model = with_window(model, max(settings.lengths))
        scoring = scorer(model, f"perplexity ({task_name})")
    docs = load_documents(settings.data)
    plan = make_plan(docs, model.tokenizer, settings)
    out = Path(out)
    record = {
        "task": {"name": task_name, **settings.protocol_record(), "data_digest": data_digest(docs[: plan.documents])},
        **run_identity(model, model_name),
    }
    # a refusal names the option the user would change
    refuse_other_run(out, record, {f"task.{k}": f"--{k.replace('_', '-')}" for k in settings.protocol_record()})
    results = out / "results.jsonl"
    log = ResultLog(results) if results.exists() else None
    todo = [w for w in plan.windows if log is None or f"{task_name}/{w.key}" not in log]
    open_log = LazyLog(out, record, log, on_first_write)
    with Progress(
        task_name, total=len(plan.windows), done=len(plan.windows) - len(todo), unit="windows", enabled=progress
    ) as bar:
        for b in range(0, len(todo), batch_size):
            batch = todo[b : b + batch_size]
            scored = scoring.score([request_of(w, plan.tokens[w.doc]) for w in batch])
            for w, s in zip(batch, scored):
                row = score_window(w, plan.tokens[w.doc], s.logprobs, settings.bucket)
                open_log().append({"key": f"{task_name}/{w.key}", "task": task_name, **row})
                bar.advance()
    log = open_log() if todo or log is None else log
    rows = [r for r in log.records() if r.get("task") == task_name]
    summary = summarize_ppl(rows, settings, plan.too_short, plan.documents)
    summary.update({"task": task_name, "model": model_name or record["model"], "data": settings.data})
    write_json(out / "summary.json", summary)
    return summary


def summarize_ppl(
    rows: Sequence[dict[str, Any]], settings: PplSettings, too_short: dict[int, int], documents: int
) -> dict[str, Any]:
    """Per length: corpus token loss and perplexity with 95% bootstrap intervals over documents, the loss by
    position bucket, and the documents too short for that length."""
    from longkit.eval.bootstrap import ratio_interval

    by_length: dict[str, Any] = {}
    for length in settings.lengths:
        mine = [r for r in rows if r["meta"]["length"] == length]
        per_doc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        positions: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for r in mine:
            cell = per_doc[r["meta"]["doc"]]
            cell[0] += r["scores"]["nll"]
            cell[1] += r["scores"]["tokens"]
            for k, (nll, n) in r.get("positions", {}).items():
                positions[int(k)][0] += nll
                positions[int(k)][1] += n
        entry: dict[str, Any] = {"documents": len(per_doc), "windows": len(mine), "too_short": too_short.get(length, 0)}
        if per_doc:
            # documents are the independent unit; a single document can only be resampled by its windows
            units = (
                list(per_doc.values())
                if len(per_doc) > 1
                else [[r["scores"]["nll"], r["scores"]["tokens"]] for r in mine]
            )
            nll = [v[0] for v in units]
            tokens = [v[1] for v in units]
            loss = math.fsum(nll) / sum(tokens)
            lo, hi = ratio_interval(nll, tokens, settings.bootstrap, settings.seed)
            entry.update(
                {
                    "tokens": int(sum(tokens)),
                    "loss": round(loss, 4),
                    "loss_ci": [round(lo, 4), round(hi, 4)],
                    "ppl": round(math.exp(loss), 3),
                    "ppl_ci": [round(math.exp(lo), 3), round(math.exp(hi), 3)],
                    "interval": _interval_note(len(per_doc), len(mine)),
                    "by_position": {str(k): round(v[0] / v[1], 4) for k, v in sorted(positions.items())},
                }
            )
        by_length[str(length)] = entry
    return {
        "protocol": settings.protocol,
        "stride": settings.stride_tokens if settings.protocol == "sliding" else None,
        "bucket": settings.bucket,
        "documents": documents,
        "bootstrap": settings.bootstrap,
        "seed": settings.seed,
        "by_length": by_length,
    }


def _interval_note(documents: int, windows: int) -> str:
    """How an interval was made, and whether it is too wide to read much into."""
    from longkit.eval.bootstrap import FEW

    if documents == 1:
        return "bootstrap over windows of one document" + (f" (wide: fewer than {FEW})" if windows < FEW else "")
    return "bootstrap over documents" + (f" (wide: fewer than {FEW})" if documents < FEW else "")
