"""Integrity of built data: checksums in the manifests, sizes checked on every open, full checks with --verify."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from longkit.data.sources import SourceSpec, TokenizedCorpus
from longkit.data.tokenize import tokenize_corpus
from longkit.errors import InputError
from longkit.io import sha256_file


def _flip(path, at=None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture()
def small_corpus(tmp_path, trained_tokenizer):
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": f"Document number {i} says hello. " * 10}) + "\n" for i in range(6)))
    return tokenize_corpus([SourceSpec(str(src))], trained_tokenizer, tmp_path / "corpus", tokenizer_name="bpe")


def test_corpus_manifest_records_every_file(small_corpus):
    files = small_corpus.meta["files"]
    assert set(files) == {"tokens.bin", "offsets.npy", "doc_source.npy", "sources.json"}
    for name, rec in files.items():
        assert rec["bytes"] == (small_corpus.path / name).stat().st_size
        assert rec["sha256"] == sha256_file(small_corpus.path / name)
    TokenizedCorpus(small_corpus.path, verify=True)  # an intact corpus passes the full check


def test_flipped_corpus_byte_is_found_by_verify_and_named(small_corpus):
    _flip(small_corpus.path / "tokens.bin")
    TokenizedCorpus(small_corpus.path)  # same size: the cheap open-time check cannot see it
    with pytest.raises(InputError, match=r"tokens\.bin: corpus file is damaged \(SHA-256"):
        TokenizedCorpus(small_corpus.path, verify=True)


def test_training_loader_refuses_a_corpus_file_whose_size_differs(small_corpus):
    from longkit.data.dataset import PackedDataset
    from longkit.data.pack import Transform

    tokens = small_corpus.path / "tokens.bin"
    tokens.write_bytes(tokens.read_bytes() + b"\0\0\0\0")
    with pytest.raises(InputError, match=r"tokens\.bin: corpus file is damaged \(size"):
        PackedDataset(str(small_corpus.path), Transform(), seq_len=64)


def test_corpus_without_manifest_still_checks_tokens_against_offsets(small_corpus):
    meta = json.loads((small_corpus.path / "meta.json").read_text())
    del meta["files"]  # a corpus built before manifests existed
    (small_corpus.path / "meta.json").write_text(json.dumps(meta))
    tokens = small_corpus.path / "tokens.bin"
    tokens.write_bytes(tokens.read_bytes()[:-4])
    with pytest.raises(InputError, match="the offsets say"):
        TokenizedCorpus(small_corpus.path)


def test_damaged_offsets_file_is_one_line_error(small_corpus):
    (small_corpus.path / "offsets.npy").write_bytes(b"")
    meta = json.loads((small_corpus.path / "meta.json").read_text())
    del meta["files"]
    (small_corpus.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"offsets\.npy: not a readable \.npy array"):
        TokenizedCorpus(small_corpus.path)


def test_build_writes_shard_checksums_and_inspect_verifies_them(tmp_path, topics_jsonl):
    from longkit.data.cli import app

    cfg = tmp_path / "data.yaml"
    cfg.write_text(
        f"tokenizer: smollm2-135m-instruct\nout: {tmp_path / 'build'}\nsources: [{topics_jsonl}]\n"
        "seq_len: 2048\ntransform: plain\nsequences_per_shard: 2\nmax_sequences: 5\n"
    )
    runner = CliRunner()
    res = runner.invoke(app, ["build", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "pack: 0/5 sequences" in res.output and "pack: 5/5 sequences" in res.output  # plain progress lines
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    shards = sorted((tmp_path / "build" / "shards").glob("shard-*.npz"))
    assert [f"shards/{p.name}" for p in shards] == list(manifest["shards"])
    assert [r["sequences"] for r in manifest["shards"].values()] == [2, 2, 1]
    for p in shards:
        rec = manifest["shards"][f"shards/{p.name}"]
        assert rec["bytes"] == p.stat().st_size and rec["sha256"] == sha256_file(p)
    ok = runner.invoke(app, ["inspect", str(shards[1]), "--verify"])
    assert ok.exit_code == 0, ok.output
    # fault injection: one flipped byte in the middle shard is detected and the message names that file
    _flip(shards[1])
    bad = runner.invoke(app, ["inspect", str(shards[1]), "--verify"])
    assert bad.exit_code == 2 and "shard-00001.npz: shard is damaged (SHA-256" in bad.output
    # a rebuild reuses the corpus and replaces the damaged shard; a shorter build leaves no stale shards behind
    shutil.copy(shards[0], tmp_path / "keep.npz")
    cfg.write_text(cfg.read_text().replace("max_sequences: 5", "max_sequences: 2"))
    refused = runner.invoke(app, ["build", str(cfg)])
    assert refused.exit_code == 2 and "field 'max_sequences'" in refused.output
    res2 = runner.invoke(app, ["build", str(cfg), "--overwrite"])
    assert res2.exit_code == 0 and "reusing" in res2.output
    assert sorted(p.name for p in (tmp_path / "build" / "shards").glob("*.npz")) == ["shard-00000.npz"]
    assert np.array_equal(np.load(tmp_path / "keep.npz")["input_ids"], np.load(shards[0])["input_ids"])


def _one_sequence_build(tmp_path, topics_jsonl):
    """A built one-sequence corpus under tmp_path/b; returns its config, the data CLI and a runner."""
    from longkit.data.cli import app

    cfg = tmp_path / "data.yaml"
    cfg.write_text(
        f"tokenizer: smollm2-135m-instruct\nout: {tmp_path / 'b'}\nsources: [{topics_jsonl}]\n"
        "seq_len: 1024\ntransform: plain\nmax_sequences: 1\n"
    )
    runner = CliRunner()
    assert runner.invoke(app, ["build", str(cfg)]).exit_code == 0
    return cfg, app, runner


def test_damaged_corpus_is_tokenized_again_on_rebuild(tmp_path, topics_jsonl):
    cfg, app, runner = _one_sequence_build(tmp_path, topics_jsonl)
    tokens = tmp_path / "b" / "corpus" / "tokens.bin"
    tokens.write_bytes(tokens.read_bytes()[:-400])
    res = runner.invoke(app, ["build", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "tokens.bin: corpus file is damaged" in res.output and "tokenized" in res.output
    TokenizedCorpus(tmp_path / "b" / "corpus", verify=True)


def test_build_verify_redoes_a_same_size_damaged_corpus(tmp_path, topics_jsonl):
    cfg, app, runner = _one_sequence_build(tmp_path, topics_jsonl)
    _flip(tmp_path / "b" / "corpus" / "tokens.bin")
    # sizes alone cannot see a flipped bit: without --verify the build is complete
    assert "already complete" in runner.invoke(app, ["build", str(cfg)]).output
    res = runner.invoke(app, ["build", str(cfg), "--verify"])
    assert res.exit_code == 0, res.output
    assert "tokens.bin: corpus file is damaged (SHA-256" in res.output and "tokenized" in res.output
    TokenizedCorpus(tmp_path / "b" / "corpus", verify=True)
