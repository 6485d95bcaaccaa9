"""The parts of a training plan that are assembled rather than computed: the RoPE check, each phase's memory,
tokens and time, the launch commands, and the plan as readable text."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

from longkit.errors import ConfigError
from longkit.train.plan_memory import (
    GIB,
    MemorySetting,
    ModelShape,
    memory_breakdown,
    smallest_cp,
    step_flops_per_token,
)

if TYPE_CHECKING:
    from longkit.data.config import DataConfig
    from longkit.train.plan_options import Phase, PlanOptions

MAX_MIN_BASE = 1 << 22  # models.rope's exact scan stops here


# ------------------------------------------------------------------------------------------------------------
# RoPE
# ------------------------------------------------------------------------------------------------------------


def rope_plan(phases: list[Phase], cfg: dict[str, Any], shape: ModelShape) -> dict[str, Any]:
    """Method, base and target length of the run, the minimum base for that length (Men et al. 2024, via
    models.rope) and whether the base clears it."""
    from longkit.models.rope import min_base, plan_extension, rope_settings

    ns = types.SimpleNamespace(**cfg)
    ns.head_dim, ns.max_position_embeddings = shape.head_dim, shape.max_positions or 0
    try:
        rope = rope_settings(ns)
    except ConfigError as exc:
        return {"method": None, "verdict": "unknown", "note": str(exc)}
    target = max(p.seq_len for p in phases)
    ext = getattr(phases[0].config, "extend", None) if phases[0].kind == "cpt" else None
    out: dict[str, Any] = {"model_base": float(rope["rope_theta"]), "model_rope_type": rope["rope_type"]}
    if ext is None:
        out |= {"method": "none", "base": float(rope["rope_theta"]), "target_length": target}
    else:
        target = max(target, ext.max_length)
        try:
            ep = plan_extension(ns, ext.method, ext.max_length, base=ext.base, factor=ext.factor, check_min_base=False)
        except ConfigError as exc:  # the CPT run would refuse this extension: the plan says so
            return {**out, "method": ext.method, "target_length": target, "verdict": "refused", "note": str(exc)}
        out |= {"method": ep.method, "base": ep.effective_base, "target_length": target}
    out["head_dim"] = shape.head_dim
    if target > MAX_MIN_BASE:
        return {**out, "min_base": None, "verdict": "unknown", "note": f"min-base is computed up to {MAX_MIN_BASE}"}
    mb = min_base(shape.head_dim, target)
    out["min_base"] = mb
    out["verdict"] = "clears" if out["base"] >= mb else "below"
    if out["method"] in ("pi", "yarn", "llama3") or rope["rope_type"] not in ("default", None):
        out["note"] = "positions are interpolated: the base bound is a guide, not the method's own limit"
    return out


# ------------------------------------------------------------------------------------------------------------
# One phase: memory, tokens, time
# ------------------------------------------------------------------------------------------------------------


def _gib(terms: dict[str, int]) -> dict[str, float]:
    return {k: round(v / GIB, 3) for k, v in terms.items()}


def phase_plan(phase: Phase, shape: ModelShape, s: MemorySetting, opts: PlanOptions) -> dict[str, Any]:
    """Memory per GPU (at cp 1 and at the smallest cp that fits), tokens and estimated wall time of one phase."""
    from dataclasses import replace

    cp, tried = smallest_cp(shape, s, opts.gpu_memory)
    at_cp = memory_breakdown(shape, replace(s, cp=cp or 1))
    memory = {
        "precision": s.precision,
        "gradient_checkpointing": s.gradient_checkpointing,
        "loss_chunk_size": s.loss_chunk_size,
        "micro_batch": s.micro_batch,
        "per_gpu_gib_cp1": _gib(memory_breakdown(shape, s)),
        "context_parallel": cp,
        "per_gpu_gib": _gib(at_cp),
        "total_gib_by_cp": {str(k): round(v / GIB, 3) for k, v in tried.items()},
        "fits": cp is not None,
    }
    dp = opts.gpus // (cp or 1)
    per_step = s.seq_len * s.micro_batch * phase.spec.grad_accum * dp
    steps = phase.spec.max_steps if phase.spec.max_steps > 0 else None
    total = per_step * steps if steps else None
    flops = total * step_flops_per_token(shape, s.seq_len) if total else None
    seconds = flops / (opts.gpus * opts.peak_tflops * 1e12 * opts.mfu) if flops else None
    return {
        "name": phase.name,
        "seq_len": s.seq_len,
        "memory": memory,
        "tokens": {
            "per_step": per_step,
            "data_parallel": dp,
            "steps": steps,
            "total": total or 0,
            "note": None if steps else "trained for num_epochs: steps depend on how the samples pack",
        },
        "time": {
            "flops": flops,
            "flops_per_token": step_flops_per_token(shape, s.seq_len),
            "seconds": round(seconds, 3) if seconds is not None else None,
            "hours": seconds / 3600 if seconds is not None else 0.0,
        },
    }


# ------------------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------------------


def accelerate_config(opts: PlanOptions, cp: int | None) -> tuple[str | None, str | None]:
    """(accelerate config file to launch with, what to change in it), per device, sharding and cp degree."""
    if opts.gpus == 1:
        return None, None
    if opts.device == "cpu":
        name = "cpu-ddp" if opts.sharding == "ddp" else "cpu-fsdp"
        return f"configs/accelerate/{name}.yaml", None
    if cp and cp > 1:
        return (
            "configs/accelerate/fsdp-context-parallel.yaml",
            f"set parallelism_config_cp_size: {cp} and parallelism_config_dp_shard_size: {opts.gpus // cp} in "
            f"it, and train.context_parallel_size: {cp}, train.attn_implementation: sdpa in the run config",
        )
    if opts.sharding == "fsdp":
        return "configs/accelerate/fsdp.yaml", None
    if opts.sharding == "ddp":
        return "configs/accelerate/cpu-ddp.yaml", "its MULTI_GPU launcher runs DDP on GPUs too"
    edit = "copy it with zero_stage: 2" if opts.sharding == "zero2" else None
    return "configs/accelerate/deepspeed-zero3.yaml", edit


def commands(
    config: str, kind: str, plan: dict[str, Any], opts: PlanOptions, dcfg: DataConfig | None
) -> dict[str, Any]:
    """The commands that run this config on this hardware, data first when the corpus is not built."""
    cps = [p["memory"]["context_parallel"] for p in plan["phases"]]
    cp = max((c for c in cps if c), default=None)
    acc, edit = accelerate_config(opts, cp)
    steps: list[str] = []
    data = plan.get("data")
    if data is not None and not data.get("corpus_built"):
        steps.append(_data_command(config, kind, dcfg))
    sub = {"cpt": "train cpt", "sft": "train sft", "recipe": "train recipe"}[kind]
    launch = (
        f"longkit {sub} {config}"
        if acc is None
        else f"accelerate launch --config_file {acc} --num_processes {opts.gpus} -m longkit {sub} {config}"
    )
    steps.append(launch)
    return {"accelerate_config": acc, "accelerate_config_change": edit, "context_parallel": cp, "run": steps}


def _data_command(config: str, kind: str, dcfg: DataConfig | None) -> str:
    from longkit.config import load_yaml

    raw = load_yaml(config)
    data = raw.get("cpt", {}).get("data") if kind == "recipe" else raw.get("data")
    if isinstance(data, str):
        return f"longkit data build {data}"
    out = dcfg.out if dcfg else "?"
    if kind == "recipe":
        return f"# the corpus at {out}/corpus is built by `longkit train recipe {config}` itself"
    return f"longkit data build DATA.yaml   # DATA.yaml: the config's inline data: mapping (out: {out})"


# ------------------------------------------------------------------------------------------------------------
# Text
# ------------------------------------------------------------------------------------------------------------


def _fmt_tokens(n: float | None) -> str:
    if not n:
        return "-"
    for unit, v in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= v:
            return f"{n / v:.3g}{unit}"
    return str(int(n))


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.3g} s"
    return f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h ({s / 86400:.2f} days)"


def render(plan: dict[str, Any]) -> str:
    """The plan as lines a person reads: model, RoPE, data, then each phase, then the commands."""
    hw, m, r = plan["hardware"], plan["model"], plan["rope"]
    lines = [
        f"plan for {plan['config']} ({plan['kind']}) on {hw['gpus']} x {hw['gpu_memory_gib']:g} GiB "
        f"{hw['device']}, {hw['sharding']}, MFU {hw['mfu']:g} of {hw['peak_tflops']:g} TFLOPs",
        f"model  {m['name']}: {m['layers']} layers, hidden {m['hidden']}, heads {m['heads']}/{m['kv_heads']} kv, "
        f"intermediate {m['intermediate']}, vocab {m['vocab']}, tied {m['tied_embeddings']}, "
        f"{m['parameters'] / 1e9:.3f}B parameters",
        _rope_line(r),
    ]
    lines += _data_lines(plan.get("data"))
    for p in plan["phases"]:
        lines += _phase_lines(p)
    c = plan["commands"]
    lines.append(f"accelerate config: {c['accelerate_config'] or '(single process, none)'}")
    if c["accelerate_config_change"]:
        lines.append(f"  change: {c['accelerate_config_change']}")
    lines += [f"  $ {cmd}" for cmd in c["run"]]
    return "\n".join(lines)


def _rope_line(r: dict[str, Any]) -> str:
    if r.get("min_base") is None:
        return f"rope   {r.get('method')}: {r.get('verdict')} ({r.get('note', '')})"
    note = f"; {r['note']}" if r.get("note") else ""
    return (
        f"rope   {r['method']}: base {r['base']:.4g} for {r['target_length']} tokens, min-base "
        f"{r['min_base']:.4g} at head dim {r['head_dim']}: {r['verdict']}{note}"
    )


def _data_lines(d: dict[str, Any] | None) -> list[str]:
    if d is None:
        return []
    if d["method"] == "unavailable":
        return [f"data   unavailable: {d['reason']}"]
    how = "corpus store metadata" if d["method"] == "corpus" else f"first {d['sample_docs_per_source']} docs/source"
    out = [
        f"data   from {how}{' (upsampled)' if d['upsampled'] else ''}: {_fmt_tokens(d['tokens'])} tokens, "
        f"{d['long_doc_share']:.1%} of docs / {d['long_token_share']:.1%} of tokens in docs >= 32K"
    ]
    out += [f"       {n}: {_fmt_tokens(s['tokens'])} tokens ({s['share']:.1%})" for n, s in d["sources"].items()]
    return out


def _phase_lines(p: dict[str, Any]) -> list[str]:
    mem, tok, t = p["memory"], p["tokens"], p["time"]
    g = mem["per_gpu_gib_cp1"]
    cp = mem["context_parallel"]
    fit = f"fits at context parallel {cp}" if cp else "does not fit at any context-parallel degree"
    at = mem["per_gpu_gib"]
    hours = _fmt_seconds(t["seconds"])
    return [
        f"phase  {p['name']}: seq_len {p['seq_len']}, {mem['precision']}, micro-batch {mem['micro_batch']}, "
        f"checkpointing {mem['gradient_checkpointing']}",
        f"  memory/GPU at cp 1 (GiB): params {g['parameters']:.2f}, grads {g['gradients']:.2f}, optimizer "
        f"{g['optimizer']:.2f}, working weights {g['working_weights']:.2f}, activations {g['activations']:.2f} "
        f"(no ckpt {g['activations_no_checkpointing']:.2f} / ckpt {g['activations_checkpointing']:.2f}), logits "
        f"{g['logits_chunked']:.2f} (unchunked {g['logits_unchunked']:.2f}), allowance {g['allowance']:.1f}: "
        f"total {g['total']:.2f}",
        f"  {fit}" + (f": {at['total']:.2f} GiB per GPU" if cp else ""),
        f"  tokens {_fmt_tokens(tok['per_step'])}/step x {tok['steps'] or '-'} steps = {_fmt_tokens(tok['total'])} "
        f"(data parallel {tok['data_parallel']}); est. {hours}",
    ]


def fits_line(plan: dict[str, Any]) -> str:
    """One closing line: whether every phase fits, and the total time."""
    tot = plan["totals"]
    verdict = "every phase fits" if tot["fits"] else "some phase does not fit: see above"
    hours = _fmt_seconds(tot["hours"] * 3600 if tot["hours"] else None)
    return f"{verdict}; {_fmt_tokens(tot['tokens'])} tokens, est. {hours}"
