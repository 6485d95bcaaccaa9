"""HELMET's long-QA tasks (InfiniteBench QA / MC as load_infbench formats them): templates, demonstrations, test
draw, truncation, the scorers on tricky outputs, data by name from a Hub-layout cache, bad input, a suite run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from char_tokenizer import CharTokenizer
from hub_cache import hub_file

from longkit.errors import ConfigError, InputError
from longkit.eval.tasks import helmet_longqa as lq

FIXTURES = Path(__file__).parent / "fixtures" / "helmet_longqa"


def test_templates_are_load_infbenchs():
    assert lq.QA_USER.startswith("You are given a story and a question. Answer the question as concisely")
    assert lq.MC_USER.endswith(
        "Don't say anything else.\n\n{demo}{context}\n\nQuestion: {question}\nOptions:\n{options}"
    )
    assert lq.SYSTEM == "Answer:" and lq.POSTFIX == " ... [the rest of the text is omitted]"
    assert lq.DEMO_WRAP == "For example:\n\n{demo}\n\nNow, read the following story:\n\n"
    assert {v.budget for v in lq.VARIANTS.values()} == {10}


def test_demos_and_draw_equal_datasets():
    datasets = pytest.importorskip("datasets")
    rows = lq.read_rows(FIXTURES / "longbook_choice_eng.jsonl", "choice")
    ds = datasets.Dataset.from_list(rows)
    for row in rows:
        demos = ds.filter(lambda x, i=row["id"]: x["id"] != i).shuffle(seed=42).select(range(2))
        temp = "[story text]\nQuestion: {question}\nOptions:\n{options}\nAnswer: {answer[0]}"
        expected = (
            "For example:\n\n" + "\n\n".join(temp.format(**x) for x in demos) + "\n\nNow, read the following story:\n\n"
        )
        assert lq.demo_text(rows, row, "choice", 2, 42) == expected
    assert [r["id"] for r in ds.shuffle(seed=42).select(range(4))] == [rows[i]["id"] for i in lq.select_test(6, 4, 42)]
    assert rows[1]["answer"] == ["B", "B. Ishmael 1"] and rows[1]["options"].startswith("A. Ahab 1\nB. Ishmael 1\n")


def test_prompt_and_truncation():
    task = lq.HelmetLongQATask("infbench_qa_eng", FIXTURES / "longbook_qa_eng.jsonl", [100000, 1000], chat=False)
    rows = task.rows()
    s = task.build({"id": "100000-0", "length": 100000, "row": 0}, CharTokenizer(), 10**6)  # type: ignore[arg-type]
    demo = lq.demo_text(rows, rows[0], "qa", 2, 42)
    assert (
        s.prompt
        == lq.QA_USER.format(demo=demo, context=rows[0]["context"], question=rows[0]["question"]) + "\n\nAnswer:"
    )
    assert s.max_new_tokens == 10 and not s.stop and s.references == rows[0]["answer"]
    cut = task.build({"id": "1000-0", "length": 1000, "row": 0}, CharTokenizer(), 10**6)  # type: ignore[arg-type]
    # truncate_llama2 at 1000 - 210 tokens (BOS counted), then tokenize() cuts to 1000 - 10 - 1
    ctx = lq.truncate_context(rows[0]["context"], 790, CharTokenizer())  # type: ignore[arg-type]
    assert len(ctx) == 790 - 1 and ctx.endswith(lq.POSTFIX)
    assert cut.meta["truncated_by_task"] and len(cut.prompt or "") <= 1000 - 10 - 1
    chat = lq.HelmetLongQATask("infbench_choice_eng", FIXTURES / "longbook_choice_eng.jsonl", [100000])
    m = chat.build({"id": "x", "length": 100000, "row": 2}, CharTokenizer(), 10**6)  # type: ignore[arg-type]
    assert m.prompt is None and m.messages and m.messages[0]["content"].endswith("D. Starbuck 2")


def test_scorers_on_tricky_outputs():
    ans = ["C", "C. Queequeg 2"]
    assert lq.choice_exact_match("C", ans) == 1.0 and lq.choice_exact_match("Answer: c.", ans) == 1.0
    assert lq.choice_exact_match("I think C. Queequeg 2 is right", ans) == 1.0
    assert lq.choice_exact_match("D", ans) == 0.0 and lq.choice_exact_match("The answer is C", ans) == 0.0
    assert lq.rouge_l_f1("Answer: captain ahab", ["captain ahab"]) == 1.0
    assert lq.rouge_l_f1("ships sailing", ["ship sailed"]) == 1.0  # Porter stemming
    assert 0 < lq.rouge_l_f1("the captain", ["captain ahab"]) < 1
    task = lq.HelmetLongQATask("infbench_choice_eng", FIXTURES / "longbook_choice_eng.jsonl", [8192], chat=False)
    s = task.build({"id": "x", "length": 8192, "row": 2}, CharTokenizer(), 10**6)  # type: ignore[arg-type]
    assert task.score(" C", s) == {"score": 1.0}  # "Answer:" prepended without the chat template


def _offline(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "hub"


def test_data_by_name_and_declarations(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task, registry

    hub = _offline(tmp_path, monkeypatch)
    with pytest.raises(InputError, match="infbench_qa_eng: official data not available"):
        make_task("infbench_qa_eng", {"lengths": [8192]})
    for v in lq.VARIANTS.values():
        hub_file(hub, lq.HUB, v.file, (FIXTURES / v.file).read_bytes())
        spec = registry()[v.name]
        assert spec.average_group == "HELMET LongQA" and spec.metric.scale_label == "x100"
    t = make_task("helmet_infbench_choice_eng", {"lengths": [8192, 16384], "options": {"max_test_samples": 3}})
    assert isinstance(t, lq.HelmetLongQATask) and len(t.plan()) == 6


def test_bad_input_is_one_line(tmp_path):
    from longkit.eval.tasks.registry import check_options, make_task

    with pytest.raises(ConfigError, match="unknown option 'shot'"):
        check_options("infbench_qa_eng", {"shot": 1})
    with pytest.raises(ConfigError, match="length 100 leaves no room"):
        make_task("infbench_qa_eng", {"lengths": [100]})
    bad = tmp_path / "longbook_choice_eng.jsonl"
    bad.write_text(
        json.dumps({"id": 0, "context": "c", "input": "q", "answer": ["x"], "options": ["a", "b", "c", "d"]})
    )
    with pytest.raises(
        InputError, match=r"longbook_choice_eng.jsonl:1: field 'answer': 'x' is not one of the options$"
    ):
        lq.read_rows(bad, "choice")
    bad.write_text(json.dumps({"id": 0, "input": "q", "answer": ["x"]}))
    with pytest.raises(InputError, match=r":1: missing field 'context'"):
        lq.read_rows(bad, "qa")


def test_suite_end_to_end(tmp_path, monkeypatch, tiny_backend):
    from longkit.eval.suite import SuiteConfig, run_suite

    _offline(tmp_path, monkeypatch)
    out = tmp_path / "suite"
    cfg = SuiteConfig.model_validate(
        {
            "name": "helmet-longqa",
            "models": [{"name": "tiny", "model": "unused"}],
            "lengths": [512],
            "samples": 2,
            "data": {"helmet_longqa": str(FIXTURES)},
            "tasks": ["infbench_qa_eng", "infbench_choice_eng"],
            "out": str(out),
        }
    )
    rep = run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    tasks = rep["models"]["tiny"]["tasks"]
    assert set(tasks) == {"infbench_qa_eng", "infbench_choice_eng"}
    for name, entry in tasks.items():
        assert entry["samples"] == 2 and entry["benchmark"] == "HELMET"
        for r in (json.loads(x) for x in (out / "tiny" / name / "results.jsonl").open()):
            assert r["meta"]["length"] == 512
