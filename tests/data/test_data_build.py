"""`longkit.data.build.build` as a library call, and the corpus reuse check (`longkit.data.reuse`)."""

from __future__ import annotations

import json

import pytest
import yaml

from longkit.errors import ConfigError


def _config(tmp_path, topics_jsonl, name="data.yaml", **fields):
    cfg = {
        "tokenizer": "smollm2-135m-instruct",
        "out": str(tmp_path / "build"),
        "sources": [str(topics_jsonl)],
        "seq_len": 2048,
        "transform": "utk",
        "sequences_per_shard": 2,
        "max_sequences": 5,
        **fields,
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_build_as_a_library_call_matches_the_command(tmp_path, topics_jsonl):
    from typer.testing import CliRunner

    from longkit.data.build import BuildReport, build
    from longkit.data.cli import app
    from longkit.data.config import load_data_config

    path = _config(tmp_path, topics_jsonl)
    said: list[str] = []
    rep = build(path, log=said.append)
    assert isinstance(rep, BuildReport) and not rep.corpus_reused
    assert rep.root == tmp_path / "build" and rep.sequences == 5 and len(rep.shard_paths) == 3
    assert json.loads(json.dumps(rep.stats)) == json.loads((rep.root / "stats.json").read_text())
    assert all(p.exists() for p in rep.files().values())
    assert said[0].startswith("corpus: tokenized") and said[1].startswith("tokenizer: 6 UtK special tokens")
    assert said[-2].startswith("packed 5 sequences of 2048") and said[-1].startswith("report: ")

    # the command writes the same shards and report from the same config (only timings differ)
    res = CliRunner().invoke(app, ["build", str(path), "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    for shard in rep.shard_paths:
        assert (tmp_path / "cli" / "shards" / shard.name).read_bytes() == shard.read_bytes()
    cli_stats = json.loads((tmp_path / "cli" / "stats.json").read_text())
    lib_stats = json.loads((rep.root / "stats.json").read_text())
    for stats in (cli_stats, lib_stats):
        stats.pop("pack_seconds")
        stats["config"].pop("out")
    assert cli_stats == lib_stats

    # a DataConfig object with overrides; the corpus is reused, the caller's config is left as it was
    cfg = load_data_config(path)
    said.clear()
    with pytest.raises(
        ConfigError,
        match=r"field 'max_sequences': .*build was built with 5, not 2; use a new out, "
        r"pass --overwrite to build it again in place, or delete",
    ):
        build(cfg, max_sequences=2)
    again = build(cfg, max_sequences=2, overwrite=True, log=said.append)
    assert again.corpus_reused and again.sequences == 2 and len(again.shard_paths) == 1
    assert cfg.max_sequences == 5 and said[0].startswith("corpus: reusing")
    with pytest.raises(ConfigError, match=r"max_sequences 0: must be >= 1"):
        build(cfg, max_sequences=0)


def test_build_tokenizes_again_when_the_corpus_came_from_another_tokenizer(tmp_path, topics_jsonl, trained_tokenizer):
    from longkit.data.build import build
    from longkit.testing import build_tiny_llama

    build(_config(tmp_path, topics_jsonl, transform="plain"))
    bpe_model = build_tiny_llama(trained_tokenizer, tmp_path / "bpe-model")
    warned: list[str] = []
    rep = build(
        _config(tmp_path, topics_jsonl, "bpe.yaml", transform="plain", tokenizer=str(bpe_model)),
        overwrite=True,
        warn=warned.append,
    )
    assert not rep.corpus_reused and len(warned) == 1
    assert "'smollm2-135m-instruct' (vocabulary 49152" in warned[0] and f"not with '{bpe_model}'" in warned[0]
    assert warned[0].endswith("tokenizing again")
    meta = json.loads((tmp_path / "build" / "corpus" / "meta.json").read_text())
    assert meta["tokenizer"] == str(bpe_model) and meta["vocab_size"] == len(trained_tokenizer)


@pytest.fixture()
def bpe_corpus(tmp_path, trained_tokenizer):
    from longkit.data.sources import SourceSpec
    from longkit.data.tokenize import tokenize_corpus

    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": f"Document number {i} says hello. " * 10}) + "\n" for i in range(6)))
    spec = SourceSpec(str(src))
    return tokenize_corpus([spec], trained_tokenizer, tmp_path / "corpus", tokenizer_name="bpe").path, spec


def test_check_corpus_refuses_another_tokenizer_in_one_line(bpe_corpus, trained_tokenizer, smol_tokenizer, bpe_copy):
    from longkit.data.fingerprint import tokenizer_fingerprint
    from longkit.data.reuse import check_corpus

    corpus, spec = bpe_corpus
    meta = json.loads((corpus / "meta.json").read_text())
    assert meta["tokenizer_sha256"] == tokenizer_fingerprint(trained_tokenizer) and meta["vocab_size"] == 2000
    assert check_corpus(corpus, trained_tokenizer, "any name", specs=[spec]).tokenizer == "bpe"
    bpe_copy.add_tokens(["<HK>", "<TK>"], special_tokens=True)  # tokens appended later (UtK) change no corpus id
    check_corpus(corpus, bpe_copy, "bpe+utk")
    with pytest.raises(ConfigError) as e:
        check_corpus(corpus, smol_tokenizer, "smollm2-135m-instruct", where="run.yaml: field 'corpus'")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("run.yaml: field 'corpus': the corpus at ")
    assert "'bpe' (vocabulary 2000, sha256 " in msg and "not with 'smollm2-135m-instruct' (vocabulary 49152" in msg
    other = type(spec)(str(corpus.parent / "other.jsonl"))
    with pytest.raises(ConfigError, match="it was built from .*docs.jsonl, not from .*other.jsonl"):
        check_corpus(corpus, trained_tokenizer, "bpe", specs=[other])


def test_corpus_without_fingerprint_is_compared_by_name_and_vocabulary(bpe_corpus, trained_tokenizer, smol_tokenizer):
    from longkit.data.reuse import check_corpus, corpus_is_current

    corpus, spec = bpe_corpus
    meta = json.loads((corpus / "meta.json").read_text())
    del meta["tokenizer_sha256"]  # a corpus built before fingerprints
    (corpus / "meta.json").write_text(json.dumps(meta))
    check_corpus(corpus, trained_tokenizer, "bpe")
    with pytest.raises(ConfigError, match=r"records no tokenizer fingerprint"):
        check_corpus(corpus, trained_tokenizer, "another-name")
    big = {**meta, "vocab_size": 60000}  # the same name, but ids up to 60000 that a 2000-token vocabulary lacks
    (corpus / "meta.json").write_text(json.dumps(big))
    with pytest.raises(
        ConfigError,
        match=r"with 'bpe' \(vocabulary 60000, no fingerprint recorded\), not with "
        r"'bpe' \(vocabulary 2000\)",
    ):
        check_corpus(corpus, trained_tokenizer, "bpe")
    (corpus / "meta.json").write_text(json.dumps(meta))
    assert corpus_is_current(corpus, trained_tokenizer, "bpe", [spec])
    warned: list[str] = []
    assert not corpus_is_current(corpus, smol_tokenizer, "smollm2", [spec], warn=warned.append)
    assert "tokenizing again" in warned[0]
    (corpus / "meta.json").write_text("{not json")
    with pytest.raises(ConfigError, match="no readable meta.json"):
        check_corpus(corpus, trained_tokenizer, "bpe")


def test_fingerprint_ignores_appended_tokens_only(trained_tokenizer, bpe_copy):
    from longkit.data.fingerprint import tokenizer_fingerprint

    n = len(trained_tokenizer)
    bpe_copy.add_tokens(["<CL>"], special_tokens=True)
    assert tokenizer_fingerprint(bpe_copy) != tokenizer_fingerprint(trained_tokenizer)
    assert tokenizer_fingerprint(bpe_copy, n) == tokenizer_fingerprint(trained_tokenizer)
    assert len(bpe_copy) == n + 1


def test_build_reruns_complete_refuse_or_retokenize_edited_sources(tmp_path):
    """The same build again writes nothing; another config is refused before any write; an edited source file is
    tokenized again (its old tokens would be stale)."""
    from longkit.data.build import build

    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": f"Document {i} says hello. " * 30}) + "\n" for i in range(6)))
    cfg = tmp_path / "d.yaml"
    cfg.write_text(f"out: {tmp_path / 'b'}\nsources: [{src}]\nseq_len: 128\ntransform: plain\n")
    first = build(cfg)
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "b").rglob("*") if p.is_file()}
    said: list[str] = []
    again = build(cfg, log=said.append)
    assert again.already_complete and said[0].startswith("already complete") and again.sequences == first.sequences
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "b").rglob("*") if p.is_file()} == files

    cfg.write_text(cfg.read_text().replace("seq_len: 128", "seq_len: 64"))
    with pytest.raises(ConfigError, match=r"field 'seq_len': .* was built with 128, not 64"):
        build(cfg)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "b").rglob("*") if p.is_file()} == files

    cfg.write_text(cfg.read_text().replace("seq_len: 64", "seq_len: 128"))
    src.write_text(src.read_text() + json.dumps({"text": "A seventh document. " * 30}) + "\n")
    warned: list[str] = []
    edited = build(cfg, warn=warned.append)
    assert not edited.corpus_reused and not edited.already_complete
    assert "a source file changed" in warned[0]
    from longkit.data.sources import TokenizedCorpus

    assert len(TokenizedCorpus(tmp_path / "b" / "corpus")) == 7


def test_gzipped_sources_are_read_and_named_like_the_plain_file(tmp_path):
    """Hub corpora ship as .jsonl.gz: read directly, the same documents and source name as the plain file."""
    import gzip

    from longkit.data.sources import SourceSpec, iter_documents

    rows = "".join(json.dumps({"text": f"Document {i}."}) + "\n" for i in range(3))
    (tmp_path / "wiki.jsonl").write_text(rows)
    (tmp_path / "wiki.jsonl.gz").write_bytes(gzip.compress(rows.encode()))
    (tmp_path / "notes.txt.gz").write_bytes(gzip.compress(b"plain text notes"))
    plain = list(iter_documents(SourceSpec(str(tmp_path / "wiki.jsonl"))))
    assert list(iter_documents(SourceSpec(str(tmp_path / "wiki.jsonl.gz")))) == plain
    assert plain[0][0] == "wiki"
    assert list(iter_documents(SourceSpec(str(tmp_path / "notes.txt.gz")))) == [("notes", "plain text notes")]


def test_upsample_mix_naming_an_unknown_source_fails_before_tokenizing(tmp_path):
    from longkit.data.build import build

    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": "Text. " * 20, "source": s}) + "\n" for s in ("web", "book")))
    cfg = tmp_path / "d.yaml"
    cfg.write_text(
        f"out: {tmp_path / 'b'}\nsources: [{{path: {src}, source_field: source}}]\nseq_len: 64\n"
        "transform: plain\nupsample: {mix: {web: 0.5, wiki: 0.5}}\n"
    )
    with pytest.raises(
        ConfigError,
        match=r"field 'upsample.mix': names unknown source\(s\) \['wiki'\]; the "
        r"sources are \['book', 'web'\]",
    ):
        build(cfg)
    assert not (tmp_path / "b").exists()
