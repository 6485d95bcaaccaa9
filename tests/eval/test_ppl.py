"""Perplexity by length and position (`eval ppl`, the suite's ppl tasks): the loss equals transformers' own, the
sliding protocol scores every token once, documents by name and from files, resume, refusals, the suite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hub_cache import hub_file  # tests/eval is on sys.path under pytest's rootdir rules
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from longkit.errors import ConfigError, InputError
from longkit.eval.ppl import Document, PplSettings, load_documents, make_plan, plan_windows, run_ppl


@pytest.fixture
def prose(tmp_path) -> Path:
    """Three local documents of real prose (Python's own language reference), one too short for long windows."""
    from pydoc_data.topics import topics

    texts = sorted(topics.values(), key=len, reverse=True)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(texts[0])
    (folder / "b.md").write_text(texts[1])
    (folder / "short.txt").write_text("A sentence far shorter than any window we measure.")
    return folder


# ---------------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------------


@given(n=st.integers(1, 3000), length=st.integers(16, 600), data=st.data())
def test_sliding_windows_score_every_token_exactly_once(n, length, data):
    stride = data.draw(st.integers(1, length - 1))
    spans = plan_windows(n, length, "sliding", stride)
    if n < length:
        assert spans == []
        return
    scored = [t for _, f, e in spans for t in range(f, e)]
    assert scored == list(range(1, n))  # every token but the first, once, in order
    for i, (start, first, end) in enumerate(spans):
        assert end - start <= length
        if i > 0:  # after the first window, each scored token sees at least length - stride tokens before it
            assert first - start >= length - stride


@given(n=st.integers(1, 3000), length=st.integers(16, 600))
def test_non_overlapping_windows(n, length):
    spans = plan_windows(n, length, "windows", 0)
    assert len(spans) == n // length
    for i, (start, first, end) in enumerate(spans):
        assert (start, first, end) == (i * length, i * length + 1, (i + 1) * length)


def test_window_loss_equals_transformers_loss(tiny_backend, prose, tmp_path):
    """One window's loss through longkit's scoring equals model(ids, labels=ids).loss on the same tokens."""
    import torch

    settings = PplSettings(data=str(prose / "a.txt"), lengths=[200], windows_per_document=2, bootstrap=10)
    summary = run_ppl(settings, tiny_backend, tmp_path / "out", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").open()]
    ids = tiny_backend.tokenizer.encode((prose / "a.txt").read_text())
    for row in rows:
        start = row["meta"]["start"]
        window = torch.tensor([ids[start : start + 200]])
        with torch.inference_mode():
            expected = float(tiny_backend.model(window, labels=window).loss)
        assert row["scores"]["tokens"] == 199
        assert row["scores"]["loss"] == pytest.approx(expected, rel=1e-5)
    loss = math.fsum(r["scores"]["nll"] for r in rows) / sum(r["scores"]["tokens"] for r in rows)
    assert summary["by_length"]["200"]["loss"] == pytest.approx(loss, abs=1e-4)


@pytest.mark.slow
def test_window_loss_equals_transformers_loss_on_the_bundled_model(tmp_path, prose):
    import torch

    from longkit.backends.hf import HFBackend

    backend = HFBackend.from_name("smollm2-135m-instruct")
    settings = PplSettings(data=str(prose / "a.txt"), lengths=[256], windows_per_document=1, bootstrap=10)
    run_ppl(settings, backend, tmp_path / "out", progress=False)
    [row] = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").open()]
    window = torch.tensor([backend.tokenizer.encode((prose / "a.txt").read_text())[:256]])
    with torch.inference_mode():
        expected = float(backend.model(window, labels=window).loss)
    assert row["scores"]["loss"] == pytest.approx(expected, rel=1e-5)


def test_sliding_protocol_through_the_backend_scores_each_token_once(tiny_backend, prose, tmp_path):
    settings = PplSettings(data=str(prose / "b.md"), lengths=[128], protocol="sliding", stride=48, bootstrap=10)
    run_ppl(settings, tiny_backend, tmp_path / "out", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").open()]
    n = len(tiny_backend.tokenizer.encode((prose / "b.md").read_text()))
    assert sum(r["scores"]["tokens"] for r in rows) == n - 1
    positions = sum(c for r in rows for _, c in r["positions"].values())
    assert positions == n - 1


# ---------------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------------


def test_local_files_directories_and_their_errors(tmp_path, prose):
    docs = load_documents(str(prose))
    assert [d.id for d in docs] == ["a.txt", "b.md", "short.txt"]
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "one"}) + "\n" + json.dumps({"id": "x", "text": "two"}) + "\n")
    assert [(d.id, d.text) for d in load_documents(str(rows))] == [("rows.jsonl:1", "one"), ("x", "two")]
    rows.write_text(json.dumps({"text": "one"}) + "\n" + json.dumps({"body": "two"}) + "\n")
    with pytest.raises(InputError, match=r"rows.jsonl:2.*'text'"):
        load_documents(str(rows))
    with pytest.raises(InputError, match="no such file or directory, and not a corpus name"):
        load_documents(str(tmp_path / "missing"))
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(InputError, match="expected a .txt, .md, .jsonl"):
        load_documents(str(tmp_path / "x.csv"))


def test_the_essays_are_documents():
    docs = load_documents("essays")
    assert [d.id for d in docs] == ["essays"] and len(docs[0].text) > 100_000  # one long text, as RULER joins them


def test_documents_shorter_than_a_window_are_counted(tiny_backend, prose):
    plan = make_plan(load_documents(str(prose)), tiny_backend.tokenizer, PplSettings(data=str(prose), lengths=[64]))
    assert plan.too_short == {64: 1} and plan.documents == 3
    with pytest.raises(InputError, match="no document is as long as the shortest length"):
        make_plan([Document("s", "tiny text")], tiny_backend.tokenizer, PplSettings(lengths=[64]))


def test_pg19_and_proof_pile_by_name_from_the_hub_cache(tmp_path, monkeypatch):
    """PG19's test Parquet (emozilla/pg19-test's columns) and Proof-pile's test JSONL, read from a hub cache."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from longkit.eval.tasks.registry import registry

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(InputError, match="emozilla/pg19-test.*longkit eval fetch pg19"):
        load_documents("pg19")
    books = pa.table(
        {
            "short_book_title": ["Book One", "Book Two"],
            "publication_date": [1900, 1901],
            "url": ["u1", "u2"],
            "text": ["first book text", "second book text"],
        }
    )
    buf = io.BytesIO()
    pq.write_table(books, buf)
    pg19 = registry()["pg19"].data
    hub_file(tmp_path / "hub", pg19.repo, pg19.file, buf.getvalue(), pg19.revision)
    assert [(d.id, d.text) for d in load_documents("pg19")] == [
        ("Book One", "first book text"),
        ("Book Two", "second book text"),
    ]
    proof = registry()["proof_pile"].data
    hub_file(
        tmp_path / "hub",
        proof.repo,
        proof.file,
        b'{"text": "\\\\begin{theorem} x \\\\end{theorem}"}\n{"text": "lemma foo : 1 = 1 := rfl"}\n',
        proof.revision,
    )
    docs = load_documents("proof-pile")
    assert len(docs) == 2 and docs[1].text == "lemma foo : 1 = 1 := rfl"


# ---------------------------------------------------------------------------------------------------
# Runs: resume, refusals, suite
# ---------------------------------------------------------------------------------------------------


class CountingScorer:
    """The tiny backend, counting the windows it is asked to score."""

    def __init__(self, backend):
        self.backend = backend
        self.scored = 0

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def score(self, requests):
        self.scored += len(requests)
        return self.backend.score(requests)


def test_a_killed_run_resumes_without_rescoring(tiny_backend, prose, tmp_path):
    settings = PplSettings(data=str(prose), lengths=[64, 128], windows_per_document=3, bootstrap=50)
    first = run_ppl(settings, tiny_backend, tmp_path / "out", progress=False, batch_size=2)
    results = tmp_path / "out" / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:5]) + lines[5][:20])  # killed mid-write after five windows
    counting = CountingScorer(tiny_backend)
    again = run_ppl(settings, counting, tmp_path / "out", progress=False)
    assert counting.scored == len(lines) - 5
    assert again["by_length"] == first["by_length"]
    counting.scored = 0
    run_ppl(settings, counting, tmp_path / "out", progress=False)
    assert counting.scored == 0
    with pytest.raises(ConfigError, match=r"--protocol: this output was made with \"windows\", not \"sliding\""):
        run_ppl(settings.model_copy(update={"protocol": "sliding"}), tiny_backend, tmp_path / "out", progress=False)
    (prose / "a.txt").write_text((prose / "a.txt").read_text() + " more")
    with pytest.raises(ConfigError, match="data_digest"):
        run_ppl(settings, tiny_backend, tmp_path / "out", progress=False)


def test_settings_refusals():
    with pytest.raises(ValueError, match="length 8 is below 16"):
        PplSettings(lengths=[8, 64])
    with pytest.raises(ValueError, match="stride 64 must be below every length"):
        PplSettings(lengths=[64, 128], protocol="sliding", stride=64)
    with pytest.raises(ValueError, match="only the sliding protocol"):
        PplSettings(stride=32)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        PplSettings(bootstrap=0)


def test_lengths_beyond_the_window_need_extrapolation(tiny_backend, prose, tmp_path):
    window = tiny_backend.max_context
    settings = PplSettings(data=str(prose / "a.txt"), lengths=[window * 2], windows_per_document=1, bootstrap=10)
    with pytest.raises(ConfigError, match=f"{window * 2} exceeds the model's {window}-token window"):
        run_ppl(settings, tiny_backend, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_runs_reports_and_refuses_in_one_line(tiny_llama_dir, prose, tmp_path):
    from longkit.cli import app

    out = tmp_path / "run"
    args = [
        "eval",
        "ppl",
        "-m",
        str(tiny_llama_dir),
        "--data",
        str(prose),
        "--lengths",
        "64,128",
        "--windows-per-document",
        "2",
        "--bootstrap",
        "100",
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "L=64: loss" in res.output and "1 too short" in res.output
    report = (out / "report.md").read_text()
    assert "| 64 | 2 | 4 |" in report and "by position" in report
    assert (out / "ppl_vs_length.png").stat().st_size > 1000 and (out / "loss_vs_position.png").exists()
    summary = json.loads((out / "summary.json").read_text())
    e = summary["by_length"]["128"]
    assert e["ppl_ci"][0] <= e["ppl"] <= e["ppl_ci"][1] and e["ppl"] == pytest.approx(math.exp(e["loss"]), rel=1e-3)
    for bad, message in [
        (["--lengths", "8"], "--lengths: length 8 is below 16 tokens"),
        (["--protocol", "sliding", "--stride", "64"], "stride 64 must be below every length"),
        (["--bootstrap", "0"], "--bootstrap: Input should be greater than or equal to 1"),
        (["--lengths", "99999"], "99999 exceeds the model's"),
        (["--data", str(tmp_path / "nope")], "no such file or directory"),
    ]:
        res = CliRunner().invoke(app, [*args[:-2], "--out", str(tmp_path / "fresh"), *bad])
        assert res.exit_code == 2, (bad, res.output)
        # one error line (loading the model may print its own progress lines first), no traceback
        errors = [line for line in res.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in res.output, res.output
        assert not (tmp_path / "fresh").exists()


def test_ppl_in_a_suite_beside_passkey(tiny_backend, prose, tmp_path, monkeypatch):
    from longkit.eval.suite import SuiteConfig, run_suite

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = SuiteConfig.model_validate(
        {
            "name": "ppl",
            "models": [{"name": "tiny", "model": "unused"}],
            "lengths": [64, 128, 100000],
            "samples": 2,
            "tasks": [
                {"name": "ppl", "options": {"data": str(prose), "windows_per_document": 2}},
                {"name": "passkey", "options": {"depths": [50]}},
            ],
            "out": str(tmp_path / "suite"),
            "chat": False,
        }
    )
    rep = run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    ppl = rep["models"]["tiny"]["tasks"]["ppl"]
    assert set(ppl["by_length"]) == {64, 128} and ppl["effective_length"] is None
    assert ppl["by_length"][64] > 0  # a loss in nats
    suite_json = json.loads((tmp_path / "suite" / "suite.json").read_text())["models"]["tiny"]["tasks"]["ppl"]
    rows = [json.loads(line) for line in (tmp_path / "suite" / "tiny" / "ppl" / "results.jsonl").open()]
    expected = math.exp(math.fsum(r["scores"]["nll"] for r in rows) / sum(r["scores"]["tokens"] for r in rows))
    assert suite_json["official"]["scale"] == "perplexity"
    assert suite_json["official"]["score"] == pytest.approx(expected, rel=1e-3)
    assert {(s["task"], s.get("length")) for s in rep["skipped"]} >= {("ppl", 100000)}
    assert "passkey" in rep["models"]["tiny"]["tasks"]
    bad = {**cfg.model_dump(), "tasks": [{"name": "ppl", "options": {"protocl": "sliding"}}]}
    with pytest.raises(ConfigError, match="task ppl: options: unknown option 'protocl'"):
        run_suite(SuiteConfig.model_validate(bad), backends={"tiny": tiny_backend}, progress=False)


def test_a_backend_that_cannot_score_is_refused_before_any_work(tmp_path, monkeypatch):
    from longkit.backends import registry
    from longkit.cli import app
    from longkit.eval.suite import SuiteConfig, run_suite

    registry.backend_names()  # the real declarations first
    gen_only = registry.BackendInfo("genonly", "generates only", frozenset({registry.GENERATE}), lambda spec: None)
    monkeypatch.setitem(registry._registry, "genonly", gen_only)
    cfg = SuiteConfig.model_validate(
        {"models": [{"backend": "genonly", "model": "m"}], "tasks": ["ppl"], "out": str(tmp_path / "suite")}
    )
    with pytest.raises(ConfigError, match="models\\[0\\]: task ppl needs a backend that can score; 'genonly' cannot"):
        run_suite(cfg, progress=False)
    assert not (tmp_path / "suite").exists()
    res = CliRunner().invoke(app, ["eval", "ppl", "--backend", "genonly", "--out", str(tmp_path / "cli")])
    assert res.exit_code == 2 and "eval ppl needs a backend that can score; 'genonly' cannot" in res.output
    assert not (tmp_path / "cli").exists()


def test_a_file_with_no_documents_is_refused(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match="empty.jsonl: no documents"):
        load_documents(str(tmp_path / "empty.jsonl"))
