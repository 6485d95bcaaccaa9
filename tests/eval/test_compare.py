"""`longkit eval compare`: paired differences of two models on the same samples, and the refusals."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from longkit.errors import InputError
from longkit.eval.compare import compare_runs


@pytest.fixture(scope="module")
def two_models(smol_tokenizer, tmp_path_factory):
    """A suite of two tiny random Llamas (other seeds) on the same perplexity and needle samples."""
    from pydoc_data.topics import topics

    from longkit.backends.hf import HFBackend
    from longkit.eval.suite import SuiteConfig, run_suite
    from longkit.testing import build_tiny_llama

    root = tmp_path_factory.mktemp("compare")
    docs = root / "docs"
    docs.mkdir()
    for i, text in enumerate(sorted(topics.values(), key=len, reverse=True)[:6]):
        (docs / f"{i}.txt").write_text(text)
    backends = {
        f"seed{s}": HFBackend.from_name(str(build_tiny_llama(smol_tokenizer, root / f"m{s}", seed=s))) for s in (0, 1)
    }
    cfg = SuiteConfig.model_validate(
        {
            "name": "cmp",
            "models": [{"name": n, "model": "unused"} for n in backends],
            "lengths": [256, 512],
            "samples": 6,
            "tasks": [{"name": "ppl", "options": {"data": str(docs), "windows_per_document": 1}}, "niah_single_1"],
            "out": str(root / "suite"),
            "chat": False,
        }
    )
    run_suite(cfg, backends=backends, progress=False)
    return root / "suite"


def test_paired_difference_per_task_and_length(two_models):
    result = compare_runs(two_models / "seed0", two_models / "seed1", resamples=500)
    assert set(result["tasks"]) == {"ppl", "niah_single_1"}
    ppl = result["tasks"]["ppl"]
    assert set(ppl) == {"overall", "256", "512"}
    a = [json.loads(line) for line in (two_models / "seed0" / "ppl" / "results.jsonl").open()]
    b = {r["key"]: r for r in map(json.loads, (two_models / "seed1" / "ppl" / "results.jsonl").open())}
    diffs = [b[r["key"]]["scores"]["score"] - r["scores"]["score"] for r in a]
    row = ppl["overall"]
    assert row["n"] == 12 and row["difference"] == pytest.approx(sum(diffs) / len(diffs), abs=1e-4)
    assert row["ci"][0] <= row["difference"] <= row["ci"][1] and 0 < row["p_value"] <= 1
    # the same run against itself: no difference, p = 1
    same = compare_runs(two_models / "seed0", two_models / "seed0")
    assert same["tasks"]["ppl"]["overall"]["difference"] == 0 and same["tasks"]["ppl"]["overall"]["p_value"] == 1


def test_refusals_name_the_task_and_sample(two_models, tmp_path):
    other = tmp_path / "b"
    shutil.copytree(two_models / "seed1", other)
    shutil.rmtree(other / "niah_single_1")
    with pytest.raises(InputError, match="runs of different tasks: 'niah_single_1' is only in"):
        compare_runs(two_models / "seed0", other)
    shutil.copytree(two_models / "seed1" / "niah_single_1", other / "niah_single_1")
    results = other / "ppl" / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:-1]))
    with pytest.raises(InputError, match=r"task 'ppl': sample 'ppl/.*' is only in .* \(1 samples differ\)"):
        compare_runs(two_models / "seed0", other)
    results.write_text("".join(lines))
    record = json.loads((other / "ppl" / "run.json").read_text())
    record["task"]["bucket"] = 64
    (other / "ppl" / "run.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match="task 'ppl': the runs were made with other task settings: bucket is 256"):
        compare_runs(two_models / "seed0", other)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no results.jsonl under it"):
        compare_runs(two_models / "seed0", tmp_path / "empty")


def test_cli_prints_the_table_and_refuses_in_one_line(two_models, tmp_path):
    from longkit.cli import app

    res = CliRunner().invoke(
        app, ["eval", "compare", str(two_models / "seed0"), str(two_models / "seed1"), "--bootstrap", "200"]
    )
    assert res.exit_code == 0, res.output
    assert "| ppl | overall | 12 |" in res.output and "B − A (95% CI)" in res.output
    res = CliRunner().invoke(app, ["eval", "compare", str(two_models / "seed0"), str(two_models / "seed1"), "--json"])
    assert json.loads(res.output)["tasks"]["niah_single_1"]["overall"]["n"] == 12
    for args, message in [(["--bootstrap", "0"], "--bootstrap: expected at least 1"), ([], "not a directory")]:
        second = str(tmp_path / "missing") if not args else str(two_models / "seed1")
        res = CliRunner().invoke(app, ["eval", "compare", str(two_models / "seed0"), second, *args])
        assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_two_single_runs_are_named_by_their_task(two_models):
    result = compare_runs(two_models / "seed0" / "ppl", two_models / "seed1" / "ppl")
    assert set(result["tasks"]) == {"ppl"} and result["tasks"]["ppl"]["overall"]["n"] == 12


def test_runs_of_another_command_or_task_are_refused(two_models, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(two_models / "seed1" / "ppl", other)
    (other / "run.json").write_text(json.dumps({"backend": "hf", "model": "m"}))  # e.g. a rag-vs-long record
    with pytest.raises(InputError, match="no task settings in its run.json"):
        compare_runs(two_models / "seed0" / "ppl", other)
    with pytest.raises(InputError, match="runs of different tasks: 'ppl' in .*, 'niah_single_1' in"):
        compare_runs(two_models / "seed0" / "ppl", two_models / "seed1" / "niah_single_1")
