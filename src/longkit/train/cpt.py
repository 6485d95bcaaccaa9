"""Continued pretraining (`longkit train cpt CONFIG`): optional RoPE extension, then the Trainer over
the streaming packed dataset from longkit.data (plain, CIP or UtK), with exact resume."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longkit.errors import ConfigError
from longkit.train.config import CPTConfig, ExtendSpec, load_train_config

if TYPE_CHECKING:
    from longkit.data.config import DataConfig
    from longkit.data.dataset import PackedDataset


def cpt_data_config(cfg: CPTConfig, where: str) -> DataConfig:
    """The CPT config's data config (a YAML path or the inline mapping), with its seq_len override applied."""
    from longkit.data.config import data_config_from_dict, load_data_config

    if isinstance(cfg.data, str):
        if not Path(cfg.data).is_file():
            raise ConfigError(f"{where}: field 'data': data config file not found: {cfg.data}")
        dcfg = load_data_config(cfg.data)
    else:
        dcfg = data_config_from_dict(cfg.data, f"{where}: data")
    if cfg.seq_len:
        dcfg.seq_len = cfg.seq_len
    return dcfg


def prepare_model(cfg: CPTConfig, where: str) -> str:
    """The model to train: cfg.model, or its RoPE-extended copy under <out>/extended (made once)."""
    if cfg.extend is None:
        return cfg.model
    from longkit.train.run import world_size

    ext = Path(cfg.out) / "extended"

    if world_size() > 1:
        from accelerate import PartialState

        from longkit.train.run import has_cuda

        state = PartialState(cpu=not has_cuda())  # the process group TrainingArguments will reuse (gloo on CPU)
        with state.main_process_first():  # rank 0 writes the extended copy, the others then read it
            if state.is_main_process and not (ext / "config.json").exists():
                _extend(cfg.model, cfg.extend, ext, where)
        return str(ext)
    if not (ext / "config.json").exists():
        _extend(cfg.model, cfg.extend, ext, where)
    return str(ext)


def _extend(model: str, spec: ExtendSpec, ext: Path, where: str) -> None:
    from longkit.models.rope import extend_model

    plan = extend_model(model, ext, spec.method, spec.max_length, base=spec.base, factor=spec.factor)
    for w in plan.warnings:
        logging.getLogger(__name__).warning("%s: extend: %s", where, w)


def ensure_utk_tokens(model: Any, tok: Any, dcfg: DataConfig, add: bool, where: str, seed: int = 0) -> int:
    """Add missing UtK special tokens (and resize embeddings) or fail with the list of missing ones."""
    if dcfg.transform != "utk":
        return 0
    from longkit.data.utk import add_utk_special_tokens, utk_special_tokens

    missing = [t for t in utk_special_tokens(dcfg.utk) if t not in tok.get_vocab()]
    if not missing:
        return 0
    if not add:
        raise ConfigError(
            f"{where}: the tokenizer lacks the UtK special tokens {missing}; set "
            "'add_special_tokens: true' or train from a checkpoint that has them"
        )
    n = add_utk_special_tokens(tok, dcfg.utk)
    import torch

    # The new rows are drawn at random around the mean embedding: seed the draw, or two runs of the same
    # config (and the ranks of one launch, before DDP broadcasts rank 0's weights) start from other weights.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.resize_token_embeddings(len(tok))
    return n


def corpus_dir(cfg: CPTConfig, dcfg: DataConfig, where: str, tokenizer: Any = None) -> Path:
    """The corpus this run reads; refused when missing or, given the model's tokenizer, made by another one."""
    # with sources in the data config, a corpus built from other sources is refused too
    from longkit.data.reuse import check_corpus

    corpus = Path(cfg.corpus) if cfg.corpus else Path(dcfg.out) / "corpus"
    field = "corpus" if cfg.corpus else "data.out"
    if not (corpus / "offsets.npy").exists():
        raise ConfigError(
            f"{where}: field '{field}': no tokenized corpus at {corpus} (run `longkit data build DATA_CONFIG` first)"
        )
    if tokenizer is not None:  # ids from another tokenizer would train the model on other tokens
        check_corpus(corpus, tokenizer, cfg.model, specs=dcfg.sources or None, where=f"{where}: field '{field}'")
    return corpus


def build_dataset(cfg: CPTConfig, dcfg: DataConfig, tok: Any, where: str) -> PackedDataset:
    """The streaming PackedDataset for this run (cycling epochs, so max_steps decides the length)."""
    from longkit.data.dataset import PackedDataset

    corpus = corpus_dir(cfg, dcfg, where, tokenizer=tok)
    # Sequence sharding: N processes x batch B train on exactly the stream one process with batch B and
    # gradient accumulation N would see (the Trainer sets rank, world size and batch size at load time).
    return PackedDataset.from_config(dcfg, tok, corpus=str(corpus), epochs=None, shard="sequence")


# DataConfig fields that decide what the stream feeds the model (the corpus identity covers sources and tokenizer).
STREAM_FIELDS = (
    "seq_len",
    "separator",
    "transform",
    "utk",
    "cip_split",
    "overflow",
    "intra_doc_attention",
    "upsample",
    "seed",
)


def cpt_record(cfg: CPTConfig, dcfg: DataConfig, corpus: Path) -> dict[str, Any]:
    """What this run is, for out's training record: model, extension, corpus, stream and optimisation settings."""
    from longkit.data.reuse import CorpusOrigin
    from longkit.train.record import model_identity, train_settings
    from longkit.train.run import world_size

    origin = CorpusOrigin.read(corpus)
    tokens = corpus / "tokens.bin"
    stream = {k: getattr(dcfg, k) for k in STREAM_FIELDS if k != "utk" or dcfg.transform == "utk"}
    return {
        "kind": "cpt",
        "model": model_identity(cfg.model),
        "extend": cfg.extend.model_dump() if cfg.extend else None,
        "corpus": {
            "tokenizer_sha256": origin.sha256 if origin else None,
            "specs": origin.specs if origin else None,
            "bytes": tokens.stat().st_size if tokens.exists() else None,
        },
        "data": stream,
        "add_special_tokens": cfg.add_special_tokens,
        "train": train_settings(cfg.train, world_size()),
    }


def run_cpt(
    cfg: CPTConfig,
    where: str = "config",
    resume: bool | None = None,
    extend_steps: bool = False,
    retrain_changed: bool = False,
) -> dict[str, Any]:
    """Run continued pretraining from a validated config; returns the run summary.

    A rerun into the same out resumes, or says it is already complete, or is refused when a setting changed
    (longkit.train.record) — or, with retrain_changed (a recipe rerun), trained again from the start;
    `extend_steps` (`--continue`) trains a finished run further to cfg.train.max_steps."""
    from longkit.models.load import load_tokenizer
    from longkit.train import record as rec

    dcfg = cpt_data_config(cfg, where)
    _check_config(cfg, dcfg, where)
    corpus = corpus_dir(cfg, dcfg, where, tokenizer=load_tokenizer(cfg.model))
    out = Path(cfg.out)
    record = cpt_record(cfg, dcfg, corpus)
    action, change = rec.plan_rerun(out, record, cfg.resume if resume is None else resume)
    if extend_steps:
        return _continue_run(cfg, dcfg, where, action, change)
    if action == rec.COMPLETE:
        return rec.stored_summary(out)
    if action == rec.CHANGED and retrain_changed:
        assert change is not None
        logging.getLogger(__name__).warning("%s: %s changed; training it again", where, change[0])
        action = rec.FRESH
    if action == rec.CHANGED:
        assert change is not None
        grows = change[0] == "train.max_steps" and rec.is_finished(out) and change[2] > change[1]
        raise ConfigError(rec.refusal(f"{where}: ", *change, out, can_continue=grows))
    if action == rec.FRESH:
        rec.start_fresh(out)
    return _train(cfg, dcfg, where, resume=action == rec.RESUME, record=record)


def _check_config(cfg: CPTConfig, dcfg: DataConfig, where: str) -> None:
    """What the config alone can tell, before any tokenizer or model loads."""
    from longkit.train.run import check_launch

    check_launch(cfg.train, dcfg.seq_len, where, streaming=True)
    if cfg.train.context_parallel_size > 1 and dcfg.intra_doc_attention:
        raise ConfigError(
            f"{where}: intra_doc_attention cannot be combined with train.context_parallel_size > 1 "
            "(torch's context parallel attends causally over the whole sequence)"
        )
    corpus_dir(cfg, dcfg, where)  # a corpus never built is named before the tokenizer loads
    if cfg.extend is not None and dcfg.seq_len > cfg.extend.max_length:
        raise ConfigError(
            f"{where}: seq_len {dcfg.seq_len} exceeds extend.max_length {cfg.extend.max_length}; "
            "raise extend.max_length to at least the training length"
        )


def _train(
    cfg: CPTConfig,
    dcfg: DataConfig,
    where: str,
    resume: bool,
    record: dict[str, Any],
    start: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load (and extend) the model, build the stream (from `start`, a saved data position, when given), record the
    run once every check has passed, and train."""
    from longkit.errors import located
    from longkit.train.collate import PackedCollator, StatefulStream
    from longkit.train.probe import probe_plan
    from longkit.train.record import write_record
    from longkit.train.run import check_fsdp_wrappable, fit, is_main_process, load_trainable

    src = prepare_model(cfg, where)
    model, tok = load_trainable(src, cfg.train)
    check_fsdp_wrappable(model, where)
    max_pos = getattr(model.config, "max_position_embeddings", None)
    if max_pos is not None and dcfg.seq_len > max_pos:
        raise ConfigError(
            f"{where}: seq_len {dcfg.seq_len} exceeds the model's max_position_embeddings {max_pos}; "
            "add an 'extend:' section (e.g. method abf with a larger base)"
        )
    added = ensure_utk_tokens(model, tok, dcfg, cfg.add_special_tokens, where, seed=cfg.train.seed)
    with located(where):  # probe lengths against the window, before the first write
        probe = probe_plan(cfg.probe, model, tok, dcfg.seq_len, cfg.extend)
    ds = build_dataset(cfg, dcfg, tok, where)
    if start is not None:
        ds.load_state_dict(start)
    tokens_per_step = dcfg.seq_len * cfg.train.per_device_batch_size * cfg.train.grad_accum
    if is_main_process():
        write_record(Path(cfg.out), record)
    return fit(
        model,
        tok,
        StatefulStream(ds),
        PackedCollator(),
        cfg.train,
        Path(cfg.out),
        resume,
        streaming=True,
        summary_extra={
            "kind": "cpt",
            "model": src,
            "seq_len": dcfg.seq_len,
            "transform": dcfg.transform,
            "added_special_tokens": added,
            "tokens_per_step": tokens_per_step,
        },
        probe=probe,
    )


def _continue_run(
    cfg: CPTConfig, dcfg: DataConfig, where: str, action: str, change: tuple[str, Any, Any] | None
) -> dict[str, Any]:
    """`--continue`: train a finished run from its final model to cfg.train.max_steps with a fresh optimiser and
    schedule (warmup, then decay over the added steps), in out/continue-<steps done>; the stream goes on from
    where the run stopped. The run's final/ becomes the continued model, the old one kept as final-step<N>."""
    from longkit.train import record as rec

    out = Path(cfg.out)
    if not rec.is_finished(out) or action == rec.FRESH:
        raise ConfigError(
            f"--continue: {out} holds no finished run to continue; run without --continue to train (or resume) it first"
        )
    if action == rec.COMPLETE:
        return rec.stored_summary(out)
    assert change is not None
    field, old, new = change
    if field != "train.max_steps":
        raise ConfigError(rec.refusal(f"{where}: ", field, old, new, out))
    if new <= old:
        raise ConfigError(f"--continue: --max-steps {new} must exceed the {old} steps {out} was trained for")
    segment = out / f"continue-{old}"
    seg_cfg = cfg.model_copy(deep=True, update={"model": str(out / "final"), "out": str(segment), "extend": None})
    seg_cfg.train.max_steps = new - old
    summary = _run_segment(seg_cfg, dcfg, where, _last_position(out, old))
    return _adopt_segment(out, segment, old, new, summary)


def _run_segment(cfg: CPTConfig, dcfg: DataConfig, where: str, start: dict[str, Any] | None) -> dict[str, Any]:
    """A continuation segment: a run of its own (recorded, resumable) from the parent's final model."""
    from longkit.train import record as rec

    seg = Path(cfg.out)
    record = cpt_record(cfg, dcfg, corpus_dir(cfg, dcfg, where))
    action, change = rec.plan_rerun(seg, record)
    if action == rec.CHANGED:
        assert change is not None
        raise ConfigError(rec.refusal(f"{where}: ", *change, seg))
    if action == rec.FRESH:
        rec.start_fresh(seg)
    return _train(
        cfg, dcfg, where, resume=action == rec.RESUME, record=record, start=start if action == rec.FRESH else None
    )


def _last_position(out: Path, steps: int) -> dict[str, Any] | None:
    """The stream position saved with the run's checkpoint at its last step (None: the stream starts over)."""
    from longkit.train.trainer import last_checkpoint, load_data_state

    ckpt = last_checkpoint(out)
    if ckpt is None or not ckpt.endswith(f"checkpoint-{steps}"):
        logging.getLogger(__name__).warning(
            "--continue: %s has no checkpoint at step %d, so the data stream starts from its beginning again",
            out,
            steps,
        )
        return None
    return load_data_state(ckpt)


def _adopt_segment(out: Path, segment: Path, old: int, new: int, summary: dict[str, Any]) -> dict[str, Any]:
    """Make the segment's final model the run's: final/ -> final-step<old>/, the record's max_steps -> new."""
    from longkit.io import write_json
    from longkit.train import record as rec
    from longkit.train.run import is_main_process

    if not is_main_process():
        return summary
    (out / "final").rename(out / f"final-step{old}")
    (segment / "final").rename(out / "final")
    record = rec.read_record(out) or {}
    record["train"] = {**record.get("train", {}), "max_steps": new}
    record["continued"] = [*record.get("continued", []), {"from_step": old, "to_step": new, "segment": segment.name}]
    rec.write_record(out, record)
    summary = {**summary, "output": str(out / "final"), "continued_from_step": old, "total_steps": new}
    write_json(out / "summary.json", summary)
    return summary


def cpt_from_file(path: str | Path, **overrides: Any) -> dict[str, Any]:
    """Load a CPT YAML, apply overrides (e.g. max_steps), and run it."""
    cfg = load_train_config(CPTConfig, path)
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg.train, k, v)
    return run_cpt(cfg, where=str(path))
