"""Per-source length upsampling on real token counts, and the build / inspect commands end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from longkit.data.cli import app
from longkit.data.config import data_config_from_dict, resolve_separator
from longkit.data.pack import reassemble
from longkit.data.stats import read_shard
from longkit.data.upsample import UpsampleConfig, mix_report, upsample
from longkit.errors import ConfigError


def test_upsampling_keeps_source_shares_and_raises_long_share(topics_corpus):
    c = topics_corpus
    lengths, src, names = c.lengths, c.doc_source, c.source_names
    cfg = UpsampleConfig(threshold=1024, keep_short=0.1, total_tokens=400_000)
    sel = upsample(lengths, src, names, cfg, seed=0)
    before = mix_report(lengths, src, names, threshold=1024)
    after = mix_report(lengths, src, names, sel, threshold=1024)
    for name in names:
        budget = 400_000 * before["sources"][name]["share"]
        got = after["sources"][name]["tokens"]
        longest = int(lengths[src == names.index(name)].max())
        assert budget <= got < budget + longest  # stops once the budget is full
        assert after["sources"][name]["long_share"] > before["sources"][name]["long_share"]
    short = lengths[sel] < 1024
    kept_short = len(np.unique(sel[short]))
    assert kept_short < (lengths < 1024).sum()  # short documents are subsampled
    assert np.array_equal(sel, upsample(lengths, src, names, cfg, seed=0))  # seeded
    only_long = upsample(lengths, src, names, UpsampleConfig(threshold=1024, keep_short=0.0), seed=1)
    assert np.all(lengths[only_long] >= 1024)
    mixed = upsample(
        lengths,
        src,
        names,
        UpsampleConfig(threshold=1024, mix={"other": 3, "reference": 1}, total_tokens=200_000),
        seed=0,
    )
    rep = mix_report(lengths, src, names, mixed)
    assert abs(rep["sources"]["other"]["share"] - 0.75) < 0.05
    with pytest.raises(ConfigError, match="no document reaches"):
        upsample(lengths, src, names, UpsampleConfig(threshold=10**9, keep_short=0.0), seed=0)
    with pytest.raises(ConfigError, match="unknown source"):
        upsample(lengths, src, names, UpsampleConfig(mix={"web": 1.0}), seed=0)


def test_separator_choices(smol_tokenizer):
    assert resolve_separator(smol_tokenizer, "<s>") == smol_tokenizer("<s>", add_special_tokens=False)["input_ids"]
    assert len(resolve_separator(smol_tokenizer, "<s>")) > 1  # ordinary text, not a special token
    assert resolve_separator(smol_tokenizer, "eos") == [smol_tokenizer.eos_token_id]
    assert resolve_separator(smol_tokenizer, "none") == []


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['seqlen'\]"):
        data_config_from_dict({"seqlen": 5})
    with pytest.raises(ConfigError, match="transform"):
        data_config_from_dict({"transform": "knots"})
    with pytest.raises(ConfigError, match="utk.probability"):
        data_config_from_dict({"utk": {"probability": 2}})
    cfg = data_config_from_dict({"utk": {"preset": "authors"}, "sources": ["a.jsonl"]})
    assert cfg.utk.cl_open == "<D>" and cfg.sources[0].path == "a.jsonl"


@pytest.mark.parametrize("transform", ["utk"])
def test_build_and_inspect_end_to_end(tmp_path, topics_jsonl, transform):
    cfg = {
        "tokenizer": "smollm2-135m-instruct",
        "out": str(tmp_path / "build"),
        "seq_len": 8192,
        "sources": [{"path": str(topics_jsonl)}],
        "transform": transform,
        "sequences_per_shard": 4,
        "upsample": {"threshold": 1024, "keep_short": 0.2},
        "utk": {"probability": 1.0},
    }
    path = tmp_path / "data.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    runner = CliRunner()
    res = runner.invoke(app, ["build", str(path)])
    assert res.exit_code == 0, res.output
    assert "tokenized" in res.output
    report = json.loads((tmp_path / "build" / "stats.json").read_text())
    pk = report["packing"]
    shards = sorted((tmp_path / "build" / "shards").glob("shard-*.npz"))
    samples = [s for sh in shards for s in read_shard(sh)]
    assert len(samples) == pk["sequences"] and len(shards) == -(-len(samples) // 4)
    assert pk["tokens_text"] == pk["tokens_in"] and pk["tokens_dropped"] == 0
    assert pk["tokens_text"] + pk["tokens_structure"] + pk["tokens_pad"] == 8192 * len(samples)
    back = reassemble(samples)
    assert sum(len(t) for _, t in back.values()) == pk["tokens_text"]
    assert set(report["mix"]["after"]["sources"]) == {"reference", "other"}
    if transform == "utk":
        assert report["special_tokens_added"] == 6
        assert sum(report["sequences"]["knot_distance"]["counts"]) == report["sequences"]["knot_distance"]["pairs"] > 0
        assert (tmp_path / "build" / "knot_distances.png").stat().st_size > 1000
    res2 = runner.invoke(app, ["build", str(path)])
    assert "already complete" in res2.output  # the same build again: nothing tokenized or written
    res3 = runner.invoke(app, ["inspect", str(shards[0]), "--index", "1"])
    assert res3.exit_code == 0, res3.output
    assert "«doc" in res3.output
    if transform == "utk":
        assert "[[<CL>" in res3.output and "</S>" in res3.output
    bad = runner.invoke(app, ["inspect", str(tmp_path / "nope.npz")])
    assert bad.exit_code == 2 and "shard not found" in bad.output


def test_build_reports_bad_row(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "fine"}\n{"body": "no text"}\n')
    path = tmp_path / "d.yaml"
    path.write_text(f"sources: [{src}]\nout: {tmp_path / 'o'}\ntransform: plain\nseq_len: 64\n")
    res = CliRunner().invoke(app, ["build", str(path)])
    assert res.exit_code == 2
    assert "c.jsonl:2: missing field 'text'" in res.output
