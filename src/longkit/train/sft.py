"""Instruction tuning (`longkit train sft CONFIG`): ChatQA-format stages with blends, answer-only loss,
and packing without attention across samples (position ids restart per sample)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from longkit.errors import ConfigError, located
from longkit.sft.format import IGNORE
from longkit.train.config import SFTConfig, StageSpec, load_train_config, stage_train_spec

log = logging.getLogger(__name__)


def load_sft_rows(path: str | Path, tokenizer: Any, system: str | None = None) -> list[tuple[list[int], list[int]]]:
    """Tokenize an SFT JSONL file into (input_ids, labels) pairs; bad rows name file:line."""
    from longkit.io import iter_jsonl
    from longkit.sft.format import encode_chatqa, row_to_conversation

    out = []
    for lineno, row in iter_jsonl(path):
        with located(f"{path}:{lineno}"):
            msgs, ctx, sys_msg = row_to_conversation(row)
            out.append(encode_chatqa(tokenizer, msgs, ctx, sys_msg or system))
    return out


def pack_examples(
    examples: list[tuple[list[int], list[int]]], seq_len: int, pad_id: int, pack: bool = True
) -> tuple[list[dict[str, np.ndarray]], int]:
    """Greedy in-order packing into seq_len rows; returns (rows, number of examples too long to fit)."""
    rows: list[dict[str, np.ndarray]] = []
    cur_ids: list[int] = []
    cur_lab: list[int] = []
    cur_pos: list[int] = []
    dropped = 0

    def flush() -> None:
        nonlocal cur_ids, cur_lab, cur_pos
        if not cur_ids:
            return
        pad = seq_len - len(cur_ids)
        ids = cur_ids + [pad_id] * pad
        lab = cur_lab + [IGNORE] * pad
        pos = cur_pos + list(range(pad))  # padding is its own segment: no real token attends to it
        rows.append(
            {
                "input_ids": np.asarray(ids, np.int32),
                "labels": np.asarray(lab, np.int32),
                "position_ids": np.asarray(pos, np.int32),
            }
        )
        cur_ids, cur_lab, cur_pos = [], [], []

    for ids, lab in examples:
        if len(ids) > seq_len:
            dropped += 1
            continue
        if cur_ids and (not pack or len(cur_ids) + len(ids) > seq_len):
            flush()
        cur_ids += ids
        cur_lab += lab
        cur_pos += list(range(len(ids)))
    flush()
    return rows, dropped


class PackedRows(torch.utils.data.Dataset[dict[str, np.ndarray]]):
    """Map-style dataset over packed SFT rows (the Trainer's sampler makes resume exact)."""

    def __init__(self, rows: list[dict[str, np.ndarray]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return self.rows[i]


def check_blend_paths(stage: StageSpec) -> None:
    """Every dataset a stage blends exists (an error naming the stage, the blend entry and the path); a Hub
    dataset item is fetched and converted here (longkit.sft.hub), or refused in one line when it cannot be."""
    from longkit.sft.hub import resolve_blend_item

    for i, item in enumerate(stage.blend):
        if item.dataset is not None:
            with located(f"stage '{stage.name}' blend[{i}]"):
                resolve_blend_item(item)
        elif not Path(item.label).is_file():
            raise ConfigError(f"stage '{stage.name}' blend[{i}] field 'path': dataset not found: {item.path}")


def check_blend_rows(stage: StageSpec) -> None:
    """Every row of a stage's datasets reads as a trainable conversation (an error naming file:line), untokenized."""
    from longkit.io import iter_jsonl
    from longkit.sft.format import check_trainable, row_to_conversation
    from longkit.sft.hub import resolve_blend_item

    for item in stage.blend:
        path = resolve_blend_item(item)
        for lineno, row in iter_jsonl(path):
            with located(f"{path}:{lineno}"):
                check_trainable(row_to_conversation(row)[0])


def build_stage_dataset(cfg: SFTConfig, stage: StageSpec, tokenizer: Any) -> tuple[PackedRows, dict[str, Any]]:
    """Tokenize, blend and pack one stage's datasets; returns the dataset and a blend report."""
    from longkit.sft.blend import plan_blend
    from longkit.sft.hub import blend_item_counts, resolve_blend_item

    check_blend_paths(stage)
    items = [{**b.model_dump(), "path": str(resolve_blend_item(b))} for b in stage.blend]
    data = [load_sft_rows(it["path"], tokenizer, cfg.system) for it in items]
    with located(f"stage '{stage.name}'", sep=" "):
        order, parts = plan_blend(items, [len(d) for d in data], stage.num_samples, seed=cfg.train.seed)
    seq_len = stage.seq_len or cfg.seq_len
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows, dropped = pack_examples([data[i][j] for i, j in order], seq_len, int(pad or 0), cfg.pack)
    if not rows:
        raise ConfigError(f"stage '{stage.name}': no sample fits seq_len {seq_len}")
    trained = sum(int((r["labels"] != IGNORE).sum()) for r in rows)
    report = {
        "stage": stage.name,
        "seq_len": seq_len,
        "rows": len(rows),
        "samples": len(order) - dropped,
        "dropped_too_long": dropped,
        "trained_tokens": trained,
        "datasets": [
            {"name": p.name, "size": p.size, "samples": p.samples, "effective_epochs": round(p.effective_epochs, 3)}
            for p in parts
        ],
    }
    hub = [c for c in (blend_item_counts(b) for b in stage.blend) if c is not None]
    if hub:  # what each Hub dataset's conversion read, kept and left out
        report["converted"] = hub
    return PackedRows(rows), report


def _selected_stages(cfg: SFTConfig, only_stage: str | None) -> list[StageSpec]:
    """The stages this run trains, their dataset paths checked."""
    names = [s.name for s in cfg.stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"field 'stages': stage names must be unique, got {names}")
    if only_stage is not None and only_stage not in names:
        raise ConfigError(f"no stage named '{only_stage}' (stages: {', '.join(names)})")
    selected = [s for s in cfg.stages if only_stage is None or s.name == only_stage]
    for stage in selected:
        check_blend_paths(stage)
    return selected


def stage_record(cfg: SFTConfig, stage: StageSpec, model: dict[str, Any]) -> dict[str, Any]:
    """What a stage is, for its training record: the model it starts from (identity), its data by content and
    every setting that changes its weights."""
    from longkit.sft.hub import resolve_blend_item
    from longkit.train.record import file_identity, train_settings
    from longkit.train.run import world_size

    with located(f"stage '{stage.name}'", sep=" "):
        spec = stage_train_spec(cfg, stage)
    blend = [
        {"weight": b.weight, "epochs": b.epochs, "data": file_identity(resolve_blend_item(b))} for b in stage.blend
    ]
    return {
        "kind": "sft",
        "stage": stage.name,
        "model": model,
        "blend": blend,
        "num_samples": stage.num_samples,
        "seq_len": stage.seq_len or cfg.seq_len,
        "system": cfg.system,
        "pack": cfg.pack,
        "train": train_settings(spec, world_size()),
    }


def plan_stages(
    cfg: SFTConfig, selected: list[StageSpec], where: str, retrain_changed: bool
) -> list[tuple[StageSpec, str, dict[str, Any]]]:
    """Each stage of the config with what this run does with it (a record.* action, or "skip" for a stage not
    selected) and its record, all decided before anything trains.

    A stage's model is the previous stage's final model, identified by that stage's record, so a change upstream
    is a change of every stage after it. A changed stage is refused in one line (`train sft`), or trained again
    with all that follows it (`train recipe`, retrain_changed)."""
    from longkit.train import record as rec

    chosen = {s.name for s in selected}
    model = rec.model_identity(cfg.model)
    plan: list[tuple[StageSpec, str, dict[str, Any]]] = []
    for stage in cfg.stages:
        out = Path(cfg.out) / stage.name
        if stage.name not in chosen:
            if not rec.is_finished(out) and any(s.name in chosen for s in cfg.stages[cfg.stages.index(stage) :]):
                raise ConfigError(
                    f"{where}: stage '{stage.name}' has no final model at {out / 'final'}, and the "
                    "stages after it start from it; train it first (run without --stage)"
                )
            plan.append((stage, "skip", {}))
            model = rec.model_identity(str(out / "final"))
            continue
        record = stage_record(cfg, stage, model)
        action, change = rec.plan_rerun(out, record, cfg.resume)
        if action == rec.CHANGED:
            assert change is not None
            if not retrain_changed:
                raise ConfigError(rec.refusal(f"{where}: stage '{stage.name}': ", *change, out))
            log.warning("%s: stage '%s': %s changed; training it again", where, stage.name, change[0])
            action = rec.FRESH
        plan.append((stage, action, record))
        model = {"trained": str((out / "final").resolve()), "record": rec.digest(record)}
    return plan


def run_sft(
    cfg: SFTConfig, where: str = "config", only_stage: str | None = None, retrain_changed: bool = False
) -> list[dict[str, Any]]:
    """Run the stages in order (each from the previous stage's final model); returns one summary per stage run,
    a finished stage's stored summary marked already_complete."""
    from longkit.train import record as rec

    with located(where):
        selected = _selected_stages(cfg, only_stage)
    for stage in selected:  # every stage's data is there and readable before the first stage trains
        check_blend_rows(stage)
    results = []
    src = cfg.model
    for stage, action, record in plan_stages(cfg, selected, where, retrain_changed):
        out = Path(cfg.out) / stage.name
        if action == rec.COMPLETE:
            results.append({**rec.stored_summary(out), "stage": stage.name})
        elif action != "skip":
            if action == rec.FRESH:
                rec.start_fresh(out)
            results.append(_run_stage(cfg, stage, src, where, resume=action == rec.RESUME, record=record))
        src = str(out / "final")
    return results


def _run_stage(
    cfg: SFTConfig, stage: StageSpec, src: str, where: str, resume: bool, record: dict[str, Any]
) -> dict[str, Any]:
    """Train one stage from `src`; errors of the config (not of the launcher or the model) are prefixed `where`."""
    from longkit.io import write_json
    from longkit.train.collate import PackedCollator
    from longkit.train.probe import probe_plan
    from longkit.train.record import write_record
    from longkit.train.run import check_fsdp_wrappable, check_launch, fit, is_main_process, load_trainable, world_size

    with located(where):
        spec = stage_train_spec(cfg, stage)
    check_launch(spec, stage.seq_len or cfg.seq_len, where, streaming=False)
    with located(where):
        if spec.context_parallel_size > 1 and cfg.pack:
            raise ConfigError(
                "packed SFT keeps samples apart with restarting position ids, which torch's context "
                "parallel does not honour; set pack: false with train.context_parallel_size > 1"
            )
    model, tok = load_trainable(src, spec)
    # the rows were read and checked above (check_blend_rows), so what fails here is the config's doing
    with located(where):
        check_fsdp_wrappable(model)
        ds, report = build_stage_dataset(cfg, stage, tok)
        if len(ds) < world_size() * spec.per_device_batch_size:
            raise ConfigError(
                f"stage '{stage.name}': {len(ds)} packed rows cannot feed {world_size()} processes x "
                f"batch {spec.per_device_batch_size} (fewer data shards than processes: add data or "
                "launch fewer processes)"
            )
        max_pos = getattr(model.config, "max_position_embeddings", None)
        if max_pos is not None and report["seq_len"] > max_pos:
            raise ConfigError(
                f"stage '{stage.name}' seq_len {report['seq_len']} exceeds the model's "
                f"max_position_embeddings {max_pos}"
            )
        probe = probe_plan(cfg.probe, model, tok, report["seq_len"])
    if report["dropped_too_long"]:
        log.warning(
            "%s: stage '%s': %d samples longer than seq_len %d were left out",
            where,
            stage.name,
            report["dropped_too_long"],
            report["seq_len"],
        )
    out = Path(cfg.out) / stage.name
    out.mkdir(parents=True, exist_ok=True)
    if is_main_process():  # every check passed: the stage's first writes
        write_record(out, record)
        write_json(out / "blend.json", report)
    return fit(
        model,
        tok,
        ds,
        PackedCollator(),
        spec,
        out,
        resume,
        streaming=False,
        summary_extra={"kind": "sft", "stage": stage.name, "model": src, "blend": report},
        probe=probe,
    )


def sft_from_file(path: str | Path, stage: str | None = None, **overrides: Any) -> list[dict[str, Any]]:
    """Load an SFT YAML, apply training overrides, and run it."""
    cfg = load_train_config(SFTConfig, path)
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg.train, k, v)
    return run_sft(cfg, where=str(path), only_stage=stage)
