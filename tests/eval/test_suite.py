"""The suite runner end to end on a tiny random Llama: tasks x lengths, skips, cache, report, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from longkit.errors import ConfigError
from longkit.eval.suite import SuiteConfig, adaptation_rate, effective_length, load_suite, run_suite

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def tiny_dir(trained_tokenizer, tmp_path_factory):
    from longkit.testing import build_tiny_llama

    return build_tiny_llama(trained_tokenizer, tmp_path_factory.mktemp("tiny-bpe-llama"), max_positions=2048)


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    from longkit.backends.hf import HFBackend

    return HFBackend.from_name(str(tiny_dir), batch_size=4)


def test_effective_length_and_adaptation_rate():
    scores = {1024: 0.95, 2048: 0.9, 4096: 0.7, 8192: 0.86}
    assert effective_length(scores, 0.856) == 8192  # longest length above the threshold
    assert effective_length(scores, 0.96) is None
    assert adaptation_rate(scores) == pytest.approx(0.86 / 0.95, abs=1e-4)
    assert adaptation_rate(scores, reference=2048) == pytest.approx(0.86 / 0.9, abs=1e-4)
    assert adaptation_rate({1024: 0.5}) is None


def _cfg(tmp_path, **kw):
    base = dict(
        name="tiny",
        models=[{"name": "tiny", "model": "unused"}],
        lengths=[384, 1024, 4096],
        samples=1,
        tasks=[
            "niah_single_1",
            "vt",
            {"name": "Retrieve.PassKey", "samples": 2},
            "En.QA",
            "qa_1",
            {"name": "passkey", "options": {"depths": [0, 100]}},
        ],
        data={"infinitebench": str(FIX / "infinitebench")},
        out=str(tmp_path / "suite"),
        chat=False,
    )
    base.update(kw)
    return SuiteConfig.model_validate(base)


@pytest.fixture(autouse=True)
def _empty_hub_cache(tmp_path, monkeypatch):
    # benchmark data is fetched by name; these tests see an empty offline hub cache, never the network
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


def test_suite_end_to_end_with_skips_cache_and_report(tiny, tmp_path):
    cfg = _cfg(tmp_path)
    rep = run_suite(cfg, backends={"tiny": tiny}, progress=False)
    tasks = rep["models"]["tiny"]["tasks"]
    assert set(tasks) == {"niah_single_1", "vt", "Retrieve.PassKey", "En.QA", "passkey"}
    assert set(tasks["vt"]["by_length"]) == {1024}  # 384 cannot hold VT's 500-token one-shot example
    assert set(tasks["niah_single_1"]["by_length"]) == {384, 1024}
    for e in tasks.values():
        assert e["overall"] is not None and 0 <= e["overall"] <= 1
    assert "ruler_average" in rep["models"]["tiny"]
    reasons = {(s["task"], s.get("length")): s["reason"] for s in rep["skipped"]}
    assert "exceeds the model's 2048-token window" in reasons[("vt", 4096)]
    assert "too short" in reasons[("vt", 384)]
    assert "rajpurkar/squad_v2" in reasons[("qa_1", None)] and "longkit eval fetch qa_1" in reasons[("qa_1", None)]
    out = Path(cfg.out)
    md = (out / "report.md").read_text()
    assert "| niah_single_1 | RULER |" in md and "RULER average" in md and "## Skipped" in md
    assert (out / "tiny_score_vs_length.png").stat().st_size > 1000
    assert (out / "tiny_passkey_heatmap.png").exists()
    # each benchmark's tasks x lengths as one heatmap (RULER's two tasks here ran at 384 and 1024)
    assert "![RULER tasks by length](" in md and list(out.glob("tiny_RULER_tasks_by_length.png"))
    suite_json = json.loads((out / "suite.json").read_text())["models"]["tiny"]["tasks"]
    assert suite_json["En.QA"]["samples"] == 1
    # each benchmark's own number on its own scale: InfiniteBench in [0, 1], RULER x100
    assert suite_json["En.QA"]["official"]["scale"] == "[0, 1]"
    assert suite_json["En.QA"]["official"]["score"] == pytest.approx(tasks["En.QA"]["overall"], abs=1e-4)
    assert suite_json["vt"]["official"]["scale"] == "x100"
    assert suite_json["vt"]["official"]["score"] == pytest.approx(100 * tasks["vt"]["overall"], abs=0.01)
    assert "| official |" in md
    # the intro names each benchmark's scale as its tasks declare it
    assert "own scale: RULER x100, InfiniteBench and ChatQA 2 [0, 1]." in md
    first = {r["key"]: r["prediction"] for r in map(json.loads, (out / "tiny" / "vt" / "results.jsonl").open())}

    # a second suite in a new directory shares nothing but the request cache -> every request is a hit
    cfg2 = _cfg(tmp_path, out=str(tmp_path / "suite2"))
    import shutil

    shutil.copytree(out / "cache", Path(cfg2.out) / "cache")
    rep2 = run_suite(cfg2, backends={"tiny": tiny}, progress=False)
    cache = json.loads((Path(cfg2.out) / "cache.json").read_text())["tiny"]
    assert cache["misses"] == 0 and cache["hits"] > 0
    again_file = Path(cfg2.out) / "tiny" / "vt" / "results.jsonl"
    again = {r["key"]: r["prediction"] for r in map(json.loads, again_file.open())}
    assert again == first
    assert rep2["models"]["tiny"]["tasks"]["vt"]["by_length"] == tasks["vt"]["by_length"]


def test_unknown_task_fails_up_front(tiny, tmp_path):
    cfg = _cfg(tmp_path, tasks=["niah_single_1", "nope_task"])
    with pytest.raises(ConfigError, match="unknown task 'nope_task'.*RULER"):
        run_suite(cfg, backends={"tiny": tiny}, progress=False)


def test_cli_suite_list_and_report_only(tiny_dir, tmp_path):
    from longkit.cli import app

    cfg = {
        "name": "cli",
        "models": [{"model": str(tiny_dir), "batch_size": 2}],
        "lengths": [384],
        "samples": 1,
        "tasks": ["niah_single_2", "fwe"],
        "out": str(tmp_path / "cli"),
        "chat": False,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(cfg))
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "suite", str(path), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "niah_single_2: overall" in res.output and (tmp_path / "cli" / "report.md").exists()
    res = runner.invoke(app, ["eval", "suite", str(path), "--report-only"])
    assert res.exit_code == 0 and "fwe: overall" in res.output
    res = runner.invoke(app, ["eval", "list", "--json"])
    names = {t["name"] for t in json.loads(res.output)}
    assert {"niah_multikey_2", "kv_retrieval", "En.QA", "qmsum"} <= names
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**cfg, "lengths": "abc"}))
    res = runner.invoke(app, ["eval", "suite", str(bad)])
    assert res.exit_code == 2 and "lengths" in res.output


def test_cli_suite_fails_when_every_task_is_skipped(tiny_dir, tmp_path, cli):
    cfg = {
        "name": "skips",
        "models": [{"model": str(tiny_dir)}],
        "lengths": [100000],
        "samples": 1,
        "tasks": ["niah_single_1", "En.QA"],
        "out": str(tmp_path / "skips"),
        "chat": False,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, stdout, err = cli("eval", "suite", str(path), "--quiet")
    assert code == 2 and not stdout
    [line] = err.strip().splitlines()  # one line, every reason in it
    assert line.startswith(f"error: eval suite {path}: every task was skipped, so nothing was evaluated or written")
    assert "exceeds the model's 2048-token window" in line  # why niah was skipped
    assert "xinrongzhang2022/InfiniteBench" in line  # why En.QA was skipped
    assert not (tmp_path / "skips").exists()


def test_official_score_aggregates_each_benchmark_its_own_way():
    from longkit.eval.metrics import scrolls_rouge
    from longkit.eval.suite import official_score

    a = scrolls_rouge("the cat sat on the mat", ["the cat sat on the mat"])
    b = scrolls_rouge("mat the on sat cat", ["the cat sat on the mat"])
    recs = [{"scores": {"score": x["geometric_mean"], **x}} for x in (a, b)]
    off = official_score("qmsum", recs)
    corpus = ((1 + b["rouge1"]) / 2 * 0.5 * (1 + b["rougeL"]) / 2) ** (1 / 3)
    assert off["score"] == pytest.approx(100 * corpus, abs=0.01) and off["scale"] == "x100"
    assert off["score"] > 60  # the mean of per-sample geometric means would be 50
    assert official_score("En.QA", recs)["score"] == pytest.approx(0.5, abs=1e-4)


def test_suite_configs_in_repo_validate():
    root = Path(__file__).resolve().parents[2] / "configs" / "suites"
    names = sorted(p.name for p in root.glob("*.yaml"))
    assert {"chatqa2.yaml", "utk.yaml", "cpu-small.yaml"} <= set(names)
    from longkit.eval.tasks.registry import resolve_name

    for p in root.glob("*.yaml"):
        cfg = load_suite(p)
        for t in cfg.tasks:
            resolve_name(t.name)


def test_length_labels():
    from longkit.eval.report import length_label

    assert [length_label(n) for n in (None, 0, 4096, 131072, 1048576, 10485760, 3000)] == [
        "–",
        "0K",
        "4K",
        "128K",
        "1M",
        "10M",
        "3000",
    ]


def test_a_table_of_file_tasks_only_has_no_empty_length_column():
    from longkit.eval.suite.report import _table

    cfg = SuiteConfig.model_validate({"tasks": ["En.QA"]})
    entry = {
        "benchmark": "InfiniteBench",
        "metric": "token F1",
        "overall": 0.5,
        "by_length": {},
        "samples": 2,
        "effective_length": None,
        "adaptation_rate": None,
        "official": None,
    }
    header, rule, row = _table(cfg, {"tasks": {"En.QA": entry}})
    assert header.count("|") == rule.count("|") == row.count("|") == 9  # eight columns, no empty one
    assert "|  |" not in header
