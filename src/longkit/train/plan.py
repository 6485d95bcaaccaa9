"""`longkit train plan CONFIG --gpus N --gpu-memory 80GiB`: what a CPT config, SFT config or recipe will need
before it runs: RoPE check, data mix, model shape, memory per GPU, context-parallel degree, tokens, wall time
and the commands to launch it. The arithmetic is in plan_memory.py, the data mix in plan_data.py, the text and
commands in plan_report.py; this module reads the inputs and puts the plan together.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from longkit.errors import ConfigError, InputError
from longkit.train.plan_memory import GIB, SHARDINGS, MemorySetting, ModelShape
from longkit.train.plan_options import Phase, PlanOptions

MAX_GPUS = 100_000
MIN_MEMORY = 64 * 1024**2  # below any accelerator (or host) a training run could use
MAX_MEMORY = 64 * 1024**4  # 64 TiB: past any single device, even a host's RAM
MAX_PEAK_TFLOPS = 1e6
_UNITS = {
    "": GIB,  # a bare number is GiB, the unit GPU memory is quoted in
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "k": 1024,
    "m": 1024**2,
    "g": GIB,
    "t": 1024**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": GIB,
    "tib": 1024**4,
}


def parse_memory(text: str) -> int:
    """'80GiB', '80GB', '80G', '81920MiB' or a bare number of GiB, in bytes; anything else is a ConfigError."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", text or "")
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise ConfigError(f"--gpu-memory: expected a size like 80GiB, 80GB or 141G, got '{text}'")
    value = float(m.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or not MIN_MEMORY <= value <= MAX_MEMORY:
        raise ConfigError(f"--gpu-memory: {text} is outside 64MiB .. 64TiB")
    return int(value)


def check_options(opts: PlanOptions) -> None:
    """Refuse absurd hardware assumptions before anything is read or written."""
    if not 1 <= opts.gpus <= MAX_GPUS:
        raise ConfigError(f"--gpus must be between 1 and {MAX_GPUS}, got {opts.gpus}")
    if not (math.isfinite(opts.mfu) and 0 < opts.mfu <= 1):
        raise ConfigError(f"--mfu must be in (0, 1], got {opts.mfu}")
    if not (math.isfinite(opts.peak_tflops) and 0 < opts.peak_tflops <= MAX_PEAK_TFLOPS):
        raise ConfigError(f"--peak-tflops must be in (0, {MAX_PEAK_TFLOPS:g}], got {opts.peak_tflops}")
    if opts.sharding not in SHARDINGS:
        raise ConfigError(f"--sharding must be one of {', '.join(SHARDINGS)}, got '{opts.sharding}'")
    if opts.device not in ("cuda", "cpu"):
        raise ConfigError(f"--device must be cuda or cpu, got '{opts.device}'")
    if opts.precision not in (None, "bf16", "fp32"):
        raise ConfigError(f"--precision must be bf16 or fp32, got '{opts.precision}'")
    if not 1 <= opts.sample_docs <= 1_000_000:
        raise ConfigError(f"--sample-docs must be between 1 and 1000000, got {opts.sample_docs}")


# ------------------------------------------------------------------------------------------------------------
# Reading the model's config.json without loading weights
# ------------------------------------------------------------------------------------------------------------


def read_model_config(name: str) -> tuple[dict[str, Any], str]:
    """(config.json mapping, where it was read) for a bundled name, GGUF file, local directory or cached hub id."""
    from longkit.models.load import resolve

    src = resolve(name)  # InputError for a missing local path
    if src.kind == "dir":
        return _read_json(Path(src.path) / "config.json"), str(Path(src.path) / "config.json")
    if src.kind == "gguf":
        return _gguf_config(Path(src.path))
    return _hub_config(src.path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the model config ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data


def _gguf_config(gguf: Path) -> tuple[dict[str, Any], str]:
    """A GGUF's config: from longkit's de-quantised cache when present, else parsed from the file's metadata."""
    from longkit.models.load import check_gguf, gguf_cache_dir

    check_gguf(gguf)
    cached = gguf_cache_dir(gguf) / "config.json"
    if cached.is_file():
        return _read_json(cached), str(cached)
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    except Exception as exc:  # the GGUF reader raises many types on a damaged file
        raise InputError(f"{gguf}: cannot read the model config from the GGUF metadata ({exc})") from None
    return dict(cfg.to_dict()), str(gguf)


def _hub_config(repo: str) -> tuple[dict[str, Any], str]:
    """A hub id's config.json from the local Hugging Face cache only (the plan never downloads)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(repo, "config.json")
    except Exception:  # an id the hub library refuses to parse
        path = None
    if not isinstance(path, str):
        raise InputError(
            f"model '{repo}': config.json is not in the Hugging Face cache (the plan works offline); point "
            "model at a local directory with its config.json, or download it first"
        )
    return _read_json(Path(path)), path


# ------------------------------------------------------------------------------------------------------------
# The config: CPT, SFT or a recipe, as a list of phases
# ------------------------------------------------------------------------------------------------------------


def load_phases(path: str) -> tuple[str, list[Phase], Any]:
    """(kind: cpt | sft | recipe, phases in run order, the CPT data config or None)."""
    from longkit.config import load_yaml
    from longkit.train.config import CPTConfig, SFTConfig, load_train_config, stage_train_spec

    raw = load_yaml(path)
    is_recipe = any(isinstance(raw.get(k), dict) for k in ("cpt", "sft"))
    kind = "recipe" if is_recipe else ("sft" if "stages" in raw else "cpt")
    phases: list[Phase] = []
    dcfg = None
    if kind in ("cpt", "recipe") and (kind == "cpt" or isinstance(raw.get("cpt"), dict)):
        from longkit.train.cpt import cpt_data_config

        cpt = load_train_config(CPTConfig, path)
        dcfg = cpt_data_config(cpt, f"{path}: cpt" if is_recipe else str(path))
        phases.append(Phase("cpt", "cpt", cpt, cpt.train, dcfg.seq_len, cpt.model))
    if kind == "sft" or (is_recipe and isinstance(raw.get("sft"), dict)):
        sft = load_train_config(SFTConfig, path)
        for st in sft.stages:
            spec = stage_train_spec(sft, st)
            phases.append(Phase(f"sft:{st.name}", "sft", sft, spec, st.seq_len or sft.seq_len, sft.model))
    return kind, phases, dcfg


def phase_shape(phase: Phase, phases: list[Phase]) -> tuple[ModelShape, dict[str, Any], str]:
    """The phase's model shape; an SFT stage whose model is the CPT output (not made yet) takes the CPT model's."""
    from longkit.models.load import resolve

    model = phase.model
    if phase.kind == "sft" and phases[0].kind == "cpt":
        try:
            resolve(model)
        except InputError:  # <cpt out>/final before the CPT run: same architecture as the CPT model
            model = phases[0].model
    cfg, where = read_model_config(model)
    return ModelShape.from_config(cfg, where), cfg, where


def memory_setting(phase: Phase, opts: PlanOptions) -> MemorySetting:
    """The memory model's settings for one phase under the command line's hardware."""
    precision = opts.precision or phase.spec.precision
    if precision in ("auto", "fp16"):  # auto trains bf16 on GPUs, float32 on CPU; fp16 has bf16's footprint
        precision = "bf16" if opts.device == "cuda" else "fp32"
    return MemorySetting(
        seq_len=phase.seq_len,
        micro_batch=phase.spec.per_device_batch_size,
        precision=precision,
        gradient_checkpointing=phase.spec.gradient_checkpointing,
        loss_chunk_size=phase.spec.loss_chunk_size,
        sharding=opts.sharding,
        gpus=opts.gpus,
        device=opts.device,
    )


def make_plan(config: str, opts: PlanOptions) -> dict[str, Any]:
    """The whole plan as a JSON-ready mapping (nothing written)."""
    from longkit.train.plan_report import commands, phase_plan, rope_plan

    check_options(opts)
    kind, phases, dcfg = load_phases(config)
    shapes = [phase_shape(p, phases) for p in phases]
    first_shape, first_cfg, where = shapes[0]
    plan: dict[str, Any] = {
        "config": config,
        "kind": kind,
        "hardware": _hardware(opts),
        "model": {"name": phases[0].model, "config_from": where, **first_shape.as_dict()},
        "rope": rope_plan(phases, first_cfg, first_shape),
    }
    if dcfg is not None:
        from longkit.train.plan_data import data_mix

        corpus = Path(phases[0].config.corpus) if phases[0].config.corpus else Path(dcfg.out) / "corpus"
        plan["data"] = _prepared_mix(config, dcfg, corpus, opts.sample_docs) or data_mix(dcfg, corpus, opts.sample_docs)
    plan["phases"] = [phase_plan(p, shape, memory_setting(p, opts), opts) for p, (shape, _, _) in zip(phases, shapes)]
    plan["totals"] = _totals(plan["phases"])
    plan["commands"] = commands(config, kind, plan, opts, dcfg)
    return plan


def _prepared_mix(config: str, dcfg: Any, corpus: Path, sample_docs: int) -> dict[str, Any] | None:
    """A recipe with `prepare: python-docs` writes its inputs when it runs: sample them from a temporary copy
    (None when the recipe prepares nothing, or its corpus is already built)."""
    import dataclasses
    import tempfile

    from longkit.config import load_yaml
    from longkit.train.plan_data import data_mix
    from longkit.train.recipe import prepare_python_docs

    raw = load_yaml(config)
    if raw.get("prepare") != "python-docs" or (corpus / "offsets.npy").is_file():
        return None
    inputs = Path(str(raw.get("out", "runs/recipe"))) / "inputs"
    with tempfile.TemporaryDirectory(prefix="longkit-plan-") as tmp:
        prepare_python_docs(Path(tmp))
        sources = [
            dataclasses.replace(s, path=str(Path(tmp) / Path(s.path).relative_to(inputs)))
            if not Path(s.path).exists() and Path(s.path).is_relative_to(inputs)
            else s
            for s in dcfg.sources
        ]
        mix = data_mix(dcfg.model_copy(update={"sources": sources}), corpus, sample_docs)
    mix["note"] = "sources as the recipe's prepare step (python-docs) writes them, made in a temporary directory"
    return mix


def _hardware(opts: PlanOptions) -> dict[str, Any]:
    return {
        "gpus": opts.gpus,
        "gpu_memory_bytes": opts.gpu_memory,
        "gpu_memory_gib": round(opts.gpu_memory / GIB, 2),
        "sharding": opts.sharding,
        "device": opts.device,
        "mfu": opts.mfu,
        "peak_tflops": opts.peak_tflops,
    }


def _totals(phases: list[dict[str, Any]]) -> dict[str, Any]:
    hours = [p["time"]["hours"] for p in phases]
    return {
        "tokens": sum(p["tokens"]["total"] for p in phases),
        "hours": sum(hours),
        "fits": all(p["memory"]["context_parallel"] is not None for p in phases),
    }


def default_plan_path(config: str) -> Path:
    """<out>/plan.json, with out the config's (a recipe's root) `out` (runs/plan when it has none)."""
    from longkit.config import load_yaml

    raw = load_yaml(config)
    out = raw.get("out")
    return Path(out if isinstance(out, str) and out else "runs/plan") / "plan.json"


def check_json_path(path: Path) -> Path:
    """The plan file's path, refused (before any work) when it is a directory or cannot be created."""
    from longkit.cli_common import check_output_dir

    if path.is_dir():
        raise InputError(f"--json {path}: is a directory; give a file path")
    check_output_dir(path.parent, option="--json")
    return path


def run_plan(config: str, opts: PlanOptions, json_path: str | None = None) -> tuple[dict[str, Any], Path]:
    """Check the options and the output path, make the plan, write it as JSON; returns (plan, where written)."""
    from longkit.io import write_json

    check_options(opts)
    out = check_json_path(Path(json_path) if json_path else default_plan_path(config))
    plan = make_plan(config, opts)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, plan)
    return plan, out
