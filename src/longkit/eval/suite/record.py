"""The suite's run record (out/run.json): which models, tasks and settings made the results under out.

A rerun with the same record resumes; a model (by its label) or a task (by its name) recorded with other
settings, or other suite-wide settings, is refused in one line before anything is written. New models and
tasks join the record: their results sit in directories of their own. Settings that only shape the report
(name, threshold, reference_length) or the schedule (workers, shards) are not recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longkit.errors import ConfigError, InputError
from longkit.eval.suite.config import SuiteConfig
from longkit.eval.suite.layout import task_dir
from longkit.io import read_json, write_json

# BackendSpec fields that decide a model's answers; base_url (where a server is), api_key (a secret, never
# written) and batch_size (throughput) do not, so a rerun may change them.
MODEL_FIELDS = ("backend", "model", "tokenizer", "max_context", "prefix_reuse")
SETTINGS = ("lengths", "samples", "seed", "chat", "data", "allow_extrapolation")


def _task_key(name: str) -> str:
    from longkit.eval.tasks.registry import resolve_name

    return resolve_name(name)


def suite_record(cfg: SuiteConfig) -> dict[str, Any]:
    """What cfg records: each model's identity by label, each task's settings by name, the suite-wide settings."""
    from longkit import __version__

    record: dict[str, Any] = json.loads(
        json.dumps(
            {
                "kind": "suite",
                "models": {m.label: {f: getattr(m, f) for f in MODEL_FIELDS} for m in cfg.models},
                "tasks": {_task_key(t.name): t.model_dump(exclude={"name"}) for t in cfg.tasks},
                **{k: getattr(cfg, k) for k in SETTINGS},
                "longkit_version": __version__,
            }
        )
    )
    return record


def _first_change(cfg: SuiteConfig, old: dict[str, Any], new: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first recorded field cfg changes, spelt as in the suite YAML (`models[0].model`, `tasks[2].options`)."""
    for i, m in enumerate(cfg.models):
        was = old.get("models", {}).get(m.label)
        for f in MODEL_FIELDS if isinstance(was, dict) else ():
            if f in was and was[f] != new["models"][m.label][f]:
                return f"models[{i}].{f}", was[f], new["models"][m.label][f]
    for j, t in enumerate(cfg.tasks):
        was, now = old.get("tasks", {}).get(_task_key(t.name)), new["tasks"][_task_key(t.name)]
        for f in now if isinstance(was, dict) else ():
            if f in was and was[f] != now[f]:
                return f"tasks[{j}].{f}", was[f], now[f]
    for k in (*SETTINGS, "longkit_version"):
        if k in old and old[k] != new[k]:
            return k, old[k], new[k]
    return None


def _legacy_change(cfg: SuiteConfig) -> tuple[str, Any, Any] | None:
    """Without out/run.json (an older longkit's suite): a model recorded in a task's run.json under another name."""
    out = Path(cfg.out)
    for i, m in enumerate(cfg.models):
        for t in cfg.tasks if m.model else ():
            path = task_dir(out, m.label, _task_key(t.name)) / "run.json"
            was = read_json(path, "run record").get("model") if path.is_file() else None
            if was and was != m.model:
                return f"models[{i}].model", was, m.model
    return None


def check_suite_record(cfg: SuiteConfig) -> None:
    """Refuse cfg when cfg.out holds results of other models or settings; reads only, writes nothing."""
    from longkit.eval.runner import refusal

    path = Path(cfg.out) / "run.json"
    if path.is_file():
        old = read_json(path, "run record")
        if not isinstance(old, dict) or old.get("kind") != "suite":
            raise InputError(f"{path}: not a suite's run record; use a new --out or delete {cfg.out} to start fresh")
        change = _first_change(cfg, old, suite_record(cfg))
    else:
        change = _legacy_change(cfg)
    if change is not None:
        raise ConfigError(refusal(*change, cfg.out))


def write_suite_record(cfg: SuiteConfig) -> None:
    """Write out/run.json (creating out), adding cfg's new models and tasks to what it already records."""
    from longkit.io import output_dir

    out = output_dir(cfg.out)
    path = out / "run.json"
    new = suite_record(cfg)
    old = read_json(path, "run record") if path.is_file() else None
    if isinstance(old, dict):
        new = {
            **new,
            **{k: old[k] for k in SETTINGS if k in old},
            "models": {**new["models"], **old.get("models", {})},
            "tasks": {**new["tasks"], **old.get("tasks", {})},
        }
    if new != old:
        write_json(path, new)
