"""LongBench v2 follows THUDM/LongBench's v2 code: the prompt files (copied in fixtures/longbench_v2_prompts/, see
SOURCE there), pred.py's replacement order, answer budgets and extract_answer, result.py's accuracy by difficulty and
length; data.json read by name from a hub cache; the chain-of-thought mode's two passes through the suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_cache import hub_file  # tests/eval is on sys.path under pytest's rootdir rules

from longkit.errors import InputError
from longkit.eval.tasks.base import Sample
from longkit.eval.tasks.longbench_v2 import BUDGETS, TEMPLATES, LongBenchV2Task, extract_answer, fill

OFFICIAL = Path(__file__).parent / "fixtures" / "longbench_v2_prompts"
FILES = {
    "direct": "0shot.txt",
    "cot": "0shot_cot.txt",
    "cot_answer": "0shot_cot_ans.txt",
    "no_context": "0shot_no_context.txt",
    "rag": "0shot_rag.txt",
}


@pytest.mark.parametrize("mode", sorted(FILES))
def test_templates_are_the_official_files(mode):
    assert TEMPLATES[mode] == (OFFICIAL / FILES[mode]).read_text(encoding="utf-8")


def test_budgets_are_pred_py_s():
    assert BUDGETS == {"direct": 128, "cot": 1024, "cot_answer": 128, "no_context": 128, "rag": 128}


ROW = {
    "_id": "x1",
    "domain": "Single-Document QA",
    "sub_domain": "Legal",
    "difficulty": "hard",
    "length": "short",
    "question": " Which clause applies? ",
    "choice_A": "the first",
    "choice_B": "the second",
    "choice_C": "$Q$",
    "choice_D": "none",
    "answer": "B",
    "context": "\n The contract text, citing $C_A$ by name. \n",
}


def test_fill_replaces_in_pred_py_s_order():
    text = fill(TEMPLATES["direct"], ROW)
    # $DOC$ goes in first, so the document's own "$C_A$" becomes choice A's text, as the official chain does
    assert "<text>\nThe contract text, citing the first by name.\n</text>" in text
    # choices are filled after the question: choice C's literal "$Q$" stays
    assert "What is the correct answer to this question: Which clause applies?\n" in text and "(C) $Q$" in text
    cot = fill(TEMPLATES["cot_answer"], ROW, "Step one. $DOC$ stays.")
    assert "The text is too long and omitted here." in cot and "step by step: Step one. $DOC$ stays." in cot


@pytest.mark.parametrize(
    "response,letter",
    [
        ("The correct answer is (B)", "B"),
        ("**The correct answer is (C)**", "C"),
        ("The correct answer is D.", "D"),
        ("I think the correct answer is (A)", None),
        ("The correct answer is (E)", None),
        ("B", None),
        ("The correct answer is (b)", None),
        ("The correct answer is A or (B)", "A"),  # the parenthesised form must follow "is " directly
    ],
)
def test_extract_answer_is_pred_py_s(response, letter):
    assert extract_answer(response) == letter


def _data(path: Path, n: int = 4) -> Path:
    rows = []
    for i in range(n):
        rows.append(
            {
                **ROW,
                "_id": f"q{i}",
                "difficulty": "easy" if i % 2 else "hard",
                "length": ("short", "medium", "long")[i % 3],
                "answer": "ABCD"[i % 4],
                "context": f"Document {i}. " + "Some words of the long text. " * 30,
            }
        )
    path.write_text(json.dumps(rows))
    return path


def test_scoring_and_result_py_breakdowns(tmp_path, tiny_backend):
    task = LongBenchV2Task(_data(tmp_path / "data.json"))
    assert [s["id"] for s in task.plan()] == ["q0", "q1", "q2", "q3"]
    sample = task.build(task.plan()[1], tiny_backend.tokenizer, tiny_backend.max_context)
    assert sample.max_new_tokens == 128 and sample.meta["length"] == "medium" and sample.meta["difficulty"] == "easy"
    assert task.score("The correct answer is (B)", sample) == {"score": 1.0, "answered": 1.0}
    assert task.score("It is B", Sample("x", ["B"])) == {"score": 0.0, "answered": 0.0}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{**ROW, "answer": "E"}]))
    with pytest.raises(InputError, match=r"bad.json:1: field 'answer': expected one of A, B, C, D, got 'E'"):
        LongBenchV2Task(bad).plan()
    bad.write_text(json.dumps([ROW, {k: v for k, v in ROW.items() if k != "choice_D"}]))
    with pytest.raises(InputError, match="item 2: missing field 'choice_D'"):
        LongBenchV2Task(bad).plan()


def test_rag_mode_retrieves_chunks_in_document_order(tmp_path, tiny_backend, minilm, monkeypatch):
    from longkit.eval.tasks.longbench_v2 import LongBenchV2Options

    paragraphs = [f"Paragraph {i} is about the weather in town {i}, rainy and cold." for i in range(30)]
    paragraphs[7] = "The treasure map shows the gold buried under the old oak tree by the river."
    paragraphs[21] = "Pirates buried the gold treasure; the map marks the oak tree."
    row = {**ROW, "_id": "r1", "context": "\n\n".join(paragraphs), "question": "Where is the gold treasure buried?"}
    path = tmp_path / "data.json"
    path.write_text(json.dumps([row]))
    opts = LongBenchV2Options(mode="rag", rag_chunks=2, chunk_size=24)
    task = LongBenchV2Task(path, mode="rag", rag=opts, chat=False)
    monkeypatch.setattr("longkit.rag.embed.load_embedder", lambda name: minilm)
    sample = task.build(task.plan()[0], tiny_backend.tokenizer, tiny_backend.max_context)
    text = sample.prompt
    assert text.startswith("Please read the following retrieved text chunks and answer the question below.")
    first, second = text.index("Retrieved chunk 1: "), text.index("\n\nRetrieved chunk 2: ")
    assert "The treasure map" in text[first:second] and "Pirates buried" in text[second:]  # document order
    assert "Retrieved chunk 3" not in text and sample.max_new_tokens == 128
    assert task.fingerprint()["rag"] == {"chunks": 2, "chunk_size": 24, "embedder": "all-minilm-l6-v2"}


@pytest.mark.parametrize("mode", ["direct", "cot", "no_context"])
def test_modes_through_the_suite_with_data_by_name(mode, tmp_path, monkeypatch, tiny_backend):
    from longkit.eval.suite import SuiteConfig, run_suite

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    hub_file(tmp_path / "hub", "THUDM/LongBench-v2", "data.json", _data(tmp_path / "data.json").read_bytes())
    cfg = SuiteConfig.model_validate(
        {
            "name": "lb2",
            "models": [{"name": "tiny", "model": "unused"}],
            "lengths": [1024],
            "tasks": [{"name": "LongBench-v2", "options": {"mode": mode}}],
            "out": str(tmp_path / "suite"),
            "chat": False,
        }
    )
    rep = run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    entry = rep["models"]["tiny"]["tasks"]["longbench_v2"]
    done = tmp_path / "suite" / "tiny" / "longbench_v2"
    answers = [json.loads(line) for line in (done / "results.jsonl").open()]
    suite_json = json.loads((tmp_path / "suite" / "suite.json").read_text())["models"]["tiny"]["tasks"]
    assert set(suite_json["longbench_v2"]["by_difficulty"]) <= {"easy", "hard"}
    assert suite_json["longbench_v2"]["official"]["scale"] == "x100"
    data = tmp_path / "data.json"
    if mode == "cot":
        reasoning = {r["id"]: r["prediction"] for r in map(json.loads, (done / "reasoning" / "results.jsonl").open())}
        assert len(reasoning) == 4
        # the answer pass asks again, with each non-empty reasoning in place of the omitted text
        assert {a["id"] for a in answers} == {k for k, v in reasoning.items() if v.strip()}
        second = LongBenchV2Task(data, mode="cot_answer", reasoning=reasoning, chat=False)
        for spec in second.plan():
            prompt = second.build(spec, tiny_backend.tokenizer, tiny_backend.max_context).prompt
            assert reasoning[spec["id"]].strip() in prompt and "The text is too long and omitted here." in prompt
            assert "Document" not in prompt  # the document itself is not sent again
    else:
        assert entry["samples"] == 4 and len(answers) == 4
        task = LongBenchV2Task(data, mode=mode, chat=False)
        prompt = task.build(task.plan()[0], tiny_backend.tokenizer, tiny_backend.max_context).prompt
        assert ("Document 0." in prompt) == (mode == "direct")
        assert prompt.endswith('Format your response as follows: "The correct answer is (insert answer here)".')
