"""Long-context probes while training: the model being trained answers longkit's own generated tasks (passkey,
RULER's needles) at a few lengths and scores a fixed text by position, every `probe.every` steps and at each
checkpoint, so a run shows when (in training tokens) its effective length grows.

A probe is invisible to the training stream: it runs in eval mode without gradients, restores every random
generator the training draws from, leaves the data loader alone and puts back the model's cache and generation
settings, so step losses are the same with and without probes. One JSON line per probe goes to <out>/probes.jsonl
(read by `longkit train curves`); the numbers also go through the Trainer's loggers (TensorBoard, W&B).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from longkit.errors import ConfigError, InputError, LongkitError

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from longkit.eval.ppl import Plan, PplSettings
    from longkit.train.config import ExtendSpec, ProbeSpec

log = logging.getLogger(__name__)

PROBES = "probes.jsonl"
PROBE_DIR = "probes"  # per-sample answers of each probe: <out>/probes/step-<N>/<task>/results.jsonl
PPL_BUCKETS = 8  # position buckets across the longest probe length


# ---------------------------------------------------------------------------------------------------
# Checks before any work
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbePlan:
    """What a run probes, checked against the loaded model: the spec, the window the lengths must fit in, the
    training sequence length (for tokens seen) and the tokenized perplexity windows (None without `ppl`)."""

    spec: ProbeSpec
    window: int
    seq_len: int
    ppl_settings: PplSettings | None = None
    ppl_plan: Plan | None = None

    @property
    def threshold(self) -> float:
        """The effective length's threshold: the spec's, else the suite's default (RULER's)."""
        if self.spec.threshold is not None:
            return self.spec.threshold
        from longkit.eval.suite.config import SuiteConfig

        return float(SuiteConfig.model_fields["threshold"].default)


def probe_plan(
    spec: ProbeSpec | None, model: Any, tok: Any, seq_len: int, extend: ExtendSpec | None = None
) -> ProbePlan | None:
    """Check the probe against the loaded model (before training starts) and prepare it; None without a probe.

    The window is the longer of the model's max_position_embeddings and extend.max_length (a `dynamic` extension
    keeps the original max_position_embeddings); every (task, length) builds its first sample here, so a length
    too short for a task's template fails now rather than at the first probe."""
    if spec is None:
        return None
    max_pos = int(getattr(model.config, "max_position_embeddings", 0) or 0)
    window = max(max_pos, extend.max_length if extend is not None else 0) or max(spec.lengths)
    over = [n for n in spec.lengths if n > window]
    if over:
        raise ConfigError(
            f"field 'probe.lengths': {over[0]} exceeds the model's {window}-token window; probe shorter lengths "
            f"or add an 'extend:' section with max_length >= {over[0]}"
        )
    for name in spec.tasks:
        _check_builds(name, spec, tok, window)
    settings, plan = _ppl_plan(spec, tok) if spec.ppl else (None, None)
    return ProbePlan(spec, window, seq_len, settings, plan)


def task_settings(name: str, spec: ProbeSpec) -> dict[str, Any]:
    """The settings a task factory receives: the probe's lengths, samples and seed; needle grids place their
    `samples` needles at evenly spaced depths."""
    from longkit.eval.tasks.registry import accepted_options

    options: dict[str, Any] = {}
    if "depths" in accepted_options(name):
        n = spec.samples
        options["depths"] = [50.0] if n == 1 else [round(100 * i / (n - 1), 2) for i in range(n)]
    return {"lengths": list(spec.lengths), "samples": spec.samples, "seed": spec.seed, "options": options}


def _check_builds(name: str, spec: ProbeSpec, tok: Any, window: int) -> None:
    """Build the first sample of each length (the task's own fitting to the length), naming what does not fit."""
    from longkit.backends.base import TextTokenizer
    from longkit.eval.tasks.registry import make_task

    task = make_task(name, task_settings(name, spec))
    text_tok = TextTokenizer(tok)
    firsts: dict[Any, dict[str, Any]] = {}
    for s in task.plan():
        firsts.setdefault(s.get("length"), s)
    for length, s in firsts.items():
        try:
            task.build(s, text_tok, window)
        except LongkitError as exc:
            raise ConfigError(f"field 'probe.lengths': task {name} cannot be built at length {length}: {exc}") from None


def _ppl_documents() -> list[Any]:
    """The fixed text perplexity is measured on: Paul Graham's essays when installed, else Python's reference docs
    (both offline; the same sources the needle haystacks use)."""
    from longkit.eval.haystack import paul_graham_files, pydoc_text
    from longkit.eval.ppl_data import ESSAYS, Document, load_documents

    if paul_graham_files():
        return load_documents(ESSAYS)
    return [Document("pydoc", pydoc_text())]


def _ppl_plan(spec: ProbeSpec, tok: Any) -> tuple[PplSettings, Plan]:
    """Windows of the longest probe length over the fixed text (tokenized once, scored at every probe)."""
    from longkit.backends.base import TextTokenizer
    from longkit.eval.ppl import PplSettings, make_plan

    docs = _ppl_documents()
    longest = max(spec.lengths)
    settings = PplSettings(
        data=docs[0].id,
        lengths=[longest],
        bucket=max(1, longest // PPL_BUCKETS),
        windows_per_document=spec.samples,
        bootstrap=100,
        seed=spec.seed,
    )
    try:
        return settings, make_plan(docs, TextTokenizer(tok), settings)
    except InputError:
        raise ConfigError(
            f"field 'probe.ppl': the fixed text ({docs[0].id}) is shorter than {longest} tokens; "
            "set ppl: false or probe shorter lengths"
        ) from None


# ---------------------------------------------------------------------------------------------------
# Running one probe
# ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def isolated(model: Any, tok: Any) -> Iterator[None]:
    """Eval mode without gradients, then everything the training reads put back as it was: the random generators
    (python, numpy, torch CPU and CUDA), the train/eval mode, `config.use_cache` (False while training: a KV cache
    would let packed documents attend to each other), the generation config and the tokenizer's pad token (the
    generation backend sets one when missing, and final/ saves the tokenizer)."""
    import numpy as np
    import torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    was_training = model.training
    use_cache = getattr(model.config, "use_cache", None)
    generation = copy.deepcopy(getattr(model, "generation_config", None))
    pad = tok.pad_token
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
        model.config.use_cache = use_cache
        if generation is not None:
            model.generation_config = generation
        if tok.pad_token != pad:
            tok.pad_token = pad
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def run_probe(model: Any, tok: Any, plan: ProbePlan, step: int, tokens: int, workdir: Path) -> dict[str, Any]:
    """One probe of the model as it is now: the probes.jsonl row (scores per task and length, effective lengths,
    perplexity by position, wall seconds). Per-sample answers are kept under workdir."""
    from longkit.backends.hf import HFBackend

    t0 = time.perf_counter()
    if workdir.exists():  # a probe of this step cut short before a resume: its answers are of no use
        shutil.rmtree(workdir)
    with isolated(model, tok):
        backend = HFBackend(model, tok, max_context=plan.window, batch_size=plan.spec.batch_size)
        scores = {name: _task_scores(name, plan, backend, workdir / name) for name in plan.spec.tasks}
        ppl = _ppl(plan, backend) if plan.ppl_plan is not None else None
    return {
        "step": step,
        "tokens": tokens,
        "scores": scores,
        **effective_lengths(scores, plan.threshold),
        "ppl": ppl,
        "wall_s": round(time.perf_counter() - t0, 3),
    }


def _task_scores(name: str, plan: ProbePlan, backend: Any, out: Path) -> dict[str, float]:
    """Mean score per length of one task, run by the eval runner (greedy) on the backend."""
    from longkit.eval.runner import run_task
    from longkit.eval.suite.aggregate import by_length
    from longkit.eval.tasks.registry import make_task

    task = make_task(name, task_settings(name, plan.spec))
    # the runner's notes (e.g. "4 of 4 answers are empty", common early in training) would flood the training log
    with contextlib.redirect_stderr(io.StringIO()):
        summary = run_task(task, backend, out, batch_size=plan.spec.batch_size, progress=False, model_name="probe")
    return {str(n): round(s, 4) for n, s in sorted(by_length(summary).items())}


def effective_lengths(scores: dict[str, dict[str, float]], threshold: float) -> dict[str, Any]:
    """RULER's effective length (the suite's definition) of each task and of their mean at the lengths all tasks
    ran, as the suite averages a benchmark's tasks."""
    from longkit.eval.suite.aggregate import effective_length

    per_task = {t: effective_length({int(n): v for n, v in s.items()}, threshold) for t, s in scores.items()}
    common = set.intersection(*(set(s) for s in scores.values())) if scores else set()
    mean = {n: round(sum(s[n] for s in scores.values()) / len(scores), 4) for n in sorted(common, key=int)}
    return {
        "mean": mean,
        "effective_length": effective_length({int(n): v for n, v in mean.items()}, threshold),
        "task_effective_length": per_task,
    }


def _ppl(plan: ProbePlan, backend: Any) -> dict[str, Any]:
    """Token loss and perplexity of the fixed text at the longest probe length, overall and per position bucket."""
    from longkit.eval.ppl import request_of, score_window, summarize_ppl

    assert plan.ppl_plan is not None and plan.ppl_settings is not None
    windows, tokens = plan.ppl_plan.windows, plan.ppl_plan.tokens
    rows = []
    for b in range(0, len(windows), plan.spec.batch_size):
        batch = windows[b : b + plan.spec.batch_size]
        scored = backend.score([request_of(w, tokens[w.doc]) for w in batch])
        rows += [score_window(w, tokens[w.doc], s.logprobs, plan.ppl_settings.bucket) for w, s in zip(batch, scored)]
    summary = summarize_ppl(rows, plan.ppl_settings, plan.ppl_plan.too_short, plan.ppl_plan.documents)
    length = plan.ppl_settings.lengths[0]
    entry = summary["by_length"][str(length)]
    return {
        "text": plan.ppl_settings.data,
        "length": length,
        "bucket": plan.ppl_settings.bucket,
        "loss": entry["loss"],
        "ppl": entry["ppl"],
        "by_position": {k: round(math.exp(v), 3) for k, v in entry["by_position"].items()},
    }


def probe_metrics(row: dict[str, Any]) -> dict[str, float]:
    """A probes.jsonl row as flat scalars for the Trainer's loggers (no effective length is logged as 0)."""
    out: dict[str, float] = {"probe/tokens": float(row["tokens"]), "probe/wall_s": float(row["wall_s"])}
    for task, by in row["scores"].items():
        out.update({f"probe/{task}/{n}": float(v) for n, v in by.items()})
        out[f"probe/{task}/effective_length"] = float(row["task_effective_length"].get(task) or 0)
    out["probe/effective_length"] = float(row["effective_length"] or 0)
    if row.get("ppl"):
        out["probe/ppl"] = float(row["ppl"]["ppl"])
        out.update({f"probe/ppl/{k}": float(v) for k, v in row["ppl"]["by_position"].items()})
    return out


# ---------------------------------------------------------------------------------------------------
# probes.jsonl
# ---------------------------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a probes.jsonl (a torn last line, from a run killed mid-write, is left out)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


def keep_through(path: Path, step: int) -> list[dict[str, Any]]:
    """Drop the rows after `step` (probes of steps a resumed run trains again) and return the rows kept."""
    rows = read_rows(path)
    kept = [r for r in rows if r["step"] <= step]
    if path.exists() and len(kept) != len(path.read_text().splitlines()):
        from longkit.io import atomic_write_text

        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
    return kept


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one probe row, flushed to disk (a crash right after a probe keeps it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# ---------------------------------------------------------------------------------------------------
# The callback
# ---------------------------------------------------------------------------------------------------


class ProbeCallback(TrainerCallback):
    """Probes the trainer's model every `every` steps, at each checkpoint and at the end of training.

    Rank 0 probes alone and the other ranks wait at a barrier: a probe is a handful of greedy generations, which
    do not split across data-parallel ranks without gathering answers, and the ranks' weights are the same. Under
    FSDP or DeepSpeed ZeRO-3 the weights are sharded, so every forward pass gathers them from all ranks: there
    every rank runs the same probe in lockstep (greedy decoding gives every rank the same tokens, hence the same
    number of forward passes) and rank 0 alone writes. A long probe must fit in the process group's timeout
    (TrainingArguments.ddp_timeout) for the waiting ranks."""

    def __init__(self, trainer: Any, plan: ProbePlan, out: Path, tokens_per_step: int, resume_step: int = 0):
        self.trainer = trainer
        self.plan = plan
        self.path = out / PROBES
        self.workdir = out / PROBE_DIR
        self.tokens_per_step = tokens_per_step
        self.resume_step = resume_step
        self.done: set[int] = set()
        self.rows: list[dict[str, Any]] = []  # this process's rows of this run (written on rank 0)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        # a resumed run keeps the probes up to its checkpoint and probes again only the steps it trains again
        if self.trainer.is_world_process_zero():
            self.done = {r["step"] for r in keep_through(self.path, self.resume_step)}
        else:
            self.done = {r["step"] for r in read_rows(self.path) if r["step"] <= self.resume_step}

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        # a checkpoint step is probed here, before the save, so the checkpoint's log history holds the probe
        if state.global_step % self.plan.spec.every == 0 or control.should_save:
            self.probe(state.global_step)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self.probe(state.global_step)  # a save not announced at the step's end

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self.probe(state.global_step)  # the final model, also without checkpoints

    def probe(self, step: int) -> None:
        """Probe at `step` unless already done (by this run or the run it resumes)."""
        if step in self.done or step <= 0:
            return
        self.done.add(step)
        trainer = self.trainer
        main = trainer.is_world_process_zero()
        if main:
            row = self._run(step, self.workdir / f"step-{step}")
            append_row(self.path, row)
            self.rows.append(row)
            trainer.log(probe_metrics(row))
        elif self._lockstep():
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:  # the same answers as rank 0's, not written twice
                self._run(step, Path(tmp) / "probe")
        trainer.accelerator.wait_for_everyone()

    def _run(self, step: int, workdir: Path) -> dict[str, Any]:
        trainer = self.trainer
        # the training's mixed precision (bf16 autocast over fp32 master weights; nothing on CPU in fp32): the probe
        # measures the model as it computes in training, at training speed
        with trainer.accelerator.autocast():
            return run_probe(
                trainer.model, trainer.processing_class, self.plan, step, step * self.tokens_per_step, workdir
            )

    def _lockstep(self) -> bool:
        """Whether every rank must run the probe (sharded weights)."""
        return bool(
            getattr(self.trainer, "is_fsdp_enabled", False) or getattr(self.trainer, "is_deepspeed_enabled", False)
        )
