"""What produced a training output, recorded in it and checked on every rerun.

A training output (a CPT run's `out`, an SFT stage's `out/<stage>`) holds `train_run.json`: the model it
started from, the data it read and every setting that changes the weights. A rerun compares what it would
do with that record before it writes anything:

- same settings, final model there: "already complete", nothing changes (the stored summary is returned);
- same settings, not finished: resume from the last checkpoint;
- other settings: refused in one line naming the field, the recorded and the new value, and how to start
  fresh. A run that trained to its `max_steps` trains further only when asked (`--continue`).

Settings that only change speed or logging (save_steps, logging, attention kernel, loss chunking, loader
workers) are not recorded: a rerun may change them. The batch is recorded as the global batch (per-device
batch x accumulation x processes), which is what the optimiser sees.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from longkit.errors import ConfigError, InputError
from longkit.io import read_json, write_json
from longkit.rerun import first_difference, jsonable
from longkit.train.config import TrainSpec

RECORD = "train_run.json"

# TrainSpec fields that change the trained weights; the others change speed, memory or logging only.
RESULT_FIELDS = (
    "learning_rate",
    "min_lr",
    "lr_scheduler",
    "warmup_steps",
    "max_steps",
    "num_epochs",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "max_grad_norm",
    "seed",
    "precision",
)


def train_settings(spec: TrainSpec, processes: int) -> dict[str, Any]:
    """The recorded optimisation settings of one run."""
    settings: dict[str, Any] = {k: getattr(spec, k) for k in RESULT_FIELDS}
    settings["global_batch_size"] = spec.per_device_batch_size * spec.grad_accum * processes
    return settings


def digest(record: dict[str, Any]) -> str:
    """A short content hash of a record: what a downstream run records as its starting model."""
    return hashlib.sha256(json.dumps(jsonable(record), sort_keys=True).encode("utf-8")).hexdigest()[:16]


def model_identity(model: str) -> dict[str, Any]:
    """What a run starts from: a trained output's own record digest (so a change upstream is a change here), a
    local directory's config and weight files, or a model name."""
    path = Path(model)
    if not path.is_dir():
        return {"name": model}
    upstream = path.parent / RECORD
    if upstream.is_file():
        previous = read_json(upstream, "training record")
        if isinstance(previous, dict):
            return {"trained": str(path.resolve()), "record": digest(previous)}
    config = path / "config.json"
    weights = sorted(
        (p.name, p.stat().st_size) for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf", ".pt")
    )
    return {
        "path": str(path.resolve()),
        "config_sha256": hashlib.sha256(config.read_bytes()).hexdigest()[:16] if config.is_file() else None,
        "weights": [list(w) for w in weights],
    }


def file_identity(path: str | Path) -> dict[str, Any]:
    """A data file by content: its SHA-256 and size (a renamed copy is the same data, an edited file is not)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return {"sha256": h.hexdigest()[:16], "bytes": Path(path).stat().st_size}


def read_record(out: Path) -> dict[str, Any] | None:
    """out's training record; None when out holds none."""
    path = out / RECORD
    if not path.exists():
        return None
    record = read_json(path, "training record")
    if not isinstance(record, dict):
        raise InputError(f"{path}: expected a JSON object (the training record); delete {out} to start fresh")
    return record


def is_finished(out: Path) -> bool:
    """Whether out holds a final model and the summary of the run that saved it."""
    return (out / "final" / "config.json").is_file() and (out / "summary.json").is_file()


def has_training_output(out: Path) -> bool:
    """Whether out holds checkpoints or a final model (of this or another run)."""
    return out.is_dir() and (any(out.glob("checkpoint-*")) or (out / "final").exists())


def refusal(what: str, field: str, old: Any, new: Any, out: Path, can_continue: bool = False) -> str:
    """The one line that refuses a rerun with other settings."""
    more = " pass --continue to train it further from its final model with a fresh schedule," if can_continue else ""
    data = re.fullmatch(r"(blend\[\d+\])\.data\.\w+", field)
    if data:  # a blended file edited since: its content hash differs
        field = data.group(1)
        said = f"its data changed since {out} was trained (content hash {str(old)[:8]}, now {str(new)[:8]})"
    elif field == "model":
        said = f"{out} was trained from {describe(field, old)}, not from {describe(field, new)}"
    else:
        said = f"{out} was trained with {describe(field, old)}, not {describe(field, new)}"
    return f"{what}field '{field}': {said};{more} use a new out, or delete {out} to start fresh"


def start_fresh(out: Path) -> None:
    """Remove a previous run's checkpoints, final model, summary and record (and nothing else of out), so a run
    started over cannot resume from, or be mistaken for, the old one."""
    from longkit.train.run import is_main_process

    if not out.is_dir() or not is_main_process():  # one process of a launch deletes; the others never resume
        return
    for path in [*out.glob("checkpoint-*"), out / "final", out / "extended", out / "summary.json", out / RECORD]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink(missing_ok=True)


def write_record(out: Path, record: dict[str, Any]) -> None:
    """Create out and record what this run is (the first write of a run)."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RECORD, jsonable(record))


def stored_summary(out: Path) -> dict[str, Any]:
    """A finished run's summary.json, marked as already complete."""
    summary = read_json(out / "summary.json", "run summary")
    return {**(summary if isinstance(summary, dict) else {}), "already_complete": True}


FRESH, RESUME, COMPLETE, CHANGED = "fresh", "resume", "complete", "changed"


def plan_rerun(out: Path, record: dict[str, Any], resume: bool = True) -> tuple[str, tuple[str, Any, Any] | None]:
    """What a run into out does: FRESH (nothing to keep, or the user asked to start over), RESUME (same settings,
    unfinished), COMPLETE (same settings, finished) or CHANGED with the first differing field."""
    previous = read_record(out)
    trained = has_training_output(out)
    if not resume:
        return FRESH, None
    if previous is None:
        if trained:
            raise ConfigError(
                f"out {out}: holds checkpoints or a final model but no {RECORD} (made by an older "
                "longkit, or by hand), so its settings cannot be checked; use a new out, or delete "
                f"{out} to start fresh"
            )
        return FRESH, None
    # a continued run records its continuations beside the settings it was started with
    change = first_difference(jsonable({k: v for k, v in previous.items() if k != "continued"}), jsonable(record))
    if change is None:
        return (COMPLETE if is_finished(out) else RESUME), None
    if not trained:  # stopped before its first checkpoint: nothing of the old settings to keep
        return FRESH, None
    if change[0].startswith("model"):  # a model is named as a whole (its name or path), not by a part of it
        change = ("model", previous.get("model"), jsonable(record.get("model")))
    return CHANGED, change


def describe(field: str, value: Any) -> str:
    """A recorded value for a message: a model's identity by its name or path, anything else as JSON."""
    if field == "model" and isinstance(value, dict):
        if value.get("trained"):  # another training output's final model, as its record made it
            return f"{value['trained']} (training record {str(value.get('record'))[:8]})"
        return str(value.get("name") or value.get("path"))
    return json.dumps(value)
