"""Continued pretraining (`longkit train cpt CONFIG`): optional RoPE extension, then the Trainer over
the streaming packed dataset from longkit.data (plain, CIP or UtK), with exact resume."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from longkit.errors import ConfigError
from longkit.train.config import CPTConfig, ExtendSpec, load_train_config

if TYPE_CHECKING:
    from longkit.data.config import DataConfig
    from longkit.data.dataset import PackedDataset


def _data_config(cfg: CPTConfig, where: str) -> DataConfig:
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
    import logging

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
        raise ConfigError(f"{where}: the tokenizer lacks the UtK special tokens {missing}; set "
                          "'add_special_tokens: true' or train from a checkpoint that has them")
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
        raise ConfigError(f"{where}: field '{field}': no tokenized corpus at {corpus} "
                          "(run `longkit data build DATA_CONFIG` first)")
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


def run_cpt(cfg: CPTConfig, where: str = "config", resume: bool | None = None) -> dict[str, Any]:
    """Run continued pretraining from a validated config; returns the run summary."""
    from longkit.models.load import load_tokenizer
    from longkit.train.collate import PackedCollator, StatefulStream
    from longkit.train.run import check_fsdp_wrappable, check_launch, fit, load_trainable

    dcfg = _data_config(cfg, where)
    check_launch(cfg.train, dcfg.seq_len, where, streaming=True)
    if cfg.train.context_parallel_size > 1 and dcfg.intra_doc_attention:
        raise ConfigError(f"{where}: intra_doc_attention cannot be combined with train.context_parallel_size > 1 "
                          "(torch's context parallel attends causally over the whole sequence)")
    # What the config and the model's tokenizer can tell is checked before the RoPE-extended copy is written.
    corpus_dir(cfg, dcfg, where)  # a corpus never built is named before the tokenizer loads
    if cfg.extend is not None and dcfg.seq_len > cfg.extend.max_length:
        raise ConfigError(f"{where}: seq_len {dcfg.seq_len} exceeds extend.max_length {cfg.extend.max_length}; "
                          "raise extend.max_length to at least the training length")
    corpus_dir(cfg, dcfg, where, tokenizer=load_tokenizer(cfg.model))
    src = prepare_model(cfg, where)
    model, tok = load_trainable(src, cfg.train)
    check_fsdp_wrappable(model, where)
    max_pos = getattr(model.config, "max_position_embeddings", None)
    if max_pos is not None and dcfg.seq_len > max_pos:
        raise ConfigError(f"{where}: seq_len {dcfg.seq_len} exceeds the model's max_position_embeddings {max_pos}; "
                          "add an 'extend:' section (e.g. method abf with a larger base)")
    added = ensure_utk_tokens(model, tok, dcfg, cfg.add_special_tokens, where, seed=cfg.train.seed)
    ds = build_dataset(cfg, dcfg, tok, where)
    tokens_per_step = dcfg.seq_len * cfg.train.per_device_batch_size * cfg.train.grad_accum
    summary = fit(model, tok, StatefulStream(ds), PackedCollator(), cfg.train, Path(cfg.out),
                  cfg.resume if resume is None else resume, streaming=True,
                  summary_extra={"kind": "cpt", "model": src, "seq_len": dcfg.seq_len, "transform": dcfg.transform,
                                 "added_special_tokens": added, "tokens_per_step": tokens_per_step})
    return summary


def cpt_from_file(path: str | Path, **overrides: Any) -> dict[str, Any]:
    """Load a CPT YAML, apply overrides (e.g. max_steps), and run it."""
    cfg = load_train_config(CPTConfig, path)
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg.train, k, v)
    return run_cpt(cfg, where=str(path))
