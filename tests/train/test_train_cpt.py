"""Continued pretraining on a tiny real Llama: packing masks, chunked CE, loss falls, exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from longkit.errors import ConfigError, LongkitError
from longkit.testing import build_tiny_llama
from longkit.testing import prose as _prose

SEQ = 128


@pytest.fixture(scope="module")
def corpus_dir(trained_tokenizer, tmp_path_factory):
    """A tokenized corpus of real prose (Python's language reference), built with longkit.data."""
    from longkit.data.sources import SourceSpec
    from longkit.data.tokenize import tokenize_corpus

    root = tmp_path_factory.mktemp("cpt-data")
    paras = [p for p in _prose().split("\n\n") if len(p) > 200][:120]
    with open(root / "docs.jsonl", "w") as fh:
        for i, p in enumerate(paras):
            fh.write(json.dumps({"text": p, "source": "ref" if i % 2 else "web"}) + "\n")
    tokenize_corpus([SourceSpec(path=str(root / "docs.jsonl"))], trained_tokenizer, root / "data" / "corpus")
    return root


@pytest.fixture(scope="module")
def cpt_model(trained_tokenizer, tmp_path_factory):
    # The 2000-token BPE keeps the LM head small, so a few dozen CPU steps take seconds.
    return build_tiny_llama(trained_tokenizer, tmp_path_factory.mktemp("cpt-llama"), max_positions=256)


def _cfg(model, corpus_dir, out, transform="utk", steps=30, save_steps=100, **train):
    from longkit.train.config import CPTConfig

    data = {
        "tokenizer": "smollm2-135m-instruct",
        "out": str(corpus_dir / "data"),
        "seq_len": SEQ,
        "transform": transform,
        "separator": "eos",
        "seed": 0,
    }
    t = {
        "learning_rate": 3e-3,
        "warmup_steps": 2,
        "max_steps": steps,
        "per_device_batch_size": 2,
        "logging_steps": 5,
        "save_steps": save_steps,
        "report_to": "none",
        "loss_chunk_size": 50,
        **train,
    }
    return CPTConfig(model=str(model), out=str(out), data=data, train=t)


# ---------------------------------------------------------------------------------------------
# Loss and masking building blocks
# ---------------------------------------------------------------------------------------------


def _model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa")


def test_chunked_loss_equals_plain_loss_and_gradients(cpt_model):
    from longkit.train.loss import enable_chunked_loss

    torch.manual_seed(0)
    ids = torch.randint(0, 1900, (2, 97))
    labels = ids.clone()
    labels[0, :30] = -100
    labels[1, 50:60] = -100
    plain = _model(cpt_model)
    ref = plain(input_ids=ids, labels=labels).loss
    ref.backward()
    chunked = enable_chunked_loss(_model(cpt_model), chunk_size=16)
    out = chunked(input_ids=ids, labels=labels)
    assert out.logits is None  # full logits are never built
    out.loss.backward()
    assert torch.allclose(out.loss, ref, atol=1e-5), (out.loss.item(), ref.item())
    for (n, a), (_, b) in zip(plain.named_parameters(), chunked.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-4), n


def test_pre_shifted_labels_give_the_same_loss(cpt_model):
    # Under context parallelism the Trainer passes `shift_labels` (each rank holds a slice of the sequence and
    # cannot shift across its edge); the sums of the slices' losses make up the whole sequence's.
    from longkit.train.loss import chunked_lm_loss_sum, enable_chunked_loss

    model = enable_chunked_loss(_model(cpt_model), chunk_size=16)
    torch.manual_seed(4)
    ids = torch.randint(0, 1900, (1, 64))
    labels = ids.clone()
    labels[0, :5] = -100
    shift = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=-100)
    with torch.no_grad():
        plain = model(input_ids=ids, labels=labels).loss
        pre = model(input_ids=ids, labels=labels, shift_labels=shift).loss
        h = model.model(input_ids=ids, use_cache=False).last_hidden_state
    assert torch.allclose(plain, pre, atol=1e-6)
    w = model.get_output_embeddings().weight
    whole, n = chunked_lm_loss_sum(h, w, shift, 16, shifted=True)
    parts = [chunked_lm_loss_sum(h[:, s : s + 32], w, shift[:, s : s + 32], 16, shifted=True) for s in (0, 32)]
    assert torch.allclose(sum(p[0] for p in parts), whole, atol=1e-4) and sum(p[1] for p in parts) == n
    assert torch.allclose(whole / n, plain, atol=1e-6)


def test_masked_tokens_contribute_no_loss(cpt_model):
    from longkit.train.loss import enable_chunked_loss

    model = enable_chunked_loss(_model(cpt_model), chunk_size=32)
    torch.manual_seed(1)
    ids = torch.randint(0, 1900, (1, 64))
    labels = ids.clone()
    labels[0, 20:40] = -100  # e.g. UtK knots / chunk labels, or an SFT prompt
    loss = model(input_ids=ids, labels=labels).loss
    with torch.no_grad():
        logits = model._longkit_orig_forward(input_ids=ids, use_cache=False).logits[0]
    per_pos = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:], reduction="none")
    keep = labels[0, 1:] != -100
    # The loss is the mean over unmasked targets only; masked positions neither add nor dilute.
    assert torch.allclose(loss, per_pos[keep].mean(), atol=1e-5)
    assert not torch.allclose(loss, per_pos.mean(), atol=1e-3)
    # Everything masked: zero loss, zero gradient (not NaN).
    model.zero_grad()
    none = model(input_ids=ids, labels=torch.full_like(ids, -100)).loss
    assert none.item() == 0.0
    none.backward()  # a fully masked batch still backpropagates (zero gradient, no NaN)
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in model.parameters())


def test_packed_position_ids_block_cross_document_attention(cpt_model):
    model = _model(cpt_model).eval()
    torch.manual_seed(2)
    a, b = torch.randint(0, 1900, (1, 40)), torch.randint(0, 1900, (1, 30))
    packed = torch.cat([a, b], 1)
    pos = torch.cat([torch.arange(40), torch.arange(30)])[None]
    with torch.no_grad():
        both = model(input_ids=packed, position_ids=pos, use_cache=False).logits  # training path
        alone_b = model(input_ids=b).logits
        alone_a = model(input_ids=a).logits
        leaky = model(input_ids=packed).logits  # plain causal positions: b sees a
    assert torch.allclose(both[:, 40:], alone_b, atol=1e-4)
    assert torch.allclose(both[:, :40], alone_a, atol=1e-4)
    assert not torch.allclose(leaky[:, 40:], alone_b, atol=1e-3)


def test_training_forward_isolates_packed_samples_whatever_the_cache_setting(cpt_model):
    """Issue 12 item 10: transformers detects packed position ids only without a KV cache, so the training
    forward passes use_cache=False itself: B's loss packed after A equals B's loss alone even when the
    model's config asks for a cache (as from_pretrained leaves it)."""
    from longkit.train.loss import enable_chunked_loss

    model = enable_chunked_loss(_model(cpt_model).eval(), chunk_size=16)
    assert model.config.use_cache  # the trap: a cache is on by default
    torch.manual_seed(3)
    a, b = torch.randint(0, 1900, (1, 40)), torch.randint(0, 1900, (1, 30))
    packed = torch.cat([a, b], 1)
    pos = torch.cat([torch.arange(40), torch.arange(30)])[None]
    labels = packed.clone()
    labels[0, :41] = -100  # loss on B's own next-token targets only (not B's first token predicted from A)
    with torch.no_grad():
        both = model(input_ids=packed, position_ids=pos, labels=labels).loss
        alone = model(input_ids=b, labels=b).loss
        # B's logits after A equal B's logits alone on the no-cache path the training forward takes ...
        logits = model._longkit_orig_forward(input_ids=packed, position_ids=pos, use_cache=False).logits[:, 40:]
        ref = model._longkit_orig_forward(input_ids=b, use_cache=False).logits
        # ... and not with the cache on: the packed position ids are ignored and B attends to A.
        leaky = model._longkit_orig_forward(input_ids=packed, position_ids=pos, use_cache=True).logits[:, 40:]
    assert torch.allclose(logits, ref, atol=1e-4)
    assert not torch.allclose(leaky, ref, atol=1e-3)
    # B alone has the same 29 targets.
    ce = torch.nn.functional.cross_entropy(ref[0, :-1], b[0, 1:], reduction="sum") / 29
    assert torch.allclose(both, ce, atol=1e-5) and torch.allclose(alone, ce, atol=1e-5)


def test_collator_stacks_packed_samples():
    from longkit.train.collate import STATE_KEY, PackedCollator

    s = {
        "input_ids": np.arange(8, dtype=np.int32),
        "labels": np.full(8, -100, np.int32),
        "position_ids": np.array([0, 1, 2, 0, 1, 2, 3, 4], np.int32),
        STATE_KEY: {"seq": 3},
    }
    batch = PackedCollator()([s, s])
    assert batch["input_ids"].dtype == torch.long and batch["input_ids"].shape == (2, 8)
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 2, 3, 4]
    assert batch[STATE_KEY] == {"seq": 3}
    with pytest.raises(ValueError, match="share a length"):
        PackedCollator()([s, {**s, "input_ids": np.arange(4, dtype=np.int32)}])


# ---------------------------------------------------------------------------------------------
# End to end through the Trainer
# ---------------------------------------------------------------------------------------------


def test_cpt_utk_loss_falls(cpt_model, corpus_dir, tmp_path):
    from longkit.train.cpt import run_cpt

    s = run_cpt(_cfg(cpt_model, corpus_dir, tmp_path / "run", steps=24))
    losses = s["step_losses"]
    assert len(losses) == 24 and s["added_special_tokens"] > 0
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    print(f"CPT UtK loss: first {first:.3f} -> last {last:.3f}")
    assert last < first - 0.5
    final = Path(s["output"])
    assert (final / "model.safetensors").exists() and (tmp_path / "run" / "summary.json").exists()
    from transformers import AutoTokenizer

    assert "<HK>" in AutoTokenizer.from_pretrained(final).get_vocab()


def test_cpt_resume_gives_the_same_next_step_loss(cpt_model, corpus_dir, tmp_path):
    import shutil

    from longkit.train.cpt import run_cpt

    full = run_cpt(_cfg(cpt_model, corpus_dir, tmp_path / "full", transform="plain", steps=6, save_steps=3))
    # A run that crashed after step 3 was saved: its record and checkpoint-3 are all its output dir holds.
    shutil.copytree(tmp_path / "full" / "checkpoint-3", tmp_path / "crashed" / "checkpoint-3")
    shutil.copy(tmp_path / "full" / "train_run.json", tmp_path / "crashed" / "train_run.json")
    resumed = run_cpt(_cfg(cpt_model, corpus_dir, tmp_path / "crashed", transform="plain", steps=6, save_steps=3))
    assert resumed["resumed_from"].endswith("checkpoint-3")
    print("resume: uninterrupted steps 4-6", full["step_losses"][3:], "resumed", resumed["step_losses"])
    # Steps 4, 5, 6 after resuming from step 3 match the uninterrupted run.
    assert resumed["step_losses"] == pytest.approx(full["step_losses"][3:], abs=1e-5)


def test_cpt_bad_configs(cpt_model, corpus_dir, tmp_path):
    from longkit.train.config import CPTConfig, load_train_config
    from longkit.train.cpt import run_cpt

    cfg = _cfg(cpt_model, corpus_dir, tmp_path / "a")
    cfg.corpus = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="field 'corpus': no tokenized corpus"):
        run_cpt(cfg)
    cfg = _cfg(cpt_model, corpus_dir, tmp_path / "b")
    cfg.add_special_tokens = False
    with pytest.raises(ConfigError, match="lacks the UtK special tokens"):
        run_cpt(cfg)
    cfg = _cfg(cpt_model, corpus_dir, tmp_path / "c")
    cfg.seq_len = 1024
    with pytest.raises(ConfigError, match="exceeds the model's max_position_embeddings 256"):
        run_cpt(cfg)
    assert not (tmp_path / "c").exists()  # refused before the first write: no out, no record
    # Checked from the config alone, before the RoPE-extended copy is written under out/.
    from longkit.train.config import ExtendSpec

    cfg = _cfg(cpt_model, corpus_dir, tmp_path / "f")
    cfg.extend = ExtendSpec(method="abf", base=1e6, max_length=512)
    cfg.corpus = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="field 'corpus': no tokenized corpus"):
        run_cpt(cfg)
    cfg = _cfg(cpt_model, corpus_dir, tmp_path / "f")
    cfg.extend = ExtendSpec(method="abf", base=1e6, max_length=512)
    cfg.seq_len = 1024
    with pytest.raises(ConfigError, match="seq_len 1024 exceeds extend.max_length 512"):
        run_cpt(cfg)
    assert not (tmp_path / "f").exists()
    cfg = _cfg(cpt_model, corpus_dir, tmp_path / "d", context_parallel_size=2)
    with pytest.raises(ConfigError, match="train.context_parallel_size': context parallelism is GPU-only"):
        run_cpt(cfg)
    cfg = _cfg(cpt_model, corpus_dir, tmp_path / "e")
    cfg.data = str(tmp_path / "no-such-data.yaml")
    with pytest.raises(ConfigError, match="field 'data': data config file not found"):
        run_cpt(cfg)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: x\nout: y\ndata: z\ntrain:\n  learning_rate: -1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: field 'train.learning_rate'"):
        load_train_config(CPTConfig, bad)
    bad.write_text("model: x\nout: y\ndata: z\nextend:\n  method: abf\n  max_length: 1024\n  bogus: 1\n")
    with pytest.raises(ConfigError, match=r"field 'extend.bogus'"):
        load_train_config(CPTConfig, bad)


def test_cpt_refuses_a_corpus_another_tokenizer_made(cpt_model, tmp_path):
    """data build (SmolLM2's tokenizer) -> train cpt (a model with the BPE tokenizer): one line naming both."""
    import yaml
    from typer.testing import CliRunner

    from longkit.cli import app
    from longkit.data.build import build
    from longkit.train.config import CPTConfig
    from longkit.train.cpt import run_cpt

    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": p}) + "\n" for p in _prose().split("\n\n")[:40] if p.strip()))
    data = tmp_path / "data.yaml"
    data.write_text(
        yaml.safe_dump(
            {
                "tokenizer": "smollm2-135m-instruct",
                "out": str(tmp_path / "data"),
                "sources": [str(docs)],
                "seq_len": SEQ,
                "transform": "plain",
                "separator": "eos",
            }
        )
    )
    build(data)
    run = {
        "model": str(cpt_model),
        "out": str(tmp_path / "run"),
        "data": str(data),
        "extend": {"method": "abf", "base": 1e5, "max_length": 512},
        "train": {"max_steps": 2, "report_to": "none"},
    }
    with pytest.raises(ConfigError) as e:
        run_cpt(CPTConfig(**run), where="cpt.yaml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("cpt.yaml: field 'data.out': the corpus at ")
    assert "'smollm2-135m-instruct' (vocabulary 49152" in msg and f"not with '{cpt_model}' (vocabulary 2000" in msg
    assert not (tmp_path / "run").exists()  # refused before the RoPE-extended copy is written
    (tmp_path / "cpt.yaml").write_text(yaml.safe_dump(run))
    res = CliRunner().invoke(app, ["train", "cpt", str(tmp_path / "cpt.yaml")])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and lines[-1].startswith("error: ") and "'smollm2-135m-instruct'" in lines[-1]
    assert f"not with '{cpt_model}'" in lines[-1] and "Traceback" not in res.output


def test_cpt_non_finite_loss_stops_with_last_checkpoint(cpt_model, corpus_dir, tmp_path):
    # Weights that hold an inf (what a diverged run leaves behind): the first step's loss is not finite.
    from transformers import AutoModelForCausalLM

    from longkit.train.cpt import run_cpt

    bad = AutoModelForCausalLM.from_pretrained(cpt_model)
    with torch.no_grad():
        bad.model.norm.weight[0] = float("inf")
    bad.save_pretrained(tmp_path / "bad-model")
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(cpt_model).save_pretrained(tmp_path / "bad-model")
    cfg = _cfg(tmp_path / "bad-model", corpus_dir, tmp_path / "nan", transform="plain", steps=6, save_steps=2)
    with pytest.raises(LongkitError, match=r"non-finite loss \(\w+\) at step 1; last good checkpoint: none"):
        run_cpt(cfg)


def test_stream_is_not_resharded_by_accelerate(cpt_model, corpus_dir, tmp_path, trained_tokenizer):
    # The packed stream shards itself (sequence sharding); accelerate must hand it over unchanged.
    from transformers import AutoModelForCausalLM

    from longkit.data.config import data_config_from_dict
    from longkit.data.dataset import PackedDataset
    from longkit.train.collate import PackedCollator, StatefulStream
    from longkit.train.config import TrainSpec
    from longkit.train.run import training_arguments
    from longkit.train.trainer import LongkitTrainer

    dcfg = data_config_from_dict(
        {"out": str(corpus_dir / "data"), "seq_len": SEQ, "transform": "plain", "separator": "eos"}
    )
    ds = StatefulStream(PackedDataset.from_config(dcfg, trained_tokenizer, epochs=None))
    args = training_arguments(TrainSpec(report_to="none", max_steps=1), tmp_path, streaming=True)
    tr = LongkitTrainer(
        model=AutoModelForCausalLM.from_pretrained(cpt_model),
        args=args,
        train_dataset=ds,
        data_collator=PackedCollator(),
    )
    dl = tr.get_train_dataloader()
    assert type(dl) is torch.utils.data.DataLoader and dl.dataset is ds
    batch = next(iter(dl))
    assert batch["input_ids"].shape == (1, SEQ) and "_longkit_data_state" in batch


def _files(out):
    """Every file under a run's output with its bytes (what a refused or complete rerun must leave as it was)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_cpt_reruns_complete_refuse_or_continue(cpt_model, corpus_dir, tmp_path):
    """A finished run: rerun -> already complete, nothing written; another setting -> refused by field before any
    write; --continue -> trained further from its final model to the new max_steps with a fresh schedule."""
    from longkit.train.cpt import run_cpt

    out = tmp_path / "run"
    first = run_cpt(_cfg(cpt_model, corpus_dir, out, transform="plain", steps=4, save_steps=2))
    assert first["steps"] == 4
    before = _files(out)
    again = run_cpt(_cfg(cpt_model, corpus_dir, out, transform="plain", steps=4, save_steps=2))
    assert again["already_complete"] and again["steps"] == 4
    # speed and logging settings are not the run's identity: changing them is no new run
    assert run_cpt(_cfg(cpt_model, corpus_dir, out, transform="plain", steps=4, save_steps=3, logging_steps=1))[
        "already_complete"
    ]
    assert _files(out) == before

    refused = {
        r"field 'train.learning_rate': .* was trained with 0.003, not 0.001; use a new out": _cfg(
            cpt_model, corpus_dir, out, transform="plain", steps=4, save_steps=2, learning_rate=1e-3
        ),
        r"field 'train.max_steps': .* with 4, not 6; pass --continue": _cfg(
            cpt_model, corpus_dir, out, transform="plain", steps=6, save_steps=2
        ),
        r"field 'data.transform': .* with \"plain\", not \"utk\"": _cfg(
            cpt_model, corpus_dir, out, transform="utk", steps=4, save_steps=2
        ),
        r"field 'train.global_batch_size': .* with 2, not 4": _cfg(
            cpt_model, corpus_dir, out, transform="plain", steps=4, save_steps=2, grad_accum=2
        ),
    }
    other_model = _cfg(cpt_model, corpus_dir, out, transform="plain", steps=4, save_steps=2)
    other_model.model = str(tmp_path / "copy")
    import shutil

    shutil.copytree(cpt_model, tmp_path / "copy")
    (tmp_path / "copy" / "config.json").write_text(
        (tmp_path / "copy" / "config.json").read_text().replace('"rms_norm_eps": 1e-05', '"rms_norm_eps": 1e-06')
    )
    refused[r"field 'model': .* was trained from .*, not from .*copy"] = other_model
    for pattern, cfg in refused.items():
        with pytest.raises(ConfigError, match=pattern):
            run_cpt(cfg)
    assert _files(out) == before
    with pytest.raises(ConfigError, match="--continue: --max-steps 3 must exceed the 4 steps"):
        run_cpt(_cfg(cpt_model, corpus_dir, out, transform="plain", steps=3, save_steps=2), extend_steps=True)
    assert _files(out) == before

    more = run_cpt(
        _cfg(cpt_model, corpus_dir, out, transform="plain", steps=6, save_steps=2, logging_steps=1), extend_steps=True
    )
    assert more["continued_from_step"] == 4 and more["total_steps"] == 6 and more["steps"] == 2
    assert (out / "final-step4" / "model.safetensors").read_bytes() == before["final/model.safetensors"]
    assert (out / "final" / "model.safetensors").read_bytes() != before["final/model.safetensors"]
    lrs = [h["learning_rate"] for h in more["log_history"] if "learning_rate" in h]
    # a fresh schedule over the 2 added steps: warmup (2 steps) from 0 up to the peak, not the old run's decay
    assert lrs == pytest.approx([0.0, 1.5e-3])
    record = json.loads((out / "train_run.json").read_text())
    assert record["train"]["max_steps"] == 6 and record["continued"][0]["from_step"] == 4
    # the continued run is now complete at 6 steps, with or without --continue
    assert run_cpt(_cfg(cpt_model, corpus_dir, out, transform="plain", steps=6, save_steps=2))["already_complete"]
    assert run_cpt(_cfg(cpt_model, corpus_dir, out, transform="plain", steps=6, save_steps=2), extend_steps=True)[
        "already_complete"
    ]


def test_cpt_refuses_an_output_without_a_record(cpt_model, corpus_dir, tmp_path):
    from longkit.train.cpt import run_cpt

    (tmp_path / "old" / "checkpoint-2").mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds checkpoints or a final model but no train_run.json"):
        run_cpt(_cfg(cpt_model, corpus_dir, tmp_path / "old", transform="plain", steps=2))
    with pytest.raises(ConfigError, match="--continue: .* holds no finished run"):
        run_cpt(_cfg(cpt_model, corpus_dir, tmp_path / "new", transform="plain", steps=2), extend_steps=True)
    assert not (tmp_path / "new").exists()


def test_trainer_progress_is_plain_lines_off_a_terminal(tmp_path, monkeypatch):
    """In a log file (stderr not a terminal) the Trainer prints logging lines, not a tqdm bar; on a terminal the bar
    stays."""
    import io

    from longkit.train.config import TrainSpec
    from longkit.train.run import training_arguments

    spec = TrainSpec(report_to="none")
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert training_arguments(spec, tmp_path, streaming=False).disable_tqdm is True

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    assert training_arguments(spec, tmp_path, streaming=False).disable_tqdm is False


def test_a_finished_model_is_freed_before_the_next_one_loads(tiny_llama_dir):
    """The chunked loss's bound forward is a reference cycle: load_trainable collects it, so a finished stage's
    weights do not stay resident while the next stage's model loads."""
    import gc
    import weakref

    from longkit.train.config import TrainSpec
    from longkit.train.loss import enable_chunked_loss
    from longkit.train.run import load_trainable

    gc.disable()  # as if the collector had not run yet between two stages
    try:
        model, _ = load_trainable(str(tiny_llama_dir), TrainSpec())
        enable_chunked_loss(model, 64)
        ref = weakref.ref(model)
        del model
        assert ref() is not None  # the cycle keeps it alive without a collection
        load_trainable(str(tiny_llama_dir), TrainSpec())
        assert ref() is None
    finally:
        gc.enable()
