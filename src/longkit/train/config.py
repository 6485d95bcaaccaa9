"""Training run configs (YAML -> pydantic). Errors name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from longkit.config import load_yaml, validate
from longkit.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExtendSpec(_Strict):
    """RoPE extension applied to the model before training."""

    method: str = "abf"
    max_length: int
    base: float | None = None
    factor: float | None = None


class TrainSpec(_Strict):
    """Optimisation and runtime settings (map onto transformers TrainingArguments)."""

    learning_rate: float = 3e-5
    min_lr: float | None = None  # cosine decays to this (UtK: 1e-6); None: to 0
    lr_scheduler: str = "cosine"
    warmup_steps: int = 0
    max_steps: int = 100
    per_device_batch_size: int = 1
    grad_accum: int = 1
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    max_grad_norm: float = 1.0
    save_steps: int = Field(500, ge=0)  # 0: no checkpoints, only the final model
    save_total_limit: int | None = 3
    logging_steps: int = 10
    seed: int = 0
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    gradient_checkpointing: bool = False
    attn_implementation: Literal["auto", "sdpa", "flash_attention_2", "eager"] = "auto"
    loss_chunk_size: int = Field(4096, ge=1)
    report_to: str = "auto"  # auto: tensorboard/wandb when installed; none; or a list "tensorboard,wandb"
    context_parallel_size: int = Field(1, ge=1)
    dataloader_num_workers: int = 0
    num_epochs: float | None = None  # SFT only: train for epochs instead of max_steps

    @field_validator("learning_rate")
    @classmethod
    def _positive_lr(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("must be > 0")
        return v


class CPTConfig(_Strict):
    """`longkit train cpt` config."""

    model: str
    out: str
    data: str | dict[str, Any]  # a data config (YAML path, see configs/data/) or the same mapping inline
    corpus: str | None = None  # tokenized corpus dir (default: <data.out>/corpus)
    seq_len: int | None = None  # override the data config's seq_len
    add_special_tokens: bool = True  # add missing UtK tokens to the tokenizer and resize embeddings
    extend: ExtendSpec | None = None
    train: TrainSpec = TrainSpec()
    resume: bool = True


class BlendItem(_Strict):
    """One SFT dataset in a stage blend: a JSONL file with a weight (share of samples) or epochs."""

    path: str
    name: str | None = None
    weight: float | None = None
    epochs: float | None = None


class StageSpec(_Strict):
    """One SFT stage: a blend of datasets and optional training overrides."""

    name: str
    blend: list[BlendItem]
    num_samples: int | None = None  # with weights: total samples drawn; default: sum of dataset sizes
    seq_len: int | None = None
    train: dict[str, Any] = {}


class SFTConfig(_Strict):
    """`longkit train sft` config: stages run in order, each starting from the previous stage's output."""

    model: str
    out: str
    seq_len: int = 4096
    system: str | None = None  # default: ChatQA's system message
    pack: bool = True
    train: TrainSpec = TrainSpec()
    stages: list[StageSpec]
    resume: bool = True


def load_train_config(model: type[Any], path: str | Path) -> Any:
    """Load and validate a training YAML; relative paths inside stay relative to the working directory."""
    data = load_yaml(path)
    section = {"CPTConfig": "cpt", "SFTConfig": "sft"}.get(model.__name__)
    if section and section in data and isinstance(data[section], dict):  # a recipe file: use its section
        raw = data
        data = dict(raw[section])
        root = Path(raw.get("out", "runs/recipe"))
        data.setdefault("out", str(root / section))
        if section == "sft" and "model" not in data:  # the recipe's CPT output, as `train recipe` chains it
            data["model"] = str(Path(raw.get("cpt", {}).get("out", root / "cpt")) / "final")
        return validate(model, data, source=f"{path}: {section}")
    cfg = validate(model, data, source=str(path))
    return cfg


def stage_train_spec(cfg: SFTConfig, stage: StageSpec, where: str) -> TrainSpec:
    """The stage's training spec: the config-wide one with the stage's overrides."""
    merged = {**cfg.train.model_dump(), **stage.train}
    return validate(TrainSpec, merged, source=f"{where}: stage '{stage.name}' train")


def require(cond: bool, msg: str) -> None:
    """Raise ConfigError(msg) unless cond."""
    if not cond:
        raise ConfigError(msg)
