"""NoLiMa follows adobe-research/NoLiMa: the task template, system turn, budget and run settings (copied in
fixtures/nolima/, see SOURCE there), run_tests.py's needle and question filling, the characters async_evaluate.py
draws, book_haystack.py's windows and needle placement and the prompts they make (as the official code produced them
with a real tokenizer), _evaluate_response's verdicts; the paper's base score and effective length; data by name from
a Hub-layout cache or a local copy; bad rows and options refused in one line; and a suite run end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hub_cache import hub_file  # tests/eval is on sys.path under pytest's rootdir rules

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.tasks import nolima as nl
from longkit.eval.tasks.base import Sample

FIXTURES = Path(__file__).parent / "fixtures" / "nolima"
EXPECTED = json.loads((FIXTURES / "expected_prompts.json").read_text(encoding="utf-8"))
SETTINGS = json.loads((FIXTURES / "official_settings.json").read_text(encoding="utf-8"))
CASES = json.loads((FIXTURES / "evaluate_response_cases.json").read_text(encoding="utf-8"))
NEEDLES = FIXTURES / "needlesets" / "needle_set.json"
BOOKS = [(b, FIXTURES / "haystack" / "rand_shuffle" / f"rand_book_{b}.txt") for b in (1, 2)]


@pytest.fixture(scope="module")
def tok(smol_tokenizer) -> TextTokenizer:
    return TextTokenizer(smol_tokenizer)


def _offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "longkit-cache"))
    return tmp_path / "hub"


def _publish(hub: Path, books: tuple[int, ...] = nl.BOOKS) -> None:
    hub_file(hub, nl.REPO, "needlesets/needle_set.json", NEEDLES.read_bytes())
    for b in books:  # the two test books stand in for all five
        src = BOOKS[(b - 1) % 2][1]
        hub_file(hub, nl.REPO, f"haystack/rand_shuffle/rand_book_{b}.txt", src.read_bytes())


# --- the official strings and settings -----------------------------------------------------------------------------


def test_template_system_turn_budget_and_sweep_are_the_official_ones():
    assert nl.DEFAULT_TASK_TEMPLATE == EXPECTED["DEFAULT_TASK_TEMPLATE"]
    assert "\n\n Return only the final answer" in nl.DEFAULT_TASK_TEMPLATE  # the stray space stays
    assert nl.SYSTEM_PROMPT in SETTINGS["SYSTEM_PROMPT"] and nl.SYSTEM_PROMPT == "You are a helpful assistant"
    assert {m["max_tokens"] for m in SETTINGS["model_configs"].values()} == {nl.MAX_TOKENS} == {192}
    assert {m["temperature"] for m in SETTINGS["model_configs"].values()} == {0.0}
    runs = SETTINGS["run_configs"].values()
    assert sorted(r["context_length"] for r in runs) == list(nl.LENGTHS)
    assert {r["document_depth_percent_intervals"] for r in runs} == {nl.DEPTH_INTERVALS}
    assert {(r["document_depth_percent_min"], r["document_depth_percent_max"]) for r in runs} == {(0, 100)}
    assert {r["metric"] for r in runs} == {"contains"} and all(r["use_default_system_prompt"] for r in runs)
    assert {r["needle_set_path"].rsplit("/", 1)[-1] for r in runs} == {"needle_set.json"}
    assert nl.depths()[:3] == [0.0, 4.0, 8.0] and nl.depths()[-1] == 100.0 and len(nl.depths()) == 26


def test_declarations():
    from longkit.eval.tasks.registry import registry

    specs = {n: s for n, s in registry().items() if s.benchmark == "NoLiMa"}
    assert sorted(specs) == ["nolima_onehop", "nolima_twohop"]
    for name, spec in specs.items():
        assert spec.synthetic and spec.answer_budget == 192
        assert spec.metric.name == "accuracy" and spec.metric.scale_label == "x100"
        assert spec.data is not None and (spec.data.repo, spec.data.file, spec.data.setting) == (
            "amodaresi/NoLiMa",
            "needlesets/needle_set.json",
            "nolima",
        )
        assert spec.official.repo == "adobe-research/NoLiMa" and len(spec.official.commit or "") == 40
        assert spec.extra["question_type"] == name.split("_")[1]


# --- needle set, characters, haystack and prompts ------------------------------------------------------------------


@pytest.mark.parametrize("kind", nl.QUESTION_TYPES)
def test_needles_questions_and_seeds_are_run_tests(kind):
    official = {t["test_name"]: t for t in EXPECTED["tests"] if t["test_name"].endswith("_" + kind)}
    mine = nl.read_needle_set(NEEDLES, kind)
    assert [f"{t.example}_{kind}" for t in mine] == list(official)
    for t in mine:
        o = official[f"{t.example}_{kind}"]
        assert (t.needle, t.question, t.seed(0)) == (o["needle"], o["retrieval_question"], o["seed"])
        assert list(t.character_set) == o["character_set"] and t.task_template == o["task_template"]
    if kind == "onehop":  # two placeholders in the question: only the last is filled, as run_tests.py does
        assert mine[-1].question == "Which character cannot eat {1}? Answer briefly."


def _task(kind: str, length: int, intervals: int, chat: bool = False) -> nl.NolimaTask:
    return nl.NolimaTask(f"nolima_{kind}", kind, [length], NEEDLES, BOOKS, intervals=intervals, chat=chat)


@pytest.mark.parametrize("length,intervals", [(250, 26), (600, 5)])
def test_characters_windows_and_prompts_are_the_official_ones(tok, length, intervals):
    cells = [c for c in EXPECTED["placements"] if c["length"] == length]
    for kind in nl.QUESTION_TYPES:
        task = _task(kind, length, intervals)
        tests = task.tests()
        by_key = {
            (c["test_name"], c["book"], round(c["depth_percent"], 6)): c for c in cells if c["test_name"].endswith(kind)
        }
        plan = task.plan()
        assert len(plan) == len(by_key) == len(tests) * 2 * intervals
        for spec in plan:
            cell = by_key[(f"{tests[spec['test']].example}_{kind}", spec["book"], spec["depth"])]
            assert spec["character"] == cell["character"]
            if "user_prompt" in cell:
                sample = task.build(spec, tok, 100_000)
                assert sample.prompt == cell["user_prompt"], spec["id"]
                assert sample.references == [cell["character"]] and sample.max_new_tokens == 192
                assert sample.meta["token_depth"] == cell["token_depth"]
                assert (sample.meta["length"], sample.meta["depth"]) == (length, spec["depth"])


def test_needle_goes_after_a_line_at_its_depth_in_a_window_of_the_length(tok):
    task = _task("onehop", 600, 5, chat=True)
    book = task.book(0, tok)
    for spec in task.plan()[:5]:  # the first example on book 1 at 0, 25, 50, 75, 100%
        sample = task.build(spec, tok, 100_000)
        assert sample.messages is not None and sample.messages[0] == {"role": "system", "content": nl.SYSTEM_PROMPT}
        user = sample.messages[1]["content"]
        needle = sample.meta["needle"]
        assert sample.meta["character"] in needle and " " + needle + "\n" in user
        haystack = user.split("snippet:\n\n", 1)[1].split("\n\nUse the information", 1)[0]
        before = haystack.split(" " + needle + "\n")[0]
        assert before == "" or not before.endswith("\n")  # the line break that chose the spot is dropped
        # the window is `length` book tokens: the needle sits at round(length * depth) of them, after a line break
        assert sample.meta["token_depth"] == round(600 * spec["depth_fraction"])
        assert abs(tok.count(haystack.replace(" " + needle + "\n", "")) - 600) <= 5
        placed = book.place(needle, 600, spec["depth_fraction"])
        pos = placed["position"]  # the first line break at or after depth x (length + 1) of the window
        assert sample.meta["needle_token"] == pos - placed["start"] >= sample.meta["token_depth"]
        assert pos == 0 or "\n" in tok.decode([int(book.ids[pos])])
        assert pos >= spec["depth_fraction"] * 601 and not any(
            "\n" in tok.decode([int(t)]) for t in book.ids[int(spec["depth_fraction"] * 601) + 1 : pos]
        )
    with pytest.raises(ConfigError, match="does not fit in the book"):
        task.build({**task.plan()[0], "length": 5000}, tok, 100_000)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['metric']}-{c['response']!r}")
def test_evaluate_response_is_async_evaluate(case):
    assert nl.evaluate_response(case["response"], case["gold"], case["metric"]) == case["official"]


def test_score_is_contains_on_the_raw_response():
    task = _task("onehop", 250, 2)
    sample = Sample(id="x", references=["Yuki"])
    assert task.score("I think it is Yuki.", sample) == {"score": 1.0, "contains": 1.0}
    assert task.score("yuki", sample)["score"] == 0.0  # case-sensitive, as the official metric


# --- base score and effective length --------------------------------------------------------------------------------


def test_effective_length_reproduces_the_readme_table():
    gpt4o = {1000: 98.1, 2000: 98.0, 4000: 95.7, 8000: 89.2, 16000: 81.6, 32000: 69.7}
    assert nl.effective_length(gpt4o, 99.3) == 8000  # threshold 84.4
    llama405 = {1000: 89.0, 2000: 85.0, 4000: 74.5, 8000: 60.1, 16000: 48.4, 32000: 38.0}
    assert nl.effective_length(llama405, 94.7) == 2000  # threshold 80.5
    mini = {1000: 67.7, 2000: 58.2, 4000: 44.1}
    assert nl.effective_length(mini, 84.9) is None  # the README's "<1K"
    # 250 and 500 are base lengths, not candidates; a score exactly at 85% passes ("at least")
    assert nl.effective_length({250: 1.0, 500: 1.0, 1000: 0.5}, 1.0) is None
    assert nl.effective_length({1000: 0.85, 2000: 0.84}, 1.0) == 1000


def test_base_score_is_the_mean_over_examples_of_the_best_short_length():
    per_example = {"a": {250: 1.0, 500: 0.6, 1000: 0.8, 2000: 0.2}, "b": {250: 0.4, 500: 0.7, 1000: 0.5}}
    assert nl.base_score(per_example) == pytest.approx((1.0 + 0.7) / 2)
    assert nl.base_score({"a": {2000: 1.0}}) is None


def test_summary_from_records():
    def rec(example: str, length: int, score: float) -> dict[str, object]:
        return {"meta": {"example": example, "length": length}, "scores": {"score": score}}

    records = [rec("a", 250, 1), rec("a", 250, 1), rec("b", 250, 1), rec("b", 250, 0)]
    records += [rec("a", 500, 0), rec("a", 500, 1), rec("b", 500, 1), rec("b", 500, 1)]
    records += [rec(e, n, s) for n, s in ((1000, 1), (2000, 1), (4000, 0)) for e in "ab" for _ in range(2)]
    out = nl.nolima_summary(records)
    assert out["base_score"] == 1.0 and out["threshold"] == pytest.approx(0.85)
    assert out["by_length"][250] == 0.75 and out["effective_length"] == 2000
    assert out["base_lengths"] == [250, 500, 1000]
    short = nl.nolima_summary([rec("a", 2000, 1), rec("a", 4000, 0)])  # no base length run: the shortest stands in
    assert short["base_lengths"] == [2000] and short["effective_length"] == 2000


# --- data by name and local copies ----------------------------------------------------------------------------------


def test_data_by_name_from_the_hub_cache(tmp_path, monkeypatch, tok):
    from longkit.eval.tasks.registry import make_task

    hub = _offline_hub(tmp_path, monkeypatch)
    _publish(hub)
    task = make_task("nolima_twohop", {"lengths": [300], "options": {"depth_intervals": 3}, "samples": 1})
    assert isinstance(task, nl.NolimaTask)
    assert task.needle_set.name == "needle_set.json" and str(hub) in str(task.needle_set)
    assert [b for b, _ in task.books] == [1, 2, 3, 4, 5]
    assert all(p.name == f"rand_book_{b}.txt" for b, p in task.books)
    plan = task.plan()
    assert len(plan) == 5 * 1 * 3  # books x examples (samples: 1) x depths
    sample = task.build(plan[1], tok, 100_000)
    assert sample.meta["example"] == "0401_T01_C02" and "the state of Saxony" in str(sample.prompt or sample.messages)
    # a book missing from the cache offline: one line naming the file and the local-copy setting
    shutil.rmtree(hub)
    _publish(hub, books=(1, 2))
    with pytest.raises(InputError) as err:
        make_task("nolima_onehop", {"lengths": [300], "options": {"books": [1, 3]}})
    msg = str(err.value)
    assert "\n" not in msg and "rand_book_3.txt" in msg and "data.nolima" in msg


def test_a_local_copy_in_the_hub_layout_wins(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    _offline_hub(tmp_path, monkeypatch)  # an empty cache: nothing may be fetched
    task = make_task("nolima_onehop", {"lengths": [300], "data": {"nolima": str(FIXTURES)}, "options": {"books": [2]}})
    assert isinstance(task, nl.NolimaTask)
    assert task.needle_set == FIXTURES / "needlesets" / "needle_set.json" and task.books == [(2, BOOKS[1][1])]
    with pytest.raises(InputError, match=r"rand_book_3\.txt not found in .*data\.nolima"):
        make_task("nolima_onehop", {"lengths": [300], "data": {"nolima": str(FIXTURES)}, "options": {"books": [3]}})


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["needle", "questions", "tests", "id", "system_prompt"])
def test_a_row_missing_a_field_is_one_line_naming_file_and_field(tmp_path, field):
    rows = json.loads(NEEDLES.read_text())
    del rows[1][field]
    bad = tmp_path / "needle_set.json"
    bad.write_text(json.dumps(rows))
    with pytest.raises(InputError) as err:
        nl.read_needle_set(bad, "onehop")
    msg = str(err.value)
    assert "\n" not in msg and str(bad) in msg and "row 2" in msg and f"'{field}'" in msg


def test_other_bad_rows_are_one_line(tmp_path):
    rows = json.loads(NEEDLES.read_text())
    bad = tmp_path / "needle_set.json"
    for mutate, expect in (
        (lambda r: r[0].pop("character_set"), "missing field 'character_set'"),
        (lambda r: r[0]["tests"]["T01_C02"].pop("input_args"), "test T01_C02: missing field 'input_args'"),
        (lambda r: r.__setitem__(0, "x"), "row 1: expected an object"),
    ):
        broken = json.loads(json.dumps(rows))
        mutate(broken)
        bad.write_text(json.dumps(broken))
        with pytest.raises(InputError, match=expect):
            nl.read_needle_set(bad, "onehop")
    bad.write_text("{not json")
    with pytest.raises(InputError, match="invalid JSON"):
        nl.read_needle_set(bad, "onehop")


def test_unknown_or_mistyped_options_are_refused():
    from longkit.eval.tasks.registry import check_options

    with pytest.raises(ConfigError, match="unknown option 'depths'.*depth_intervals"):
        check_options("nolima_onehop", {"depths": [0, 50]})
    with pytest.raises(ConfigError, match="needle_set"):
        check_options("nolima_twohop", {"needle_set": "needle_set_w_CoT"})
    with pytest.raises(ConfigError, match="books"):
        check_options("nolima_onehop", {"books": [6]})
    check_options("nolima_onehop", {"needle_set": "needle_set_hard", "books": [1, 2], "metric": "EM"})


# --- a suite run ----------------------------------------------------------------------------------------------------


def test_suite_end_to_end_with_data_by_name(tmp_path, monkeypatch, tiny_backend):
    from longkit.eval.suite import SuiteConfig, run_suite

    hub = _offline_hub(tmp_path, monkeypatch)
    _publish(hub, books=(1,))
    out = tmp_path / "suite"
    cfg = SuiteConfig.model_validate(
        {
            "name": "nolima",
            "models": [{"name": "tiny", "model": "unused"}],
            "lengths": [250, 500],
            "samples": 1,
            "tasks": [{"name": "nolima_onehop", "options": {"books": [1], "depth_intervals": 2}}],
            "out": str(out),
        }
    )
    rep = run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    entry = rep["models"]["tiny"]["tasks"]["nolima_onehop"]
    assert entry["benchmark"] == "NoLiMa" and entry["metric"] == "accuracy" and entry["samples"] == 4
    assert set(map(int, entry["by_length"])) == {250, 500}
    assert entry["official"]["scale"] == "x100"
    records = [json.loads(line) for line in (out / "tiny" / "nolima_onehop" / "results.jsonl").open()]
    assert {(r["meta"]["length"], r["meta"]["depth"]) for r in records} == {
        (250, 0.0),
        (250, 100.0),
        (500, 0.0),
        (500, 100.0),
    }
    for r in records:
        assert r["scores"]["score"] == float(nl.evaluate_response(r["prediction"], r["references"]))
        assert r["references"] == [r["meta"]["character"]] and r["meta"]["example"] == "0401_T01_C02"
    summary = nl.nolima_summary(records)
    assert summary["base_lengths"] == [250, 500] and set(summary["by_length"]) == {250, 500}
    assert (out / "report.md").exists() and list(out.glob("*nolima_onehop*heatmap.png"))
    # NoLiMa's own effective length (85% of the base score) beside RULER's, in suite.json and the report
    in_suite = json.loads((out / "suite.json").read_text())["models"]["tiny"]["tasks"]["nolima_onehop"]
    assert in_suite["benchmark_summary"]["base_score"] == summary["base_score"]
    assert in_suite["benchmark_summary"]["effective_length"] == summary["effective_length"]
    assert "- nolima_onehop: base score" in (out / "report.md").read_text()
