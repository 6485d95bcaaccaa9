"""Every rerun of `longkit eval niah/passkey/suite` is safe: the same settings resume or change nothing, other
settings are refused in one line before anything is written, and earlier results stay byte-identical."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml


def _refusal(field: str, old: str, new: str, out: Path) -> str:
    return f"error: {field}: this output was made with {old}, not {new}; use a new --out or delete {out} to start fresh"


def test_passkey_rerun_resumes_refuses_other_settings_and_never_writes_on_refusal(
    fast_llama_dir, tmp_path, cli, tree_hashes
):
    out = tmp_path / "pk"
    args = [
        "eval",
        "passkey",
        "--model",
        fast_llama_dir,
        "--lengths",
        "200",
        "--depths",
        "0,100",
        "--answer-budget",
        "4",
        "--haystack",
        "noise",
        "--out",
        out,
    ]
    code, _, err = cli(*args)
    assert code == 0, err
    assert "2 of 2 samples" in (out / "report.md").read_text()  # the header counts this grid only
    record = json.loads((out / "run.json").read_text())
    assert record["grid"] == {"lengths": [200], "depths": [0.0, 100.0]} and record["task"]["name"] == "passkey"
    before = tree_hashes(out)

    code, _, err = cli(*args)
    assert code == 0 and "passkey: already complete" in err
    assert tree_hashes(out) == before  # nothing rewritten: not the summary, the report nor the heatmap

    for change, field, old, new in [
        (["--lengths", "300"], "--lengths", "[200]", "[300]"),
        (["--depths", "50"], "--depths", "[0.0, 100.0]", "[50.0]"),
        (["--seed", "7"], "--seed", "0", "7"),
        (["--template", "question-both"], "--template", '"question-after"', '"question-both"'),
        (
            ["--model", tmp_path / "other-model"],
            "--model",
            json.dumps(str(fast_llama_dir)),
            json.dumps(str(tmp_path / "other-model")),
        ),
    ]:
        code, _, err = cli(*args, *change)  # a later option wins
        assert code == 2 and err.strip() == _refusal(field, old, new, out), err
        assert tree_hashes(out) == before


def test_a_refused_needle_run_leaves_no_output_directory(fast_llama_dir, tmp_path, cli):
    out = tmp_path / "never"
    code, _, err = cli("eval", "niah", "--model", fast_llama_dir, "--lengths", "100000", "--out", out)
    assert code == 2 and "exceeds the model's context window" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def _suite_yaml(path: Path, model: Path | str, out: Path, lengths: list[int] | None = None) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "rerun",
                "models": [{"name": "tiny", "model": str(model)}],
                "lengths": lengths or [384],
                "samples": 1,
                "chat": False,
                "tasks": ["niah_single_1"],
                "out": str(out),
            }
        )
    )
    return path


@pytest.fixture
def finished_suite(fast_llama_dir, tmp_path, cli, monkeypatch) -> tuple[Path, Path]:
    """A suite that ran once: (its YAML, its out directory)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    out = tmp_path / "suite"
    config = _suite_yaml(tmp_path / "suite.yaml", fast_llama_dir, out)
    code, _, err = cli("eval", "suite", config, "--quiet")
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["models"]["tiny"]["model"] == str(fast_llama_dir)
    return config, out


def test_suite_rerun_is_complete_and_changes_nothing(finished_suite, cli, tree_hashes):
    config, out = finished_suite
    before = tree_hashes(out)
    code, stdout, err = cli("eval", "suite", config, "--quiet")
    assert code == 0, err
    assert "already complete" in stdout and "tiny · niah_single_1: overall" in stdout
    assert tree_hashes(out) == before  # not even cache.json's counts or the report were rewritten


def test_suite_with_another_model_under_the_same_name_is_refused_up_front(
    finished_suite, fast_llama_dir, tmp_path, cli, tree_hashes
):
    config, out = finished_suite
    other = tmp_path / "other-model"
    shutil.copytree(fast_llama_dir, other)
    before = tree_hashes(out)
    changed = _suite_yaml(tmp_path / "changed.yaml", other, out)
    for extra in ([], ["--report-only"]):  # the report of another model's results is refused too
        code, stdout, err = cli("eval", "suite", changed, "--quiet", *extra)
        assert code == 2 and not stdout
        assert err.strip() == _refusal("models[0].model", json.dumps(str(fast_llama_dir)), json.dumps(str(other)), out)
        assert tree_hashes(out) == before

    # an output written before suites kept out/run.json: the tasks' own run records still tell
    legacy = tmp_path / "legacy"
    shutil.copytree(out, legacy)
    (legacy / "run.json").unlink()
    code, _, err = cli("eval", "suite", _suite_yaml(tmp_path / "legacy.yaml", other, legacy), "--quiet")
    assert code == 2 and err.strip() == _refusal(
        "models[0].model", json.dumps(str(fast_llama_dir)), json.dumps(str(other)), legacy
    )


def test_suite_whose_lengths_all_exceed_the_window_writes_nothing(
    finished_suite, fast_llama_dir, tmp_path, cli, tree_hashes
):
    config, out = finished_suite
    before = tree_hashes(out)
    code, stdout, err = cli("eval", "suite", config, "--lengths", "100000", "--quiet")
    assert code == 2 and not stdout and err.strip() == _refusal("lengths", "[384]", "[100000]", out)
    assert tree_hashes(out) == before

    fresh = tmp_path / "fresh"  # nothing ran at all: one line with every reason, and no directory
    code, stdout, err = cli("eval", "suite", _suite_yaml(tmp_path / "long.yaml", fast_llama_dir, fresh, [100000]))
    assert code == 2 and not stdout and len(err.strip().splitlines()) == 1, err
    assert "every task was skipped, so nothing was evaluated or written" in err
    assert "tiny · niah_single_1 @ 100000: length 100000 exceeds the model's 2048-token window" in err
    assert not fresh.exists()

    code, _, err = cli("eval", "suite", config, "--report-only")  # the earlier run still reports
    assert code == 0, err


def test_report_only_without_a_finished_run_writes_nothing(fast_llama_dir, tmp_path, cli):
    out = tmp_path / "nothing-yet"
    code, stdout, err = cli("eval", "suite", _suite_yaml(tmp_path / "s.yaml", fast_llama_dir, out), "--report-only")
    assert code == 2 and not stdout and len(err.strip().splitlines()) == 1
    assert "no finished run of this suite" in err and not out.exists()


def test_a_new_task_joins_the_record_and_earlier_results_stay(finished_suite, tmp_path, cli):
    config, out = finished_suite
    cfg = yaml.safe_load(config.read_text())
    cfg["tasks"].append("niah_single_2")
    config.write_text(yaml.safe_dump(cfg))
    first = (out / "tiny" / "niah_single_1" / "results.jsonl").read_bytes()
    code, _, err = cli("eval", "suite", config, "--quiet")
    assert code == 0, err
    assert set(json.loads((out / "run.json").read_text())["tasks"]) == {"niah_single_1", "niah_single_2"}
    assert (out / "tiny" / "niah_single_1" / "results.jsonl").read_bytes() == first
