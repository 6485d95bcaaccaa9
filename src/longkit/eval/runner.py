"""Run a task against a backend: batched generation, per-sample JSONL log, resume, summary and report."""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from longkit.backends.base import Backend
from longkit.errors import ConfigError, InputError
from longkit.eval.tasks.base import Task
from longkit.io import ResultLog, read_json, write_json
from longkit.progress import Progress

# Score keys a task has renamed: {task: {old key: new key}}; results written under the old key still count.
RENAMED_SCORES: dict[str, dict[str, str]] = {"niah": {"exact": "contains_all"}}


def run_task(
    task: Task,
    backend: Backend,
    out_dir: str | Path,
    batch_size: int = 1,
    judge: Any | None = None,
    progress: bool = True,
    model_name: str = "",
    max_samples: int | None = None,
    *,
    extra_record: dict[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
    on_first_write: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Evaluate every planned sample not already in out_dir/results.jsonl; returns the summary.

    Results are appended after each batch, so a killed run loses at most the batch in flight and a
    rerun with the same settings picks up where it stopped. Nothing is written (not even out_dir) before
    the run record matches and the first batch is answered; `names` spells record fields as the user
    wrote them (`grid.lengths` -> `--lengths`); `on_first_write` runs just before that first write.
    """
    out = Path(out_dir)
    record = {"task": task.fingerprint(), **run_identity(backend, model_name), **(extra_record or {})}
    record["judge"] = None if judge is None else run_identity(judge.backend, getattr(judge.backend, "model_name", ""))
    refuse_other_run(out, record, names)
    results = out / "results.jsonl"
    log = ResultLog(results) if results.exists() else None
    plan = task.plan()[:max_samples] if max_samples is not None else task.plan()
    todo = [s for s in plan if log is None or f"{task.name}/{s['id']}" not in log]
    if not todo and (out / "summary.json").exists():
        if progress:
            print(f"{task.name}: already complete ({len(plan)} samples in {out}); nothing to do", file=sys.stderr)
        return dict(read_json(out / "summary.json", "run summary"))

    open_log = LazyLog(out, record, log, on_first_write)  # written at the first answered batch
    with Progress(task.name, total=len(plan), done=len(plan) - len(todo), unit="samples", enabled=progress) as bar:
        for start in range(0, len(todo), batch_size):
            rows = _answer(task, backend, judge, todo[start : start + batch_size])
            for row in rows:
                open_log().append(row)
                bar.advance()
    return _summary(task, open_log(), len(plan), model_name, out)


def _answer(task: Task, backend: Backend, judge: Any | None, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Build, generate and score one batch; the result rows to append."""
    samples = [task.build(s, backend.tokenizer, backend.max_context) for s in specs]
    t0 = time.perf_counter()
    completions = backend.generate([s.request() for s in samples])
    elapsed = (time.perf_counter() - t0) / len(samples)
    judged: list[float | None] = [None] * len(samples)
    if judge is not None:
        judged = judge.score_batch(
            [_question(s) for s in samples], [c.text for c in completions], [s.references for s in samples]
        )
    rows = []
    for s, c, j in zip(samples, completions, judged):
        scores = task.score(c.text, s)
        if judge is not None:
            scores["judge"] = j if j is not None else 0.0
        rows.append(
            {
                "key": f"{task.name}/{s.id}",
                "task": task.name,
                "id": s.id,
                "meta": s.meta,
                "prediction": c.text,
                "references": s.references,
                "scores": scores,
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "truncated": c.truncated,
                "seconds": round(elapsed, 3),
            }
        )
    return rows


def _summary(task: Task, log: ResultLog, planned: int, model_name: str, out: Path) -> dict[str, Any]:
    """Summarise the task's records and write summary.json."""
    records = [upgrade_scores(r) for r in log.records() if r["task"] == task.name]
    summary = summarize(records, task.group_by)
    summary.update({"task": task.name, "model": model_name, "samples": len(records), "planned": planned})
    if summary["empty_answers"]:
        print(f"{task.name}: {summary['empty_answers']} of {len(records)} answers are empty", file=sys.stderr)
    if task.describe():
        summary["setup"] = task.describe()
    write_json(out / "summary.json", summary)
    return summary


def _question(sample: Any) -> str:
    """The question a judge sees: the task's own, else the end of the prompt (where questions sit)."""
    if sample.meta.get("question"):
        return str(sample.meta["question"])
    text = sample.messages[-1]["content"] if sample.messages else (sample.prompt or "")
    return text[-500:]


class LazyLog:
    """An output's results log, opened (and its run.json written, after `on_first_write`) only when the first result
    is appended, so a run refused or interrupted before any answer leaves nothing behind."""

    def __init__(
        self, out: Path, record: dict[str, Any], log: ResultLog | None, on_first_write: Callable[[], None] | None = None
    ):
        self.out, self.record, self.log, self.on_first_write = out, record, log, on_first_write
        self.opened = False

    def __call__(self) -> ResultLog:
        """The log, writing the run record on first use."""
        if not self.opened:
            if self.on_first_write is not None:
                self.on_first_write()
            _write_record(self.out, self.record)
            self.log = self.log if self.log is not None else ResultLog(self.out / "results.jsonl")
            self.opened = True
        assert self.log is not None
        return self.log


def upgrade_scores(record: dict[str, Any]) -> dict[str, Any]:
    """A result record with renamed score keys under their current names (results of older runs still count)."""
    renames = RENAMED_SCORES.get(str(record.get("task")), {})
    scores = record.get("scores", {})
    if not any(old in scores for old in renames):
        return record
    return {**record, "scores": {renames.get(k, k): v for k, v in scores.items()}}


def run_identity(backend: Backend, model_name: str = "") -> dict[str, Any]:
    """What decides a run's answers besides the task: backend, model, generation settings, longkit version."""
    from longkit import __version__

    return {
        "backend": getattr(backend, "name", type(backend).__name__),
        "model": model_name or getattr(backend, "model_name", "") or getattr(backend, "model", "") or "",
        "generation": {
            "max_context": int(backend.max_context),
            "temperature": 0.0,
            "dtype": str(getattr(getattr(backend, "model", None), "dtype", "")) or None,
        },
        "longkit_version": __version__,
    }


def _previous_record(out: Path) -> dict[str, Any] | None:
    """out/run.json as a mapping (None when there is none); read only, never written here."""
    path = Path(out) / "run.json"
    if not path.exists():
        return None
    previous = read_json(path, "run record")
    if not isinstance(previous, dict):
        raise InputError(f"{path}: expected a JSON object (the run record); delete {out} to start fresh")
    return previous


def refuse_other_run(out: Path, current: dict[str, Any], names: Mapping[str, str] | None = None) -> None:
    """Refuse, before anything is written, an out directory whose run.json records other settings.

    One line: `<field>: this output was made with <old>, not <new>; use a new --out or delete <out> to start
    fresh`, the field spelt through `names` (dotted record path -> the option or YAML field the user wrote)."""
    previous = _previous_record(out)
    diff = None if previous is None else _difference(previous, json.loads(json.dumps(current)))
    if diff is not None:
        field, old, new = diff
        raise ConfigError(refusal((names or {}).get(field, field), old, new, out))


def refusal(field: str, old: Any, new: Any, out: Path | str) -> str:
    """The one-line refusal of an output directory made with other settings."""
    return (
        f"{field}: this output was made with {json.dumps(old)}, not {json.dumps(new)}; use a new --out or "
        f"delete {out} to start fresh"
    )


def _write_record(out: Path, current: dict[str, Any]) -> None:
    """Create out and write run.json, or add the fields an older run.json lacks (what it has is kept)."""
    from longkit.io import output_dir

    output_dir(out)
    previous = _previous_record(out)
    current = json.loads(json.dumps(current))
    merged = current if previous is None else {**current, **previous}
    if merged != previous:
        write_json(Path(out) / "run.json", merged)


def check_run_record(out: Path, current: dict[str, Any]) -> None:
    """Write out/run.json, or refuse to reuse out when it holds a run with other settings (rag-vs-long's check).

    The message names the first differing field; fields an older run.json lacks are added, not refused.
    """
    previous = _previous_record(out)
    diff = None if previous is None else _difference(previous, json.loads(json.dumps(current)))
    if diff is not None:
        field, old, new = diff
        raise ConfigError(
            f"{out} holds results of a run with other settings: {field} was {json.dumps(old)}, "
            f"now {json.dumps(new)} ({Path(out) / 'run.json'}); use another --out directory, or "
            f"delete {out} to start fresh"
        )
    _write_record(out, current)


def _difference(old: Any, new: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first field (dotted path) whose value differs; keys missing from old are not differences."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in new:
            if k in old:
                d = _difference(old[k], new[k], f"{prefix}{k}.")
                if d is not None:
                    return d
        return None
    return None if old == new else (prefix.rstrip(".") or "run", old, new)


def length_key(value: Any) -> str:
    """The one spelling of a per-length key in every eval summary: the token count in decimal ('4096').

    Older spellings ('len_4096', '4096.0', 4096) read back as the same key; a name that is no number (a
    benchmark's own level, e.g. LV-Eval's '16k') stays as it is."""
    text = str(value)
    text = text.removeprefix("len_")
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def summarize(records: list[dict[str, Any]], group_by: tuple[str, ...]) -> dict[str, Any]:
    """Mean of every score overall, per value of each group field, and per full group cell."""
    metrics = sorted({k for r in records for k in r["scores"]})

    def mean_scores(rs: list[dict[str, Any]]) -> dict[str, float]:
        return {m: round(sum(r["scores"].get(m, 0.0) for r in rs) / len(rs), 4) for m in metrics}

    by_field: dict[str, dict[str, dict[str, float]]] = {}
    for field in group_by:
        groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            groups[r["meta"].get(field)].append(r)
        spell = length_key if field == "length" else str
        by_field[field] = {spell(k): mean_scores(v) for k, v in sorted(groups.items(), key=lambda kv: _sort_key(kv[0]))}
    cells: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        cells[tuple(r["meta"].get(f) for f in group_by)].append(r)
    return {
        "metrics": metrics,
        "overall": mean_scores(records) if records else {},
        "by": by_field,
        "cells": [
            {**dict(zip(group_by, k)), **mean_scores(v), "n": len(v)}
            for k, v in sorted(cells.items(), key=lambda kv: tuple(_sort_key(x) for x in kv[0]))
        ],
        "truncated": sum(1 for r in records if r.get("truncated")),
        "empty_answers": sum(1 for r in records if not str(r.get("prediction", "")).strip()),
    }


def _sort_key(x: Any) -> tuple[int, Any]:
    return (0, x) if isinstance(x, (int, float)) else (1, str(x))
