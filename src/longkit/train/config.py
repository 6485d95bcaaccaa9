"""Training run configs (YAML -> pydantic). Errors name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from longkit.config import load_yaml, validate
from longkit.errors import ConfigError
from longkit.limits import MAX_TOKENS

NonEmptyStr = Annotated[str, Field(min_length=1)]
SCHEDULERS = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "warmup_stable_decay",
]


class _Strict(BaseModel):
    # validate_assignment: a CLI override (e.g. --max-steps) is checked like the YAML value it replaces
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{name} {value!r}: {msg}") from None


def _writable_dir(v: str) -> str:
    """An output directory path: absent, or a directory, and no existing parent of it is a file."""
    for q in (Path(v), *Path(v).parents):
        if q.exists():
            if not q.is_dir():
                raise ValueError(f"{q} exists and is not a directory; choose a directory")
            break
    return v


OutDir = Annotated[str, Field(min_length=1), AfterValidator(_writable_dir)]


class ExtendSpec(_Strict):
    """RoPE extension applied to the model before training."""

    method: str = "abf"  # one of models.rope.METHODS (or an alias of one)
    max_length: StrictInt = Field(ge=2, le=MAX_TOKENS)
    base: float | None = Field(None, gt=1, le=1e15)
    factor: float | None = Field(None, ge=1, le=4096)

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        from longkit.models.rope import normalise_method

        try:
            return normalise_method(v)
        except ConfigError as exc:  # a pydantic error, so the loader names the file, field and line
            raise ValueError(str(exc)) from None


class ProbeSpec(_Strict):
    """Long-context probes while training (longkit.train.probe): every `every` steps and at each checkpoint the
    model being trained answers the generated tasks at these lengths (greedy), and, with `ppl`, scores a fixed
    text by position; one row per probe goes to <out>/probes.jsonl (`longkit train curves` plots them)."""

    every: StrictInt = Field(200, ge=1)
    tasks: list[NonEmptyStr] = Field(default_factory=lambda: ["passkey", "niah_single_2"], min_length=1)
    lengths: list[StrictInt] = Field(default_factory=lambda: [4096, 8192], min_length=1)
    samples: StrictInt = Field(8, ge=1, le=10_000)  # per task and length (passkey: needle depths)
    ppl: bool = True
    seed: StrictInt = Field(0, ge=0)
    batch_size: StrictInt = Field(1, ge=1, le=1024)  # prompts generated together
    threshold: float | None = Field(None, ge=0, le=1)  # effective length's score threshold (None: the suite's)

    @field_validator("lengths")
    @classmethod
    def _lengths(cls, v: list[int]) -> list[int]:
        bad = [n for n in v if not 16 <= n <= MAX_TOKENS]
        if bad:
            raise ValueError(f"length {bad[0]} is outside 16..{MAX_TOKENS} tokens")
        return sorted(set(v))

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, v: list[str]) -> list[str]:
        from longkit.train.probe_tasks import check_tasks

        try:  # a pydantic error, so the loader names the file and `probe.tasks`
            return check_tasks(v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class TrainSpec(_Strict):
    """Optimisation and runtime settings (map onto transformers TrainingArguments)."""

    learning_rate: float = Field(3e-5, le=1.0)
    min_lr: float | None = Field(None, ge=0)  # cosine decays to this (UtK: 1e-6); None: to 0
    lr_scheduler: SCHEDULERS = "cosine"
    warmup_steps: StrictInt = Field(0, ge=0)
    max_steps: StrictInt = 100  # -1: train num_epochs instead (SFT)
    per_device_batch_size: StrictInt = Field(1, ge=1, le=65536)
    grad_accum: StrictInt = Field(1, ge=1, le=65536)
    weight_decay: float = Field(0.0, ge=0)
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.95, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, ge=0)
    save_steps: StrictInt = Field(500, ge=0)  # 0: no checkpoints, only the final model
    save_total_limit: StrictInt | None = Field(3, ge=1)
    logging_steps: StrictInt = Field(10, ge=1)
    seed: StrictInt = Field(0, ge=0)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    gradient_checkpointing: bool = False
    attn_implementation: Literal["auto", "sdpa", "flash_attention_2", "eager"] = "auto"
    loss_chunk_size: int = Field(4096, ge=1)
    report_to: str = "auto"  # auto: tensorboard/wandb when installed; none; or a list "tensorboard,wandb"
    context_parallel_size: int = Field(1, ge=1)
    dataloader_num_workers: StrictInt = Field(0, ge=0, le=256)
    num_epochs: float | None = Field(None, gt=0, le=10_000)  # SFT only: train for epochs instead of max_steps

    @field_validator("learning_rate")
    @classmethod
    def _positive_lr(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("must be > 0")
        return v

    @field_validator("max_steps")
    @classmethod
    def _steps(cls, v: int) -> int:
        # 0 (or below -1) trained nothing and still wrote final/: refuse it
        if v != -1 and v < 1:
            raise ValueError(f"must be >= 1 (or -1 to train num_epochs), got {v}")
        if v > 10**9:  # past any real run; beyond int64 it would overflow deep inside the Trainer
            raise ValueError(f"must be <= 1000000000, got {v}")
        return v

    @model_validator(mode="after")
    def _epochs_or_steps(self) -> TrainSpec:
        if self.max_steps == -1 and self.num_epochs is None:
            raise ValueError("max_steps -1 needs num_epochs (how many passes to train)")
        return self


class CPTConfig(_Strict):
    """`longkit train cpt` config."""

    model: NonEmptyStr
    out: OutDir
    data: str | dict[str, Any]  # a data config (YAML path, see configs/data/) or the same mapping inline
    corpus: str | None = None  # tokenized corpus dir (default: <data.out>/corpus)
    seq_len: StrictInt | None = Field(None, ge=16, le=MAX_TOKENS)  # override the data config's seq_len
    add_special_tokens: bool = True  # add missing UtK tokens to the tokenizer and resize embeddings
    extend: ExtendSpec | None = None
    train: TrainSpec = TrainSpec()
    resume: bool = True
    probe: ProbeSpec | None = None  # long-context probes while training

    @model_validator(mode="after")
    def _steps_not_epochs(self) -> CPTConfig:
        if self.train.num_epochs is not None or self.train.max_steps == -1:
            raise ValueError(
                "continued pretraining streams an endless packed corpus: set train.max_steps >= 1, not num_epochs"
            )
        return self


class BlendItem(_Strict):
    """One SFT dataset in a stage blend: a JSONL file (`path`) or a Hugging Face dataset's subset by name
    (`dataset` + `subset`, see longkit.sft.hub), with a weight (share of samples) or epochs."""

    path: NonEmptyStr | None = None
    dataset: NonEmptyStr | None = None
    subset: NonEmptyStr | None = None
    name: str | None = None
    weight: float | None = Field(None, gt=0)
    epochs: float | None = Field(None, gt=0, le=10_000)

    @property
    def label(self) -> str:
        """The item in messages: its path, or dataset/subset."""
        return self.path or f"{self.dataset}/{self.subset}"

    @model_validator(mode="after")
    def _one_of(self) -> BlendItem:
        if (self.path is None) == (self.dataset is None):
            raise ValueError("give exactly one of 'path' or 'dataset' (with 'subset')")
        if (self.dataset is None) != (self.subset is None):
            raise ValueError("'dataset' and 'subset' go together: name the subset of the dataset to read")
        if self.dataset is not None and self.subset is not None:
            from longkit.sft.hub_datasets import check_subset

            check_subset(self.dataset, self.subset)  # an unknown subset fails with the config, listing the known
        if (self.weight is None) == (self.epochs is None):
            raise ValueError(f"give exactly one of 'weight' or 'epochs' for {self.label}")
        return self


class StageSpec(_Strict):
    """One SFT stage: a blend of datasets and optional training overrides."""

    name: NonEmptyStr
    blend: list[BlendItem] = Field(min_length=1)
    num_samples: StrictInt | None = Field(None, ge=1)  # with weights: total samples drawn; default: sum of sizes
    seq_len: StrictInt | None = Field(None, ge=16, le=MAX_TOKENS)
    train: dict[str, Any] = {}


class SFTConfig(_Strict):
    """`longkit train sft` config: stages run in order, each starting from the previous stage's output."""

    model: NonEmptyStr
    out: OutDir
    seq_len: StrictInt = Field(4096, ge=16, le=MAX_TOKENS)
    system: str | None = None  # default: ChatQA's system message
    pack: bool = True
    train: TrainSpec = TrainSpec()
    stages: list[StageSpec] = Field(min_length=1)  # `stages: []` trained nothing and reported success
    resume: bool = True
    probe: ProbeSpec | None = None  # long-context probes while training (each stage writes its own probes.jsonl)

    @model_validator(mode="after")
    def _unique_stage_names(self) -> SFTConfig:
        names = [s.name for s in self.stages]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"stage names must be unique, repeated: {dup}")
        for st in self.stages:  # a bad override in stage 3 must fail now, not after stages 1 and 2 have trained
            try:
                TrainSpec.model_validate({**self.train.model_dump(), **st.train})
            except ValidationError as exc:
                raise ValueError("; ".join(_stage_problem(st.name, err) for err in exc.errors())) from None
        return self


def _stage_problem(stage: str, err: ErrorDetails) -> str:
    """One problem of a stage's merged training spec, named as the stage's own `train.<field>`."""
    field = ".".join(str(x) for x in err["loc"]) or "train"
    return f"stage '{stage}' train.{field}: {err['msg'].removeprefix('Value error, ')}"


TrainConfig = TypeVar("TrainConfig", CPTConfig, SFTConfig)


def load_train_config(model: type[TrainConfig], path: str | Path) -> TrainConfig:
    """Load and validate a training YAML; relative paths inside stay relative to the working directory."""
    data = load_yaml(path)
    section = {CPTConfig: "cpt", SFTConfig: "sft"}.get(model)
    if section and section in data and isinstance(data[section], dict):  # a recipe file: use its section
        raw = data
        data = raw[section].copy()  # a YamlMapping's copy keeps the line of each key
        root = Path(raw.get("out", "runs/recipe"))
        data.setdefault("out", str(root / section))
        if section == "sft" and "model" not in data:  # the recipe's CPT output, as `train recipe` chains it
            data["model"] = str(Path(raw.get("cpt", {}).get("out", root / "cpt")) / "final")
        return validate(model, data, source=f"{path}: {section}")
    return validate(model, data, source=str(path))


def stage_train_spec(cfg: SFTConfig, stage: StageSpec) -> TrainSpec:
    """The stage's training spec: the config-wide one with the stage's overrides."""
    merged = {**cfg.train.model_dump(), **stage.train}
    return validate(TrainSpec, merged, source=f"stage '{stage.name}' train")


def require(cond: bool, msg: str) -> None:
    """Raise ConfigError(msg) unless cond."""
    if not cond:
        raise ConfigError(msg)
