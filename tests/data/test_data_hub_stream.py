"""Hub corpora read as a stream (longkit.data.hub_stream): SlimPajama's layout from a hub cache laid out as
huggingface_hub lays it out, nested source fields, token budgets, resuming a killed build, and errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
import zstandard

from longkit.data.sources import SourceSpec
from longkit.data.tokenize import tokenize_corpus
from longkit.errors import ConfigError, InputError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))  # tests/eval is not a package
from hub_cache import REV, hub_file  # noqa: E402

REPO = "cerebras/SlimPajama-627B"
SETS = [
    "RedPajamaCommonCrawl",
    "RedPajamaC4",
    "RedPajamaGithub",
    "RedPajamaBook",
    "RedPajamaArXiv",
    "RedPajamaWikipedia",
    "RedPajamaStackExchange",
]
# SlimPajama's own layout (train/chunkN/example_train_K.jsonl.zst), in the order a build reads it
TRAIN = [
    "train/chunk1/example_train_0.jsonl.zst",
    "train/chunk1/example_train_1.jsonl.zst",
    "train/chunk2/example_train_0.jsonl.zst",
]
PER_FILE = 8


def _zst(rows: list[dict]) -> bytes:
    return zstandard.ZstdCompressor().compress("".join(json.dumps(r) + "\n" for r in rows).encode())


def _spec(**fields) -> SourceSpec:
    return SourceSpec(
        **{"path": REPO, "type": "hub", "split": "train", "source_field": "meta.redpajama_set_name", **fields}
    )


@pytest.fixture()
def slim(tmp_path, monkeypatch) -> list[dict]:
    """Three train files and a validation file of SlimPajama rows in an offline hub cache; returns the train rows."""
    from pydoc_data.topics import topics

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "longkit-cache"))
    texts = [topics[k] for k in sorted(topics)][: len(TRAIN) * PER_FILE]
    rows = [{"text": t, "meta": {"redpajama_set_name": SETS[i % len(SETS)]}} for i, t in enumerate(texts)]
    for f, name in enumerate(TRAIN):
        hub_file(cache, REPO, name, _zst(rows[f * PER_FILE : (f + 1) * PER_FILE]))
    holdout = [{"text": "held out", "meta": {"redpajama_set_name": "RedPajamaC4"}}]
    hub_file(cache, REPO, "validation/chunk1/example_holdout_0.jsonl.zst", _zst(holdout))
    hub_file(cache, REPO, "README.md", b"# SlimPajama-627B\n")
    return rows


@pytest.fixture()
def downloads(monkeypatch) -> list[str]:
    """The repository files hf_hub_download is asked for, in order."""
    import huggingface_hub

    real, asked = huggingface_hub.hf_hub_download, []

    def spy(repo_id, filename, **kw):
        asked.append(filename)
        return real(repo_id, filename, **kw)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    return asked


def _lengths(tok, rows) -> list[int]:
    return [len(ids) for ids in tok([r["text"] for r in rows], add_special_tokens=False)["input_ids"]]


def _corpus_bytes(root: Path) -> dict[str, bytes]:
    names = ("tokens.bin", "offsets.npy", "doc_source.npy", "sources.json", "meta.json")
    return {n: (root / n).read_bytes() for n in names}


def test_slimpajama_split_is_read_in_order_with_its_redpajama_sources(slim, smol_tokenizer, tmp_path, downloads):
    corpus = tokenize_corpus([_spec()], smol_tokenizer, tmp_path / "corpus", tokenizer_name="smol")
    assert downloads == TRAIN  # the train split only, chunk by chunk; no validation file, no README
    assert len(corpus) == len(slim) and corpus.source_names == SETS
    assert [corpus.source_names[s] for s in corpus.doc_source] == [r["meta"]["redpajama_set_name"] for r in slim]
    assert corpus.lengths.tolist() == _lengths(smol_tokenizer, slim)
    meta = json.loads((tmp_path / "corpus" / "meta.json").read_text())
    assert meta["hub_sources"] == [{"path": REPO, "revision": REV, "files_read": 3, "tokens": meta["tokens"]}]
    assert not (tmp_path / "corpus" / ".partial").exists()
    # without a streaming reason the same rows read as one local JSONL file give the same corpus
    local = tmp_path / "slim.jsonl"
    local.write_text("".join(json.dumps(r) + "\n" for r in slim))
    plain = tokenize_corpus(
        [SourceSpec(str(local), source_field="meta.redpajama_set_name")], smol_tokenizer, tmp_path / "plain"
    )
    assert plain.source_names == SETS and np.array_equal(plain.tokens, corpus.tokens)


@pytest.mark.parametrize("stop_in_file", [0, 1])
def test_budget_stops_the_build_and_later_files_are_never_downloaded(
    slim, smol_tokenizer, tmp_path, downloads, stop_in_file
):
    lengths = _lengths(smol_tokenizer, slim)
    crossing = stop_in_file * PER_FILE + 5  # the budget is filled by the 6th document of that file
    budget = sum(lengths[:crossing]) + 1
    corpus = tokenize_corpus([_spec(token_budget=budget)], smol_tokenizer, tmp_path / "c", batch_size=3)
    written = int(corpus.lengths.sum())
    assert budget <= written < budget + lengths[crossing] and len(corpus) == crossing + 1
    assert downloads == TRAIN[: stop_in_file + 1]


def test_a_killed_build_resumes_where_it_stopped_and_matches_one_run(slim, smol_tokenizer, tmp_path, monkeypatch):
    from longkit.data import hub_stream, stream_corpus

    lengths = _lengths(smol_tokenizer, slim)
    budget = sum(lengths[:20]) + 1  # ends in the third file
    specs = [_spec(token_budget=budget)]
    whole = tokenize_corpus(specs, smol_tokenizer, tmp_path / "whole", batch_size=3)

    real_commit, commits = stream_corpus.PartialCorpus.commit, []

    def dying_commit(self):
        if len(commits) == 5:  # the 6th commit never happens: its batch is on disk but not recorded
            raise KeyboardInterrupt
        commits.append(self.state.docs)
        real_commit(self)

    monkeypatch.setattr(stream_corpus.PartialCorpus, "commit", dying_commit)
    with pytest.raises(KeyboardInterrupt):
        tokenize_corpus(specs, smol_tokenizer, tmp_path / "resumed", batch_size=3)
    state = json.loads((tmp_path / "resumed" / ".partial" / "state.json").read_text())
    assert 0 < state["docs"] == commits[-1] < 20 and state["sources"][0]["file"] == 1  # stopped inside file 2
    assert (tmp_path / "resumed" / ".partial" / "tokens.bin").stat().st_size > 4 * state["tokens"]

    monkeypatch.setattr(stream_corpus.PartialCorpus, "commit", real_commit)
    parsed: list[str] = []
    real_parse = hub_stream._parse_line
    monkeypatch.setattr(hub_stream, "_parse_line", lambda raw, where: parsed.append(where) or real_parse(raw, where))
    again = tokenize_corpus(specs, smol_tokenizer, tmp_path / "resumed", batch_size=3)
    # rows already in the corpus are not parsed again; the resumed run starts right after them
    assert parsed[0] == f"{REPO}/{TRAIN[1]}:{state['sources'][0]['row'] + 1}"
    assert _corpus_bytes(again.path) == _corpus_bytes(whole.path)
    assert not (tmp_path / "resumed" / ".partial").exists()


def test_a_partial_build_of_other_sources_starts_over(slim, smol_tokenizer, tmp_path, monkeypatch):
    from longkit.data import stream_corpus

    real_commit = stream_corpus.PartialCorpus.commit
    calls: list[int] = []

    def dying_commit(self):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        real_commit(self)

    monkeypatch.setattr(stream_corpus.PartialCorpus, "commit", dying_commit)
    with pytest.raises(KeyboardInterrupt):
        tokenize_corpus([_spec(token_budget=5000)], smol_tokenizer, tmp_path / "c", batch_size=2)
    monkeypatch.setattr(stream_corpus.PartialCorpus, "commit", real_commit)
    other = [_spec(token_budget=3000)]  # a changed spec: the partial corpus is not this build's
    got = tokenize_corpus(other, smol_tokenizer, tmp_path / "c", batch_size=2)
    fresh = tokenize_corpus(other, smol_tokenizer, tmp_path / "fresh", batch_size=2)
    assert _corpus_bytes(got.path) == _corpus_bytes(fresh.path)


def test_bad_rows_fail_in_one_line_naming_repo_file_and_line(slim, smol_tokenizer, tmp_path):
    cache = tmp_path / "hub"
    good = {"text": "fine", "meta": {"redpajama_set_name": "RedPajamaC4"}}
    cases = {
        "acme/not-json": (b'{"text": "fine"}\n{oops\n', r":2: invalid JSON"),
        "acme/no-text": (_zst([good, good, {"meta": {}}]), r":3: missing field 'text'"),
        "acme/number-source": (
            _zst([{"text": "x", "meta": {"redpajama_set_name": 7}}]),
            r":1: field 'meta.redpajama_set_name' must be a string, got int",
        ),
    }
    for repo, (data, why) in cases.items():
        name = "train/part-0.jsonl" if repo == "acme/not-json" else "train/part-0.jsonl.zst"
        hub_file(cache, repo, name, data)
        with pytest.raises(InputError) as e:
            tokenize_corpus([_spec(path=repo)], smol_tokenizer, tmp_path / repo.replace("/", "-"))
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(f"{repo}/{name}{why}"), msg


def test_other_file_formats_and_dotted_fields(slim, smol_tokenizer, tmp_path):
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    from longkit.data.hub_stream import iter_hub_documents
    from longkit.data.sources import iter_documents

    cache = tmp_path / "hub"
    hub_file(cache, "acme/mixed", "data/train-00000.jsonl.gz", gzip.compress(b'{"body": {"t": "a"}, "set": "gz"}\n'))
    table = pa.table({"body": [{"t": "b"}, {"t": "c"}], "set": ["pq", "pq"]})
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    hub_file(cache, "acme/mixed", "data/train-00001.parquet", buf.getvalue().to_pybytes())
    hub_file(cache, "acme/mixed", "data/test-00000.jsonl", b'{"body": {"t": "held out"}, "set": "x"}\n')
    spec = SourceSpec("acme/mixed", type="hub", text_field="body.t", source_field="set")
    assert list(iter_hub_documents(spec)) == [("gz", "a"), ("pq", "b"), ("pq", "c")]
    # the dotted fields of every row reader: local JSONL and Parquet, and Parquet's nested object stored as text
    local = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"text": ["x", "y"], "meta": ['{"set": "web"}', '{"set": "code"}']}), local)
    assert list(iter_documents(SourceSpec(str(local), source_field="meta.set"))) == [("web", "x"), ("code", "y")]


def test_offline_build_missing_a_listed_file_names_dataset_file_and_fetch(slim, smol_tokenizer, tmp_path, monkeypatch):
    from longkit.data import hub_stream

    # online, prefetch lists the repository (recorded for offline builds) and fetches what the budget needs
    monkeypatch.delenv("HF_HUB_OFFLINE")
    listing = ["README.md", *TRAIN, "train/chunk2/example_train_1.jsonl.zst", "validation/chunk1/x.jsonl.zst"]

    class FakeApi:
        def repo_info(self, repo, repo_type, revision):
            assert (repo, repo_type, revision) == (REPO, "dataset", "main")
            return type("Info", (), {"sha": REV})()

        def list_repo_files(self, repo, repo_type, revision):
            return listing

    monkeypatch.setattr(hub_stream, "_api", FakeApi)
    one_file = sum(len(r["text"].encode()) for r in slim[:PER_FILE])
    budget = int(one_file / (hub_stream.BYTES_PER_TOKEN * hub_stream.PREFETCH_MARGIN)) + 1  # just over one file
    paths = hub_stream.prefetch_hub_source(_spec(), budget)
    assert [p.name for p in paths] == ["example_train_0.jsonl.zst", "example_train_1.jsonl.zst"]
    assert all(p.is_file() for p in paths)

    # offline the recorded list says what exists beyond the cache: the missing file is named, with the command
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError) as e:
        tokenize_corpus([_spec(token_budget=10**9)], smol_tokenizer, tmp_path / "c")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{REPO}: train/chunk2/example_train_1.jsonl.zst (revision ")
    assert "HF_HUB_OFFLINE is set" in msg and "`longkit train fetch CONFIG`" in msg


def test_token_budget_is_checked_at_load_time():
    from longkit.data.config import data_config_from_dict

    src = {"path": REPO, "type": "hub", "token_budget": 1000}
    with pytest.raises(ConfigError) as e:
        data_config_from_dict({"sources": [src], "seq_len": 4096}, "cpt.yaml")
    assert str(e.value) == (
        "cpt.yaml: field 'sources[0].token_budget': 1000 tokens is less than one sequence (seq_len 4096)"
    )
    assert data_config_from_dict({"sources": [src], "seq_len": 1000}).sources[0].token_budget == 1000
    for bad in (0, True, "10B", 10**15 + 1, 99999999999999999999999):
        with pytest.raises(ConfigError, match=r"sources\[0\]: field 'token_budget' must be a whole number"):
            data_config_from_dict({"sources": [{**src, "token_budget": bad}]})
    with pytest.raises(ConfigError, match="type hub needs a Hub dataset name"):
        data_config_from_dict({"sources": [{"path": "./data/x", "type": "hub"}]})
    ten_b = yaml.safe_load("token_budget: 10_000_000_000")["token_budget"]
    assert data_config_from_dict({"sources": [{**src, "token_budget": ten_b}]}).sources[0].token_budget == 10**10


def test_data_build_command_on_a_hub_source_upsamples_per_redpajama_source(slim, tmp_path):
    from typer.testing import CliRunner

    from longkit.data.cli import app

    cfg = {
        "tokenizer": "smollm2-135m-instruct",
        "out": str(tmp_path / "build"),
        "sources": [
            {
                "path": REPO,
                "type": "hub",
                "split": "train",
                "revision": REV,
                "source_field": "meta.redpajama_set_name",
                "token_budget": 6000,
            }
        ],
        "seq_len": 512,
        "transform": "plain",
        "upsample": {"enabled": True, "threshold": 1024, "keep_short": 0.5},
    }
    path = tmp_path / "cpt.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["build", str(path)])
    assert res.exit_code == 0, res.output
    stats = json.loads((tmp_path / "build" / "stats.json").read_text())
    before, after = stats["mix"]["before"], stats["mix"]["after"]
    assert 6000 <= before["tokens"] and set(before["sources"]) <= set(SETS) and len(before["sources"]) >= 3
    assert set(after["sources"]) == set(before["sources"])
    res = CliRunner().invoke(app, ["build", str(path)])
    assert res.exit_code == 0 and "already complete" in res.output
