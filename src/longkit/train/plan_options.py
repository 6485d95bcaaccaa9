"""The inputs of a plan: the command line's hardware assumptions and the training runs a config holds. Shared by
longkit.train.plan (which builds them) and longkit.train.plan_report (which reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PlanOptions:
    """The command line's hardware and throughput assumptions, checked by `check_options`."""

    gpus: int
    gpu_memory: int  # bytes
    mfu: float = 0.4
    sharding: str = "fsdp"
    peak_tflops: float = 989.0  # H100/H200 SXM bf16 dense
    precision: str | None = None  # None: the config's train.precision (auto: bf16 on cuda, fp32 on cpu)
    device: str = "cuda"
    sample_docs: int = 200


@dataclass
class Phase:
    """One training run of the config: a CPT run or an SFT stage, with what memory and time depend on."""

    name: str
    kind: str  # "cpt" | "sft"
    config: Any  # CPTConfig | SFTConfig
    spec: Any  # TrainSpec
    seq_len: int
    model: str
