"""RoPE context extension (ABF, PI, NTK, dynamic NTK, YaRN, Llama 3) and the minimum base for a length.

Extension methods write transformers' own `rope_parameters` (transformers 5 keeps the base there as
`rope_theta`), so an extended checkpoint loads with stock `from_pretrained` and trains as is.

The minimum base follows Men et al. 2024, "Base of RoPE Bounds Context Length": a model can only
keep its ability to attend to similar tokens far away while the long-term-decay term
B(m) = sum_i cos(m * theta_i), theta_i = base^(-2i/d), stays non-negative for every distance m < L.
Feasibility is not monotonic in the base (at head dim 128, 5e6 fails at m~83K while 4.9e6 holds to
~125K), so the search scans a fine log grid rather than bisecting. `min_base` is the smallest feasible grid base
(the paper's table); `min_base_report` adds the stable minimum, above which every grid base is feasible
(see MinBase).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longkit.errors import ConfigError

if TYPE_CHECKING:  # numpy is only named in annotations: the CLI reads METHODS without importing it
    import numpy as np

log = logging.getLogger(__name__)

METHODS = ("abf", "pi", "ntk", "dynamic", "yarn", "llama3")  # the one table of methods: configs and CLIs read it
METHOD_HELP = {
    "abf": "adjusted base frequency: set the RoPE base (ChatQA 2: Llama 3's 500K -> 150M)",
    "pi": "linear position interpolation (Chen et al. 2023): positions divided by the factor",
    "ntk": "NTK-aware scaling: base multiplied by factor^(d/(d-2)), static",
    "dynamic": "dynamic NTK: base grows with the running sequence length (inference-time method)",
    "yarn": "YaRN (Peng et al. 2023): per-frequency interpolation ramp plus attention temperature",
    "llama3": "Llama 3.1 scaling: low frequencies divided by the factor, high kept, smooth in between",
}
_ALIASES = {"linear": "pi", "pos-interp": "pi", "ntk-aware": "ntk", "dynamic-ntk": "dynamic", "llama3.1": "llama3"}


# ----------------------------------------------------------------------------------------------
# Reading a config
# ----------------------------------------------------------------------------------------------


def rope_settings(config: Any) -> dict[str, Any]:
    """The config's RoPE parameters as a flat dict with at least rope_type and rope_theta."""
    rope = getattr(config, "rope_parameters", None)
    rope = dict(rope) if rope else {}
    if "rope_theta" not in rope:
        theta = getattr(config, "rope_theta", None)
        if theta is None:
            raise ConfigError(f"{type(config).__name__}: no RoPE base (rope_parameters.rope_theta) in the config")
        rope["rope_theta"] = theta
    rope.setdefault("rope_type", rope.pop("type", "default"))
    return rope


def head_dim_of(config: Any) -> int:
    """Attention head dimension of a transformers config."""
    hd = getattr(config, "head_dim", None)
    return int(hd) if hd else int(config.hidden_size // config.num_attention_heads)


# ----------------------------------------------------------------------------------------------
# Extension
# ----------------------------------------------------------------------------------------------


@dataclass
class ExtensionPlan:
    """What an extension changes: the new rope parameters and max positions, plus notes for the user."""

    method: str
    original_length: int
    target_length: int
    rope_parameters: dict[str, Any]
    max_position_embeddings: int
    effective_base: float
    min_base: float | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {
            "method": self.method,
            "original_length": self.original_length,
            "target_length": self.target_length,
            "rope_parameters": self.rope_parameters,
            "max_position_embeddings": self.max_position_embeddings,
            "effective_base": self.effective_base,
            "min_base": self.min_base,
            "warnings": self.warnings,
        }


def normalise_method(method: str) -> str:
    """Canonical method name; unknown names raise ConfigError listing the known ones."""
    m = _ALIASES.get(method.lower().strip(), method.lower().strip())
    if m not in METHODS:
        raise ConfigError(f"unknown RoPE extension method '{method}' (expected one of: {', '.join(METHODS)})")
    return m


@dataclass(frozen=True)
class _Inputs:
    """What every method's rule reads: the model's RoPE, the target, and the method's own knobs."""

    theta: float  # the model's current base
    start: float  # --base if given, else theta
    factor: float
    head_dim: int
    original_length: int
    max_length: int
    beta_fast: float | None
    beta_slow: float | None
    low_freq_factor: float
    high_freq_factor: float


@dataclass
class _Rule:
    """A method's result: the rope parameters, the effective base, max positions and notes."""

    params: dict[str, Any]
    effective_base: float
    max_positions: int
    warnings: list[str] = field(default_factory=list)


def _abf(x: _Inputs) -> _Rule:
    return _Rule({"rope_type": "default", "rope_theta": x.start}, x.start, x.max_length)


def _ntk(x: _Inputs) -> _Rule:
    # NTK-aware: stretch the lowest frequency by the factor while keeping the highest one.
    effective = x.theta * x.factor ** (x.head_dim / (x.head_dim - 2))
    return _Rule({"rope_type": "default", "rope_theta": effective}, effective, x.max_length)


def _pi(x: _Inputs) -> _Rule:
    return _Rule({"rope_theta": x.start, "rope_type": "linear", "factor": x.factor}, x.start, x.max_length)


def _dynamic(x: _Inputs) -> _Rule:
    d, orig = x.head_dim, x.original_length
    effective = x.theta * ((x.factor * x.max_length / orig) - (x.factor - 1)) ** (d / (d - 2))
    # transformers reads the original length for dynamic NTK from max_position_embeddings, so it must stay.
    note = (
        f"dynamic NTK is an inference-time method: max_position_embeddings stays {orig} because transformers "
        f"scales the base relative to it as sequences grow (base {effective:.4g} at {x.max_length} tokens)"
    )
    return _Rule({"rope_theta": x.start, "rope_type": "dynamic", "factor": x.factor}, effective, orig, [note])


def _yarn(x: _Inputs) -> _Rule:
    params: dict[str, Any] = {
        "rope_theta": x.start,
        "rope_type": "yarn",
        "factor": x.factor,
        "original_max_position_embeddings": x.original_length,
    }
    if x.beta_fast is not None:
        params["beta_fast"] = float(x.beta_fast)
    if x.beta_slow is not None:
        params["beta_slow"] = float(x.beta_slow)
    return _Rule(params, x.start, x.max_length)


def _llama3(x: _Inputs) -> _Rule:
    params = {
        "rope_theta": x.start,
        "rope_type": "llama3",
        "factor": x.factor,
        "original_max_position_embeddings": x.original_length,
        "low_freq_factor": float(x.low_freq_factor),
        "high_freq_factor": float(x.high_freq_factor),
    }
    return _Rule(params, x.start, x.max_length)


# Each method's rule, by the names of METHODS: adding a method is its rule here plus its name and help above.
_RULES = {"abf": _abf, "pi": _pi, "ntk": _ntk, "dynamic": _dynamic, "yarn": _yarn, "llama3": _llama3}
_TAKES_BASE = ("abf", "pi", "yarn", "llama3")  # methods that read --base (abf needs it; the others start from it)
_CHECKS_MIN_BASE = ("abf", "ntk")  # methods that leave plain RoPE with a new base, so Men et al.'s bound applies


def _check_extension(method: str, max_length: int, orig_len: int, factor: float, base: float | None) -> None:
    """Refuse arguments no method can honour, naming the option."""
    if max_length < orig_len:
        raise ConfigError(
            f"--max-length {max_length} is below the model's current length {orig_len}; "
            "extension only grows the context"
        )
    if factor < 1:
        raise ConfigError(f"--factor must be >= 1, got {factor}")
    if method == "abf" and base is None:
        raise ConfigError("method 'abf' needs --base (the new RoPE base, e.g. 1.5e8 for ChatQA 2 at 128K)")
    if base is not None and (not math.isfinite(base) or base <= 1):
        raise ConfigError(f"--base must be a finite number > 1, got {base}")
    if base is not None and method not in _TAKES_BASE:
        raise ConfigError(f"--base only applies to abf (and as the starting base of pi/yarn/llama3), not '{method}'")


def plan_extension(
    config: Any,
    method: str,
    max_length: int,
    base: float | None = None,
    factor: float | None = None,
    original_length: int | None = None,
    check_min_base: bool = True,
    beta_fast: float | None = None,
    beta_slow: float | None = None,
    low_freq_factor: float = 1.0,
    high_freq_factor: float = 4.0,
) -> ExtensionPlan:
    """Work out the rope parameters that extend `config` to `max_length` with `method` (config untouched)."""
    method = normalise_method(method)
    rope = rope_settings(config)
    if rope["rope_type"] not in ("default", None):
        raise ConfigError(
            f"model already uses rope_type '{rope['rope_type']}'; extend a model with plain RoPE "
            "(rope_type 'default') so the scaling does not stack"
        )
    orig_len = int(original_length or config.max_position_embeddings)
    if factor is None:
        # Dynamic NTK (bloc97/emozilla) sets base * (L/L0)^(d/(d-2)) at running length L > L0. transformers
        # computes base * (a*L/L0 - (a-1))^(d/(d-2)) with a = `factor`, so the method itself is a = 1; writing
        # the length ratio there would overshoot (1.41e6 instead of 4.18e5 for 8K->32K at base 1e5, d 64).
        factor = 1.0 if method == "dynamic" else max_length / orig_len
    _check_extension(method, max_length, orig_len, factor, base)
    theta, d = float(rope["rope_theta"]), head_dim_of(config)
    rule = _RULES[method](
        _Inputs(
            theta,
            float(base) if base is not None else theta,
            float(factor),
            d,
            orig_len,
            max_length,
            beta_fast,
            beta_slow,
            low_freq_factor,
            high_freq_factor,
        )
    )
    mb: float | None = None
    if check_min_base and method in _CHECKS_MIN_BASE:
        mb = min_base(d, max_length)
        if rule.effective_base < mb:
            rule.warnings.append(
                f"base {rule.effective_base:.4g} is below the minimum base {mb:.3g} for {max_length} "
                f"tokens at head dim {d} (Men et al. 2024); the model may not attend reliably at "
                "full length"
            )
    return ExtensionPlan(
        method, orig_len, max_length, rule.params, rule.max_positions, rule.effective_base, mb, rule.warnings
    )


def apply_extension(config: Any, plan: ExtensionPlan) -> Any:
    """Write the plan into a transformers config in place and return it."""
    # transformers 5: `rope_parameters` is the source of truth (`rope_scaling` is a property alias of it).
    config.rope_parameters = dict(plan.rope_parameters)
    config.max_position_embeddings = plan.max_position_embeddings
    if "rope_theta" in getattr(config, "__dict__", {}):  # older configs that still keep a separate attribute
        config.rope_theta = plan.rope_parameters["rope_theta"]
    if hasattr(config, "validate_rope"):
        config.validate_rope()
    return config


def extend_model(
    src: str,
    out: str | Path,
    method: str,
    max_length: int,
    base: float | None = None,
    factor: float | None = None,
    dtype: str = "float32",
    **kwargs: Any,
) -> ExtensionPlan:
    """Load `src`, extend its RoPE to `max_length`, and save a ready-to-train checkpoint to `out`."""
    from longkit.models.load import load_model

    model, tok = load_model(src, dtype=dtype)
    plan = plan_extension(model.config, method, max_length, base=base, factor=factor, **kwargs)
    apply_extension(model.config, plan)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.config.longkit_extension = {k: v for k, v in plan.as_dict().items() if k != "warnings"}
    model.save_pretrained(out, safe_serialization=True)
    tok.model_max_length = plan.target_length
    tok.save_pretrained(out)
    return plan


def inv_freq_for(config: Any, seq_len: int | None = None) -> tuple[np.ndarray, float]:
    """Inverse frequencies and attention scaling transformers will use for `config` (via its own RoPE code)."""
    import torch
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rope = rope_settings(config)
    if rope["rope_type"] == "default":
        d = head_dim_of(config)
        inv = 1.0 / (float(rope["rope_theta"]) ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        return inv.numpy(), 1.0
    inv, scale = ROPE_INIT_FUNCTIONS[rope["rope_type"]](config, torch.device("cpu"), seq_len=seq_len)
    return inv.double().numpy(), float(scale)


# ----------------------------------------------------------------------------------------------
# Minimum base (Men et al. 2024)
# ----------------------------------------------------------------------------------------------


def long_term_decay(base: float, head_dim: int, length: int) -> np.ndarray:
    """B(m) = sum_i cos(m * base^(-2i/d)) for m in [0, length), float64."""
    import torch

    theta = torch.tensor(base, dtype=torch.float64) ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    m = torch.arange(length, dtype=torch.float64)
    return torch.cos(m[:, None] * theta[None, :]).sum(1).numpy()


def first_negative(base: float, head_dim: int, length: int, block: int = 512) -> int:
    """Smallest distance m < length with B(m) < 0, or `length` when B stays non-negative on [0, length)."""
    import torch

    # cos((s+k)t) = cos(kt)cos(st) - sin(kt)sin(st): two small matmuls replace length*d/2 cosines, and
    # angle addition in float64 keeps the error ~1e-13, far below the margins that decide feasibility.
    half = torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim
    theta = torch.tensor(float(base), dtype=torch.float64) ** (-half)
    k = torch.arange(block, dtype=torch.float64)[:, None] * theta[None, :]
    ck, sk = torch.cos(k), torch.sin(k)
    n_starts = -(-length // block)
    rows_per = 64  # starts per step: lets a base that fails early stop early
    for r0 in range(0, n_starts, rows_per):
        starts = torch.arange(r0, min(n_starts, r0 + rows_per), dtype=torch.float64)[:, None] * block
        ang = starts * theta[None, :]
        vals = torch.cos(ang) @ ck.T - torch.sin(ang) @ sk.T  # (starts, block), row-major = increasing m
        flat = vals.reshape(-1)
        neg = torch.nonzero(flat < 0)
        if neg.numel():
            m = r0 * block + int(neg[0, 0])
            return m if m < length else length
    return length


MAX_MIN_BASE_LENGTH = 1 << 22  # 4M tokens: the exact scan stays within about a minute; past any published model
SEARCH_SPAN = 4.0  # the stable answer is checked on the grid up to this factor above it


@dataclass
class MinBase:
    """Both readings of 'the minimum base' for a length (Men et al. 2024), on a log grid of relative `step`.

    smallest_feasible: the smallest grid base whose B(m) stays >= 0 for all m < length - the paper's
    lower bound (its table), and what `min_base` returns; larger bases may still fail (islands).
    stable: the smallest base such that every grid base above it, up to SEARCH_SPAN times the answer,
    is feasible - the conservative choice when a base must not land in a gap.
    """

    head_dim: int
    length: int
    smallest_feasible: float
    stable: float
    step: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view with the criterion spelled out."""
        return {
            "head_dim": self.head_dim,
            "length": self.length,
            "min_base": self.smallest_feasible,
            "stable_min_base": self.stable,
            "step": self.step,
            "criterion": (
                f"min_base: smallest base on a {self.step:g} log grid keeping B(m) >= 0 for all m < "
                "length (Men et al. 2024; some larger bases fail); stable_min_base: smallest base above "
                f"which every grid base up to {SEARCH_SPAN:g}x keeps it"
            ),
        }


def _check_min_base_args(head_dim: int, length: int, step: float) -> None:
    if head_dim < 2 or head_dim % 2:
        raise ConfigError(f"--head-dim must be an even integer >= 2, got {head_dim}")
    if length < 2:
        raise ConfigError(f"--length must be >= 2, got {length}")
    if length > MAX_MIN_BASE_LENGTH:
        raise ConfigError(f"--length must be <= {MAX_MIN_BASE_LENGTH} (2^22) for the exact scan, got {length}")
    if not 0 < step <= 0.1:
        raise ConfigError(f"--step must be in (0, 0.1], got {step}")


class _one_thread:
    """The per-base work is small; one thread avoids synchronisation costs that dominate on busy CPUs."""

    def __enter__(self) -> None:
        import torch

        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: Any) -> None:
        import torch

        torch.set_num_threads(self.n)


@functools.lru_cache(maxsize=256)
def min_base(head_dim: int, length: int, step: float = 0.002, refine: int = 10) -> float:
    """Smallest RoPE base with B(m) >= 0 for all m < length, on a log grid (Men et al. 2024's lower bound)."""
    _check_min_base_args(head_dim, length, step)
    with _one_thread():
        return _refined(_first_feasible(head_dim, length, step), head_dim, length, step, refine)


@functools.lru_cache(maxsize=64)
def min_base_report(head_dim: int, length: int, step: float = 0.002, refine: int = 10) -> MinBase:
    """Both minimum bases for `length` at `head_dim`: the smallest feasible and the stable one (see MinBase)."""
    _check_min_base_args(head_dim, length, step)
    with _one_thread():
        first = _first_feasible(head_dim, length, step)
        # Scan on from the first feasible grid point; every failure pushes the end SEARCH_SPAN further.
        span = int(math.ceil(math.log(SEARCH_SPAN) / step))
        last_bad, i, i_end = first - 1, first, first + span
        while i <= i_end:
            if not _feasible(math.exp(i * step), head_dim, length):
                last_bad, i_end = i, i + span
            i += 1
        return MinBase(
            head_dim,
            length,
            _refined(first, head_dim, length, step, refine),
            _refined(last_bad + 1, head_dim, length, step, refine),
            step,
        )


def _feasible(base: float, head_dim: int, length: int) -> bool:
    return first_negative(base, head_dim, length) >= length


def _first_feasible(head_dim: int, length: int, step: float) -> int:
    """Index i of the first feasible grid base exp(i * step), scanning up from 2."""
    # A coarse pass (10% steps) finds a feasible base; the fine pass then starts a factor 3 below it (the
    # islands found there lie within that factor) and stops at the first feasible grid point. Bases far
    # below the answer fail at small m and cost one block each. The grid is anchored at exp(i * step), so
    # the answer does not depend on where the coarse pass landed.
    b = 2.0
    while not _feasible(b, head_dim, length):
        b *= 1.1
        if b > 1e15:
            raise ConfigError(f"no RoPE base up to 1e15 keeps B(m) >= 0 for {length} tokens at head dim {head_dim}")
    i = int(math.floor(math.log(max(2.0, b / 3.0)) / step))
    while not _feasible(math.exp(i * step), head_dim, length):
        i += 1
    return i


def _refined(i_ok: int, head_dim: int, length: int, step: float, refine: int) -> float:
    """The smallest feasible base inside the grid step just below grid point i_ok (which is feasible)."""
    lo, hi = math.exp((i_ok - 1) * step), math.exp(i_ok * step)
    for j in range(1, refine + 1):
        cand = lo * (hi / lo) ** (j / refine)
        if _feasible(cand, head_dim, length):
            return float(cand)
    return float(hi)
