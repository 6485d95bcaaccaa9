"""BABILong follows booydar/babilong: the template, prompts and labels (copied in fixtures/babilong/, see SOURCE
there), get_formatted_input's assembly and compare_answers' verdicts as the official functions return them, the
20-token budget; data read by name from a Hub-layout cache in both published layouts, lengths as the published
labels (unpublished ones refused in one line), bad rows and options refused in one line, and a suite run end to end."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hub_cache import hub_file  # tests/eval is on sys.path under pytest's rootdir rules

from longkit.errors import ConfigError, InputError
from longkit.eval.tasks import babilong as bb
from longkit.eval.tasks.base import Sample

FIXTURES = Path(__file__).parent / "fixtures" / "babilong"
OFFICIAL = json.loads((FIXTURES / "official_prompts.json").read_text(encoding="utf-8"))
EXPECTED = json.loads((FIXTURES / "expected_prompts.json").read_text(encoding="utf-8"))
CASES = json.loads((FIXTURES / "compare_answers_cases.json").read_text(encoding="utf-8"))


def _rows(task: str, level: str) -> list[dict[str, str]]:
    return list(json.loads((FIXTURES / "data" / task / f"{level}.json").read_text(encoding="utf-8")))


def _offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "longkit-cache"))
    return tmp_path / "hub"


def _parquet(rows: list[dict[str, str]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()  # babilong-1k-samples' column order: target, input, question (as its card lists some)
    pq.write_table(pa.table({k: [r[k] for r in rows] for k in ("target", "input", "question")}), buf)
    return buf.getvalue()


# --- the official strings ------------------------------------------------------------------------------------------


def test_template_prompts_and_labels_are_prompts_py_and_metrics_py():
    assert bb.TEMPLATE == OFFICIAL["DEFAULT_TEMPLATE"]
    assert list(bb.PROMPTS) == list(OFFICIAL["DEFAULT_PROMPTS"]) == [f"qa{i}" for i in range(1, 21)]
    for task, parts in OFFICIAL["DEFAULT_PROMPTS"].items():
        assert bb.PROMPTS[task] == (parts["instruction"], parts["examples"], parts["post_prompt"]), task
    assert {t: list(labels) for t, labels in bb.LABELS.items()} == OFFICIAL["TASK_LABELS"]
    # typos stay: qa1's example grammar, qa2's missing space, qa10's examples ending in an opened <context>
    assert "Judith come back" in bb.PROMPTS["qa1"].examples and "question.You" in bb.PROMPTS["qa2"].instruction
    assert bb.PROMPTS["qa10"].examples.endswith("</example>\n<context>\n")


def test_declarations_budget_and_average():
    from longkit.eval.tasks.registry import registry, resolve_name

    specs = {n: s for n, s in registry().items() if s.benchmark == "BABILong"}
    assert sorted(specs, key=lambda n: int(n[2:])) == [f"qa{i}" for i in range(1, 21)]
    for name, spec in specs.items():
        assert spec.answer_budget == bb.MAX_NEW_TOKENS == 20 and not spec.synthetic
        assert spec.metric.name == "accuracy" and spec.metric.scale_label == "x100"
        assert spec.data is not None and (spec.data.repo, spec.data.file) == (
            "RMT-team/babilong",
            f"data/{name}/0k.json",
        )
        assert resolve_name(f"babilong_{name}") == name
        assert spec.official.repo == "booydar/babilong" and spec.official.commit and len(spec.official.commit) == 40
        # collect_results.py averages qa1-qa5 only
        assert spec.average_group == ("BABILong" if int(name[2:]) <= 5 else None)


# --- prompt assembly -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", EXPECTED, ids=lambda c: f"{c['task']}-{c['level']}-{c['item']}")
def test_assembly_is_get_formatted_input(case):
    row = _rows(case["task"], case["level"])[case["item"] - 1]
    full = bb.PROMPTS[case["task"]]
    assert bb.format_input(row["input"], row["question"], full) == case["all_parts"]
    assert bb.format_input(row["input"], row["question"], bb.Prompt("", "", "")) == case["no_parts"]
    assert bb.format_input(row["input"], row["question"], full._replace(examples="")) == case["no_examples"]


def test_the_task_sends_the_official_prompt_with_the_official_budget(tiny_backend):
    files = [("0k", FIXTURES / "data" / "qa1" / "0k.json"), ("4k", FIXTURES / "data" / "qa1" / "4k.json")]
    task = bb.BabilongTask("qa1", files, chat=False)
    plan = task.plan()
    assert [s["id"] for s in plan] == ["0k-1", "0k-2", "4k-1", "4k-2"]
    sample = task.build(plan[2], tiny_backend.tokenizer, tiny_backend.max_context)
    expected = next(c for c in EXPECTED if (c["task"], c["level"], c["item"]) == ("qa1", "4k", 1))
    # the context's braces go in as text (str.format does not re-read a value) and the context is stripped
    assert sample.prompt == expected["all_parts"] and "{alone}" in sample.prompt
    assert sample.max_new_tokens == 20 and sample.references == ["bathroom"]
    assert (
        sample.meta["length"] == 4096 and sample.meta["level"] == "4k" and sample.meta["question"] == "Where is Mary?"
    )
    assert task.build(plan[0], tiny_backend.tokenizer, tiny_backend.max_context).meta["length"] == 0
    chat = bb.BabilongTask("qa1", files, chat=True).build(plan[2], tiny_backend.tokenizer, tiny_backend.max_context)
    assert chat.messages == [{"role": "user", "content": expected["all_parts"]}]  # the user turn, no system prompt
    off = bb.BabilongTask("qa1", files, bb.BabilongOptions(examples=False), chat=False)
    assert off.build(plan[2], tiny_backend.tokenizer, tiny_backend.max_context).prompt == expected["no_examples"]
    assert "examples" in off.describe() and task.describe() == ""
    assert off.fingerprint()["examples"] is False and task.fingerprint()["levels"] == ["0k", "4k"]
    assert [s["id"] for s in bb.BabilongTask("qa1", files, limit=1).plan()] == ["0k-1", "4k-1"]


# --- the metric ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['task']}:{c['target']}:{c['output'][:20]}")
def test_compare_answers_is_metrics_py(case):
    got = bb.compare_answers(case["target"], case["output"], case["question"], bb.LABELS[case["task"]])
    assert got is case["official"]


def test_metric_quirks_are_kept():
    labels = bb.LABELS
    assert not bb.compare_answers(
        "none", "none", "How many objects is Mary carrying?", labels["qa7"]
    )  # 'one' in 'none'
    assert bb.compare_answers("no", "not sure", "Is John in the garden?", labels["qa6"])  # 'no' inside 'not'
    # a label the question names never counts: 'kitchen' is in the question, so 'bathroom' stands alone
    assert bb.compare_answers(
        "bathroom", "kitchen, then bathroom", "Where was the apple before the kitchen?", labels["qa3"]
    )
    # only the first sentence is read, and 'Question' (capital Q) does not cut the lowercased answer
    assert bb.compare_answers("office", "office. kitchen", "Where is Daniel?", labels["qa1"])
    assert not bb.compare_answers("office", "office\nQuestion: kitchen", "Where is Daniel?", labels["qa1"])
    assert bb.preprocess_output("Garden<example>hallway") == "garden"


def test_score_reads_the_question_from_the_sample():
    task = bb.BabilongTask("qa8", [("0k", FIXTURES / "data" / "qa8" / "0k.json")])
    sample = Sample("0k-1", ["apple,milk"], prompt="p", meta={"question": "What is Daniel carrying?"})
    assert task.score("  milk,apple\n", sample) == {"score": 1.0}
    assert task.score("apple", sample) == {"score": 0.0}


# --- lengths -------------------------------------------------------------------------------------------------------


def test_suite_lengths_map_to_published_labels_and_levels_win():
    assert bb.choose_levels("qa1", "babilong", {"lengths": [1024, 4000, 131072, 1048576]}) == ["1k", "4k", "128k", "1M"]
    assert bb.choose_levels("qa1", "babilong", {"levels": ["0k", "10M"], "lengths": [4096]}) == ["0k", "10M"]
    assert bb.choose_levels("qa11", "babilong", {"levels": ["0k"]}) == ["0k"]
    assert bb.choose_levels("qa5", "babilong-1k-samples", {"lengths": [65536]}) == ["64k"]
    assert bb.published("babilong", "qa7")[-1] == "1M" and bb.published("babilong-1k-samples", "qa2")[-1] == "128k"


@pytest.mark.parametrize(
    "task,dataset,settings,bad",
    [
        ("qa1", "babilong", {"lengths": [3000]}, "length 3000 is none of them"),
        ("qa1", "babilong", {"levels": ["3k"]}, "length 3k is not published"),
        ("qa6", "babilong", {"levels": ["10M"]}, "length 10M is not published"),
        ("qa11", "babilong", {"lengths": [4096]}, "length 4k is not published"),
        ("qa1", "babilong-1k-samples", {"levels": ["256k"]}, "length 256k is not published"),
    ],
)
def test_unpublished_lengths_are_refused_in_one_line(task, dataset, settings, bad):
    with pytest.raises(ConfigError) as err:
        bb.choose_levels(task, dataset, settings)
    msg = str(err.value)
    assert "\n" not in msg and bad in msg
    assert msg.startswith(f"{task}: {bb.REPOS[dataset]} publishes {task} at {', '.join(bb.published(dataset, task))}")


# --- data by name --------------------------------------------------------------------------------------------------


def test_data_by_name_from_the_hub_cache(tmp_path, monkeypatch, tiny_backend):
    from longkit.eval.fetch import fetch
    from longkit.eval.tasks.registry import make_task

    hub = _offline_hub(tmp_path, monkeypatch)
    for level in ("0k", "4k"):
        hub_file(
            hub,
            "RMT-team/babilong",
            f"data/qa1/{level}.json",
            (FIXTURES / "data" / "qa1" / f"{level}.json").read_bytes(),
        )
    assert fetch("qa1").read_bytes() == (FIXTURES / "data" / "qa1" / "0k.json").read_bytes()  # `eval fetch qa1`
    task = make_task("qa1", {"levels": ["0k", "4k"], "lengths": [4096], "data": {}, "options": {}, "chat": False})
    assert all(str(hub) in str(p) for _, p in task.files)  # type: ignore[attr-defined]
    assert [s["id"] for s in task.plan()] == ["0k-1", "0k-2", "4k-1", "4k-2"]
    # the suite's lengths pick the file when no levels are named; samples keeps the first rows of each file
    only = make_task("qa1", {"lengths": [4096], "samples": 1, "data": {}, "options": {}})
    assert [s["id"] for s in only.plan()] == ["4k-1"]
    # the 1000-sample set: Parquet at <length>/<task>-00000-of-00001.parquet
    hub_file(hub, "RMT-team/babilong-1k-samples", "4k/qa1-00000-of-00001.parquet", _parquet(_rows("qa1", "4k")))
    big = make_task(
        "qa1", {"lengths": [4096], "data": {}, "chat": False, "options": {"dataset": "babilong-1k-samples"}}
    )
    sample = big.build(big.plan()[0], tiny_backend.tokenizer, tiny_backend.max_context)
    assert sample.prompt == next(c["all_parts"] for c in EXPECTED if (c["level"], c["item"]) == ("4k", 1))
    # a length missing from the cache while offline: one line naming the repository and the file
    with pytest.raises(InputError) as err:
        make_task("qa1", {"levels": ["8k"], "data": {}, "options": {}})
    assert "\n" not in str(err.value)
    assert "needs dataset RMT-team/babilong, file data/qa1/8k.json" in str(err.value)
    assert "HF_HUB_OFFLINE is set" in str(err.value) and "data.babilong" in str(err.value)


def test_a_local_copy_in_the_published_layout_wins(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    _offline_hub(tmp_path, monkeypatch)  # an empty cache: nothing is fetched
    task = make_task("qa8", {"levels": ["0k"], "data": {"babilong": str(FIXTURES)}, "options": {}})
    assert [s["id"] for s in task.plan()] == ["0k-1"]
    with pytest.raises(InputError, match=r"BABILong qa8 at 4k: none of data/qa8/4k.json, .* found in "):
        make_task("qa8", {"levels": ["4k"], "data": {"babilong": str(FIXTURES)}, "options": {}})


# --- bad input -----------------------------------------------------------------------------------------------------


def test_bad_rows_are_refused_naming_file_and_item(tmp_path):
    good = _rows("qa1", "0k")
    bad = tmp_path / "0k.json"

    def refused(content: str | bytes) -> str:
        bad.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(InputError) as err:
            bb.BabilongTask("qa1", [("0k", bad)]).plan()
        assert "\n" not in str(err.value)
        return str(err.value)

    assert (
        refused(json.dumps([good[0], {"input": "x", "question": "Where?"}])) == f"{bad}: item 2: missing field 'target'"
    )
    assert (
        refused(json.dumps([{**good[0], "target": 3}])) == f"{bad}: item 1: field 'target': expected a string, got int"
    )
    assert refused(json.dumps([["not", "a", "row"]])) == f"{bad}: item 1: expected an object, got list"
    assert refused('[{"input": ').startswith(f"{bad}: invalid JSON")
    assert refused("[]") == f"{bad}: no samples"
    # JSON Lines (what datasets' to_json writes) is read too, its errors by line
    lines = json.dumps(good[0]) + "\n" + json.dumps({"input": "x", "target": "y"}) + "\n"
    assert refused(lines) == f"{bad}:2: missing field 'question'"
    bad.unlink()
    parquet = tmp_path / "qa1-00000-of-00001.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"input": ["x"], "target": ["y"]}), parquet)
    with pytest.raises(InputError, match=r"qa1-00000-of-00001.parquet: row 1: missing field 'question'$"):
        bb.BabilongTask("qa1", [("0k", parquet)]).plan()


def test_unknown_or_mistyped_options_are_refused():
    from longkit.eval.tasks.registry import check_options

    with pytest.raises(
        ConfigError,
        match=r"^task qa1: options: unknown option 'use_examples' \(this task accepts: "
        r"dataset, examples, instruction, post_prompt\)$",
    ):
        check_options("qa1", {"use_examples": False})
    with pytest.raises(ConfigError, match=r"^task qa2: options: .*dataset"):
        check_options("babilong_qa2", {"dataset": "babilong-10k"})
    check_options("qa2", {"dataset": "babilong-1k-samples", "examples": False})


# --- the suite -----------------------------------------------------------------------------------------------------


def test_suite_end_to_end_with_data_by_name(tmp_path, monkeypatch, tiny_backend):
    from longkit.eval.suite import SuiteConfig, run_suite

    hub = _offline_hub(tmp_path, monkeypatch)
    for task, level in (("qa1", "0k"), ("qa1", "4k"), ("qa8", "0k")):
        hub_file(
            hub,
            "RMT-team/babilong",
            f"data/{task}/{level}.json",
            (FIXTURES / "data" / task / f"{level}.json").read_bytes(),
        )
    qa2 = [
        {"input": "Mary got the milk. Mary went to the office.", "question": "Where is the milk?", "target": "office"}
    ]
    hub_file(hub, "RMT-team/babilong", "data/qa2/4k.json", json.dumps(qa2).encode())
    out = tmp_path / "suite"
    cfg = SuiteConfig.model_validate(
        {
            "name": "babilong",
            "models": [{"name": "tiny", "model": "unused"}],
            "lengths": [4096],
            "chat": False,
            "tasks": [
                {"name": "qa1", "levels": ["0k", "4k"]},
                "qa2",
                {"name": "babilong_qa8", "levels": ["0k"]},
                "qa10",
                {"name": "qa3", "levels": ["3k"]},
            ],
            "out": str(out),
        }
    )
    rep = run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    tasks = rep["models"]["tiny"]["tasks"]
    assert set(tasks) == {"qa1", "qa2", "qa8"}
    assert tasks["qa1"]["samples"] == 4 and tasks["qa2"]["samples"] == 1 and tasks["qa8"]["samples"] == 1
    assert set(tasks["qa1"]["by_group"]) == {"0", "4096"}  # each sample's published length
    for entry in tasks.values():
        assert entry["benchmark"] == "BABILong" and entry["metric"] == "accuracy"
        assert entry["official"]["scale"] == "x100"
        assert entry["official"]["score"] == pytest.approx(100 * entry["overall"], abs=0.01)
    average = rep["models"]["tiny"]["babilong_average"]
    assert average["group"] == "BABILong" and average["tasks"] == 2  # qa1 and qa2; qa8 is not in the official average
    reasons = {s["task"]: s["reason"] for s in rep["skipped"]}
    assert set(reasons) == {"qa10", "qa3"}
    assert "file data/qa10/4k.json" in reasons["qa10"] and "length 3k is not published" in reasons["qa3"]
    records = [json.loads(line) for line in (out / "tiny" / "qa1" / "results.jsonl").open()]
    assert {r["meta"]["level"] for r in records} == {"0k", "4k"}
    for r in records:  # the stored score is compare_answers on the stored answer
        expected = bb.compare_answers(
            r["references"][0], r["prediction"].strip(), r["meta"]["question"], bb.LABELS["qa1"]
        )
        assert r["scores"]["score"] == float(expected)
    assert "BABILong average" in (out / "report.md").read_text()
    # the authors' task x length heatmap: qa1 at 0k and 4k, qa2 at 4k
    assert "![BABILong tasks by length](tiny_BABILong_tasks_by_length.png)" in (out / "report.md").read_text()
    assert (out / "tiny_BABILong_tasks_by_length.png").stat().st_size > 1000
    # a mistyped option is refused before anything is written
    bad = cfg.model_copy(
        update={
            "tasks": [cfg.tasks[0].model_copy(update={"options": {"dataset": "1k"}})],
            "out": str(tmp_path / "other"),
        }
    )
    with pytest.raises(ConfigError, match="options"):
        run_suite(bad, backends={"tiny": tiny_backend}, progress=False)
    assert not (tmp_path / "other").exists()
