"""Fixture builders for the data, sft, model, train and demo rows of the bad-input table (see bad_inputs.py).

Each builder writes one config or file (plus whatever it points to) under the test's tmp dir and returns its path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _write(p: Path, data: bytes | str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return p


def _corpus(d: Path) -> Path:
    return _write(d / "corpus.jsonl", "".join(json.dumps({"text": f"Document {i}. " * 20}) + "\n" for i in range(4)))


def _data(d: Path, name: str, body: str, corpus: bool = True) -> Path:
    """A data-build config: sources default to a small valid corpus; body adds or overrides fields."""
    if corpus:
        _corpus(d)
    head = "" if "sources:" in body else f"sources: [{d / 'corpus.jsonl'}]\n"
    out = "" if "out:" in body else f"out: {d / 'build'}\n"
    return _write(d / f"{name}.yaml", head + out + body + "\n")


def _cpt(d: Path, name: str, train: str = "", extra: str = "") -> Path:
    """A CPT config over a valid data config; train/extra add fields."""
    data = _data(d, "data-ok", "seq_len: 64\ntransform: plain")
    text = f"model: smollm2-135m-instruct\nout: {d / 'cpt'}\ndata: {data}\n{extra}\n"
    if train:
        text += f"train: {{{train}}}\n"
    return _write(d / f"{name}.yaml", text)


def _sft(d: Path, name: str, stages: str, train: str = "") -> Path:
    _write(d / "sft.jsonl", json.dumps({"question": "q?", "answer": "a."}) + "\n")
    text = f"model: smollm2-135m-instruct\nout: {d / 'sft'}\nstages: {stages}\n"
    if train:
        text += f"train: {{{train}}}\n"
    return _write(d / f"{name}.yaml", text)


def _blend(item: str) -> str:
    return f"[{{name: s1, blend: [{item}]}}]"


def _build(d: Path, damage: str | None = None) -> Path:
    """A real two-shard build (write_shard + the build manifest) without a tokenizer; optionally damaged."""
    from longkit.data.build import write_manifest
    from longkit.data.stats import write_shard

    root = d / f"build-{damage or 'ok'}"
    n = 32
    sample = {
        "input_ids": np.arange(n, dtype=np.int32),
        "labels": np.arange(n, dtype=np.int32),
        "position_ids": np.arange(n, dtype=np.int32),
        "cu_seqlens": np.array([0, n], dtype=np.int32),
        "segments": np.array([[0, 0, 0, 0, 1, 0, n, 1]], dtype=np.int64),
        "num_pad": 0,
        "structure": {"transform": "plain"},
    }
    shards = []
    for i in range(2):
        p = root / "shards" / f"shard-{i:05d}.npz"
        write_shard(p, [sample, sample])
        shards.append((p, 2))
    write_manifest(root, shards, {"seq_len": n, "transform": "plain"})
    shard = root / "shards" / "shard-00001.npz"
    if damage == "flipped":  # same size, one bit changed near the end of the array data
        data = bytearray(shard.read_bytes())
        data[len(data) // 2] ^= 0x01
        shard.write_bytes(bytes(data))
    elif damage == "short":
        shard.write_bytes(shard.read_bytes()[:-10])
    return shard


def _synth(d: Path, rows: list) -> Path:
    return _write(d / "triples.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


_DOC = " ".join(f"Sentence {i} is here." for i in range(40))
_TRIPLE = {"document": _DOC, "summary": "A summary.", "qa": [{"question": "What?", "answer": "That."}]}

DATA_BUILDERS: dict[str, Callable[[Path], Path]] = {
    # data build configs
    "data_ok": lambda d: _data(d, "data-ok", "seq_len: 64\ntransform: plain"),
    "data_seq_1e12": lambda d: _data(d, "seq-1e12", "seq_len: 1e12"),
    "data_seq_big": lambda d: _data(d, "seq-big", "seq_len: 1000000000000"),
    "data_seq_float": lambda d: _data(d, "seq-float", "seq_len: 2048.5"),
    "data_seq_neg": lambda d: _data(d, "seq-neg", "seq_len: -5"),
    "data_seq_text": lambda d: _data(d, "seq-text", "seq_len: long"),
    "data_no_sources": lambda d: _data(d, "no-sources", "sources: []\nseq_len: 64", corpus=False),
    "data_sources_str": lambda d: _data(d, "sources-str", "sources: corpus.jsonl\nseq_len: 64"),
    "data_source_twice": lambda d: _data(
        d, "src-twice", f"sources: [{d / 'corpus.jsonl'}, {{path: {d / 'corpus.jsonl'}}}]\nseq_len: 64"
    ),
    "data_source_missing": lambda d: _data(d, "src-missing", f"sources: [{d / 'nowhere.jsonl'}]\nseq_len: 64"),
    "data_source_empty": lambda d: (
        _write(d / "empty.jsonl", b""),
        _data(d, "src-empty", f"sources: [{d / 'empty.jsonl'}]\nseq_len: 64"),
    )[1],
    "data_source_nonutf8": lambda d: (
        _write(d / "latin1.jsonl", b'{"text": "caf\xe9"}\n'),
        _data(d, "src-latin1", f"sources: [{d / 'latin1.jsonl'}]\nseq_len: 64"),
    )[1],
    "data_source_nonutf8_txt": lambda d: (
        _write(d / "latin1.txt", b"caf\xe9 au lait\n"),
        _data(d, "src-latin1-txt", f"sources: [{d / 'latin1.txt'}]\nseq_len: 64"),
    )[1],
    "data_source_notext": lambda d: (
        _write(d / "notext" / "a.png", b"\x89PNG"),
        _data(d, "src-notext", f"sources: [{d / 'notext'}]\nseq_len: 64"),
    )[1],
    "data_source_blank": lambda d: (
        _write(d / "blank.jsonl", '{"text": ""}\n'),
        _data(d, "src-blank", f"sources: [{d / 'blank.jsonl'}]\nseq_len: 64"),
    )[1],
    "data_source_nofield": lambda d: (
        _write(d / "body.jsonl", '{"body": "x"}\n'),
        _data(d, "src-nofield", f"sources: [{d / 'body.jsonl'}]\nseq_len: 64"),
    )[1],
    "data_source_type": lambda d: _data(d, "src-type", f"sources: [{{path: {d / 'corpus.jsonl'}, type: xml}}]"),
    "data_source_nopath": lambda d: _data(d, "src-nopath", "sources: [{text_field: text}]"),
    "data_source_badfield": lambda d: _data(
        d, "src-badfield", f"sources: [{{path: {d / 'corpus.jsonl'}, text_field: 5}}]"
    ),
    "data_source_typo": lambda d: _data(d, "src-typo", "sources: [./no/such/docs]"),
    "data_tokenizer_empty": lambda d: _data(d, "tok-empty", "tokenizer: ''"),
    "data_seq_bool": lambda d: _data(d, "seq-bool", "seq_len: true"),
    "data_utk_scalar": lambda d: _data(d, "utk-scalar", "utk: 5"),
    "data_source_parquet": lambda d: (
        _write(d / "rand.parquet", bytes(range(256)) * 4),
        _data(d, "src-parquet", f"sources: [{d / 'rand.parquet'}]"),
    )[1],
    "data_source_dir_as_jsonl": lambda d: (
        (d / "dir.jsonl").mkdir(),
        _data(d, "src-dir", f"sources: [{d / 'dir.jsonl'}]"),
    )[1],
    "data_transform": lambda d: _data(d, "transform", "transform: knots"),
    "data_overflow": lambda d: _data(d, "overflow", "overflow: spill"),
    "data_num_proc": lambda d: _data(d, "num-proc", "num_proc: 0"),
    "data_per_shard": lambda d: _data(d, "per-shard", "sequences_per_shard: 0"),
    "data_max_seq": lambda d: _data(d, "max-seq", "max_sequences: -1"),
    "data_separator": lambda d: _data(d, "separator", "separator: 5"),
    "data_unknown": lambda d: _data(d, "unknown", "sequence_length: 64"),
    "data_tokenizer": lambda d: _data(d, "tokenizer", "tokenizer: ./no/such/tokenizer"),
    "data_threshold": lambda d: _data(d, "threshold", "upsample: {threshold: -1}"),
    "data_keep_short": lambda d: _data(d, "keep-short", "upsample: {keep_short: 5}"),
    "data_buckets": lambda d: _data(d, "buckets", "upsample: {buckets: [0, 4096, 1024]}"),
    "data_upsample_list": lambda d: _data(d, "upsample-list", "upsample: [1, 2]"),
    "data_chunk_dists": lambda d: _data(d, "chunk-dists", "utk: {chunk_dists: 3}"),
    "data_preset": lambda d: _data(d, "preset", "utk: {preset: mine}"),
    "data_utk_prob": lambda d: _data(d, "utk-prob", "utk: {probability: 2}"),
    "data_out_file": lambda d: (_write(d / "taken", "a file"), _data(d, "out-file", f"out: {d / 'taken'}"))[1],
    # shards
    "shard_ok": lambda d: _build(d),
    "shard_flipped": lambda d: _build(d, "flipped"),
    "shard_short": lambda d: _build(d, "short"),
    "single_npy": lambda d: (np.save(d / "array.npy", np.arange(4)), d / "array.npy")[1],
    "text_npz": lambda d: _write(d / "text.npz", "not a zip file at all\n"),
    # models
    "fake_gguf": lambda d: _write(d / "fake.gguf", b"GGUF\x03\x00\x00\x00" + b"\x00" * 7),
    "bad_config_dir": lambda d: (_write(d / "badmodel" / "config.json", "{not json"), d / "badmodel")[1],
    "no_config_dir": lambda d: (_write(d / "nomodel" / "weights.bin", b"x"), d / "nomodel")[1],
    "nonempty_dir": lambda d: (_write(d / "used" / "keep.txt", "keep me"), d / "used")[1],
    # train configs
    "cpt_ok": lambda d: _cpt(d, "cpt-ok"),
    # issue 22: probes, SFT data by name, token budgets
    "cpt_probe_task": lambda d: _cpt(d, "cpt-probe-task", extra="probe: {tasks: [no_such_task]}"),
    "cpt_probe_every0": lambda d: _cpt(d, "cpt-probe-every", extra="probe: {every: 0, tasks: [passkey]}"),
    "sft_hub_subset": lambda d: _sft(
        d, "sft-hub", "[{name: s, blend: [{dataset: nvidia/ChatQA-Training-Data, subset: nope, weight: 1}]}]"
    ),
    "sft_hub_newsqa": lambda d: _sft(
        d, "sft-newsqa", "[{name: s, blend: [{dataset: nvidia/ChatQA-Training-Data, subset: newsqa, weight: 1}]}]"
    ),
    "sft_hub_and_path": lambda d: _sft(
        d,
        "sft-both",
        "[{name: s, blend: [{path: x.jsonl, dataset: nvidia/ChatQA-Training-Data, subset: drop, weight: 1}]}]",
    ),
    "data_budget_small": lambda d: _data(
        d, "data-budget", f"sources: [{{path: {d / 'corpus.jsonl'}, token_budget: 10}}]\nseq_len: 64", corpus=True
    ),
    "cpt_grad_accum": lambda d: _cpt(d, "cpt-accum", "grad_accum: -3"),
    "cpt_max_steps": lambda d: _cpt(d, "cpt-steps", "max_steps: -5"),
    "cpt_zero_steps": lambda d: _cpt(d, "cpt-zero", "max_steps: 0"),
    "cpt_batch0": lambda d: _cpt(d, "cpt-batch", "per_device_batch_size: 0"),
    "cpt_batch_float": lambda d: _cpt(d, "cpt-batch-float", "per_device_batch_size: 1.5"),
    "cpt_out_file": lambda d: (
        _write(d / "taken", "a file"),
        _write(d / "cpt-outfile.yaml", f"model: m\nout: {d / 'taken'}\ndata: x.yaml\n"),
    )[1],
    "sft_out_file": lambda d: (
        _write(d / "taken", "a file"),
        _write(
            d / "sft-outfile.yaml",
            f"model: m\nout: {d / 'taken' / 'sub'}\nstages: {_blend('{path: x.jsonl, weight: 1}')}\n",
        ),
    )[1],
    "recipe_out_file": lambda d: (
        _write(d / "taken", "a file"),
        _write(d / "recipe-outfile.yaml", f"out: {d / 'taken'}\ncpt: {{model: m, data: x.yaml}}\n"),
    )[1],
    "cpt_lr": lambda d: _cpt(d, "cpt-lr", "learning_rate: -1.0e-5"),
    "cpt_sched": lambda d: _cpt(d, "cpt-sched", "lr_scheduler: cosin"),
    "cpt_beta": lambda d: _cpt(d, "cpt-beta", "adam_beta2: 1.5"),
    "cpt_epochs": lambda d: _cpt(d, "cpt-epochs", "num_epochs: 2"),
    "cpt_seq": lambda d: _cpt(d, "cpt-seq", extra="seq_len: 1e12"),
    "cpt_factor": lambda d: _cpt(d, "cpt-factor", extra="extend: {method: pi, max_length: 32768, factor: 1.0e11}"),
    "cpt_method": lambda d: _cpt(d, "cpt-method", extra="extend: {method: stretch, max_length: 32768}"),
    "cpt_no_model": lambda d: _write(d / "cpt-nomodel.yaml", f"out: {d / 'o'}\ndata: x.yaml\n"),
    "cpt_data_missing": lambda d: _write(d / "cpt-nodata.yaml", f"model: m\nout: {d / 'o'}\ndata: {d / 'no.yaml'}\n"),
    "cpt_data_nonutf8": lambda d: (
        _write(d / "latin1-data.yaml", b"seq_len: 64\nname: caf\xe9\n"),
        _write(d / "cpt-latin.yaml", f"model: m\nout: {d / 'o'}\ndata: {d / 'latin1-data.yaml'}\n"),
    )[1],
    "sft_no_stages": lambda d: _sft(d, "sft-nostages", "[]"),
    "sft_no_blend": lambda d: _sft(d, "sft-noblend", "[{name: s1, blend: []}]"),
    "sft_no_weight": lambda d: _sft(d, "sft-noweight", _blend("{path: sft.jsonl}")),
    "sft_both": lambda d: _sft(d, "sft-both", _blend("{path: sft.jsonl, weight: 1, epochs: 2}")),
    "sft_weight": lambda d: _sft(d, "sft-weight", _blend("{path: sft.jsonl, weight: -1}")),
    "sft_epochs": lambda d: _sft(d, "sft-epochs", _blend("{path: sft.jsonl, epochs: 0}")),
    "sft_dup": lambda d: _sft(
        d,
        "sft-dup",
        "[{name: a, blend: [{path: sft.jsonl, weight: 1}]}, {name: a, blend: [{path: sft.jsonl, weight: 1}]}]",
    ),
    "sft_stage_name": lambda d: _sft(d, "sft-noname", "[{name: '', blend: [{path: sft.jsonl, weight: 1}]}]"),
    "sft_accum": lambda d: _sft(d, "sft-accum", _blend("{path: sft.jsonl, weight: 1}"), "grad_accum: -3"),
    "sft_seq": lambda d: _write(
        _sft(d, "sft-seq", _blend("{path: sft.jsonl, weight: 1}")).with_name("sft-seq8.yaml"),
        (d / "sft-seq.yaml").read_text() + "seq_len: 8\n",
    ),
    "sft_num_samples": lambda d: _sft(
        d, "sft-num", "[{name: s1, num_samples: 0, blend: [{path: sft.jsonl, weight: 1}]}]"
    ),
    "sft_stage_accum": lambda d: _sft(
        d,
        "sft-stage-accum",
        "[{name: a, blend: [{path: sft.jsonl, weight: 1}]}, "
        "{name: b, blend: [{path: sft.jsonl, weight: 1}], train: {grad_accum: -3}}]",
    ),
    "sft_stage_unknown": lambda d: _sft(
        d, "sft-stage-unknown", "[{name: a, blend: [{path: sft.jsonl, weight: 1}], train: {learning_rte: 1.0e-5}}]"
    ),
    "sft_ok": lambda d: _sft(d, "sft-ok", _blend("{path: sft.jsonl, weight: 1}")),
    "recipe_no_sections": lambda d: _write(d / "recipe-empty.yaml", "name: nothing\n"),
    "recipe_cpt_int": lambda d: _write(d / "recipe-int.yaml", "cpt: 5\n"),
    "recipe_prepare": lambda d: _write(d / "recipe-prep.yaml", "prepare: my-docs\nsft: {stages: []}\n"),
    "recipe_sft_only": lambda d: (
        _write(d / "sft.jsonl", json.dumps({"question": "q", "answer": "a"}) + "\n"),
        _write(
            d / "recipe-sft.yaml",
            f"out: {d / 'r'}\ncpt: {{model: smollm2-135m-instruct, data: x.yaml}}\n"
            "sft:\n  stages: "
            f"{_blend('{path: ' + str(d / 'sft.jsonl') + ', weight: 1}')}\n",
        ),
    )[1],
    # synth-long inputs
    "triples": lambda d: _synth(d, [_TRIPLE]),
    "triples_no_qa": lambda d: _synth(d, [{**_TRIPLE, "qa": []}]),
    "triples_no_summary": lambda d: _synth(d, [{k: v for k, v in _TRIPLE.items() if k != "summary"}]),
    "triples_long_summary": lambda d: _synth(d, [{**_TRIPLE, "summary": "A very long summary sentence. " * 40}]),
}


# --- training reruns: a finished output whose record another config must not train into ------------------------


def _finished_cpt(d: Path, recorded: dict[str, Any] | None = None, finished: bool = True) -> Path:
    """The CPT config of _cpt with its corpus tokenized by `data build`, and its out as a run of the same config
    with `recorded` train overrides left it: the record cpt_record writes, a checkpoint, and (finished) a final
    model with its summary. Returns the config."""
    from longkit.data.build import build
    from longkit.train.config import CPTConfig, load_train_config
    from longkit.train.cpt import cpt_data_config, cpt_record
    from longkit.train.record import write_record

    config = _cpt(d, "cpt-rerun")
    build(d / "data-ok.yaml", max_sequences=1)
    cfg = load_train_config(CPTConfig, config)
    for field, value in (recorded or {}).items():
        setattr(cfg.train, field, value)
    out = Path(cfg.out)
    write_record(out, cpt_record(cfg, cpt_data_config(cfg, "x"), d / "build" / "corpus"))
    _write(out / "checkpoint-2" / "trainer_state.json", "{}")
    if finished:
        _write(out / "final" / "config.json", "{}")
        _write(out / "summary.json", json.dumps({"output": str(out / "final"), "steps": cfg.train.max_steps}))
    return config


def _finished_sft(d: Path, recorded_lr: float) -> Path:
    """The SFT config of _sft (one stage s1) and its out as a finished run at another learning rate."""
    from longkit.train.config import SFTConfig, load_train_config
    from longkit.train.record import model_identity, write_record
    from longkit.train.sft import stage_record

    config = _sft(d, "sft-rerun", _blend(f"{{path: {d / 'sft.jsonl'}, weight: 1}}"))
    cfg = load_train_config(SFTConfig, config)
    cfg.train.learning_rate = recorded_lr
    out = Path(cfg.out) / "s1"
    write_record(out, stage_record(cfg, cfg.stages[0], model_identity(cfg.model)))
    _write(out / "final" / "config.json", "{}")
    _write(out / "summary.json", json.dumps({"output": str(out / "final")}))
    return config


def _sft_data_changed(d: Path) -> Path:
    config = _finished_sft(d, 3e-5)
    _write(d / "sft.jsonl", json.dumps({"question": "another q?", "answer": "a."}) + "\n")
    return config


TRAIN_RERUN_BUILDERS: dict[str, Callable[[Path], Path]] = {
    "cpt_done_other_lr": lambda d: _finished_cpt(d, {"learning_rate": 1e-4}),
    "cpt_done_100_steps": lambda d: _finished_cpt(d),
    "cpt_unfinished": lambda d: _finished_cpt(d, finished=False),
    "cpt_done_other_warmup": lambda d: _finished_cpt(d, {"warmup_steps": 7}),
    "cpt_out": lambda d: d / "cpt",
    "cpt_legacy_out": lambda d: (_finished_cpt(d), (d / "cpt" / "train_run.json").unlink())[0],
    "sft_done_other_lr": lambda d: _finished_sft(d, 1e-4),
    "sft_data_changed": _sft_data_changed,
    "sft_out": lambda d: d / "sft",
}


def _built_then_changed(d: Path) -> Path:
    """data-ok built into d/build, then its config with another seq_len into the same out."""
    from longkit.data.build import build

    build(_data(d, "data-ok", "seq_len: 64\ntransform: plain"))
    return _data(d, "seq-32", "seq_len: 32\ntransform: plain")


DATA_RERUN_BUILDERS: dict[str, Callable[[Path], Path]] = {
    "data_built_other_seq": _built_then_changed,
    "data_build_out": lambda d: d / "build",
    "data_source_bad_gz": lambda d: (
        _write(d / "cut.jsonl.gz", b"\x1f\x8b\x08\x00 not really gzip"),
        _data(d, "gz", f"sources: [{d / 'cut.jsonl.gz'}]\nseq_len: 64"),
    )[1],
    "data_source_zst": lambda d: (
        _write(d / "c.jsonl.zst", b"(\xb5/\xfd"),
        _data(d, "zst", f"sources: [{d / 'c.jsonl.zst'}]\nseq_len: 64"),
    )[1],
    "data_mix_unknown": lambda d: _data(d, "mix", "seq_len: 64\nupsample: {mix: {corpus: 1, wiki: 1}}"),
}


def _other_tokenizer(d: Path) -> Path:
    """A real tokenizer that is not the build's: byte-level BPE trained here on a little prose, saved to d/tok."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([f"Document {i} is here." for i in range(50)], trainer=trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>").save_pretrained(d / "tok")
    return d / "tok"


def _built_shard(d: Path) -> Path:
    from longkit.data.build import build

    return build(_data(d, "data-ok", "seq_len: 64\ntransform: plain")).shard_paths[0]


DATA_RERUN_BUILDERS.update({"built_shard": _built_shard, "other_tokenizer": _other_tokenizer})
