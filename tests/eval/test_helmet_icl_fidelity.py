"""HELMET's ICL tasks follow princeton-nlp/HELMET: the templates, test selection, per-row balanced demonstrations and
number labels equal what the official load_icl returns on fixture rows (fixtures/helmet_icl/, see SOURCE there), the
shots per length, answer budget, no-chat and newline stop are the configs', the scorer is post_process's exact match;
data read by name from a Hub-layout cache, bad rows and options refused in one line, and a suite run end to end."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml
from char_tokenizer import CharTokenizer
from hub_cache import hub_file  # tests/eval is on sys.path under pytest's rootdir rules

from longkit.errors import ConfigError, InputError
from longkit.eval.tasks import helmet_icl as icl

FIXTURES = Path(__file__).parent / "fixtures" / "helmet_icl"
EXPECTED = json.loads((FIXTURES / "expected_examples.json").read_text(encoding="utf-8"))
CASES = json.loads((FIXTURES / "post_process_cases.json").read_text(encoding="utf-8"))
FILE_OF = {  # the fixture rows each task reads (TREC fine reads the TREC rows' fine_label)
    "icl_trec_coarse": "trec_coarse",
    "icl_trec_fine": "trec_coarse",
    "icl_banking77": "banking77",
    "icl_clinic150": "clinic150",
    "icl_nlu": "nlu",
}
PIN = "fedcba9876543210fedcba9876543210fedcba98"


def _rows(task: str, split: str) -> list[dict]:
    path = FIXTURES / "data" / FILE_OF[task] / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def _offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "longkit-cache"))
    return tmp_path / "hub"


def _publish(hub: Path, task: str) -> None:
    """The task's Hub files as the Hub serves them (a named revision resolves through refs/<name>)."""
    d = icl.DATA[task]
    rev = d.revision if d.revision and re.fullmatch(r"[0-9a-f]{40}", d.revision) else PIN
    splits = [("train", d.train)] + ([("test", d.test)] if d.test else [])
    for split, file in splits:
        hub_file(hub, d.repo, file, _parquet(_rows(task, split)), rev=rev)
    if d.revision and d.revision != rev:  # e.g. refs/convert/parquet
        ref = hub / f"datasets--{d.repo.replace('/', '--')}" / "refs" / d.revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(rev)


def _official_selection(task: str, max_test: int | None) -> tuple[list[dict], list[dict]]:
    d = icl.DATA[task]
    train = _rows(task, "train")
    if d.test is None:
        train, test = icl.train_test_split(train, icl.SEED)
    else:
        test = _rows(task, "test")
    return train, icl.select_test(test, d.label_field, max_test, icl.SEED)


# --- the official strings and settings ---------------------------------------------------------------------------------


def test_templates_are_load_icls():
    t = EXPECTED["_templates"]
    assert icl.PROMPT_TEMPLATE == t["prompt_template"]
    assert icl.USER_TEMPLATE == t["user_template"] and icl.SYSTEM_TEMPLATE == t["system_template"]
    assert icl.ITEM_TEMPLATE == "{text}\nlabel: {label}"


def test_shots_budget_and_settings_are_the_configs():
    shots: dict[str, dict[int, int]] = {}
    for name in ("icl_short.yaml", "icl.yaml"):
        cfg = yaml.safe_load((FIXTURES / name).read_text())
        lengths = [int(x) for x in str(cfg["input_max_length"]).split(",")]
        for length, dataset, budget in zip(
            lengths, cfg["datasets"].split(","), str(cfg["generation_max_length"]).split(","), strict=True
        ):
            m = re.fullmatch(r"(icl_\w+?)_(\d+)shot_balance", dataset)
            assert m, dataset
            shots.setdefault(m[1], {})[length] = int(m[2])
            assert int(budget) == icl.GENERATION_MAX_LENGTH
        assert cfg["use_chat_template"] is False and cfg["stop_new_line"] is True
        assert cfg["max_test_samples"] == icl.MAX_TEST_SAMPLES
    assert shots == {name: d.shots for name, d in icl.DATA.items()}


def test_declarations():
    from longkit.eval.tasks.registry import registry

    specs = {n: s for n, s in registry().items() if n in icl.DATA}
    assert set(specs) == {"icl_trec_coarse", "icl_trec_fine", "icl_banking77", "icl_clinic150", "icl_nlu"}
    for name, spec in specs.items():
        assert spec.benchmark == "HELMET" and spec.average_group == "HELMET ICL" and not spec.synthetic
        assert spec.metric.name == "exact_match" and spec.metric.scale_label == "x100"
        assert spec.answer_budget == 20
        assert spec.official.repo == "princeton-nlp/HELMET" and len(spec.official.commit or "") == 40
        assert spec.data is not None and spec.data.file == icl.DATA[name].train
    assert {n: d.num_labels for n, d in icl.DATA.items()} == {
        "icl_trec_coarse": 6,
        "icl_trec_fine": 50,
        "icl_banking77": 77,
        "icl_clinic150": 151,
        "icl_nlu": 68,
    }


# --- sampling and prompt assembly ------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", list(icl.DATA))
@pytest.mark.parametrize("shots", [7, 23, 60])
@pytest.mark.parametrize("max_test", [8, None])
def test_examples_equal_load_icl(task, shots, max_test):
    expected = EXPECTED[task.removeprefix("icl_")][f"{shots}shot_max{max_test}"]
    d = icl.DATA[task]
    train, test = _official_selection(task, max_test)
    got = []
    for row in test:
        ex = icl.make_example(row, train, d.label_field, d.num_labels, shots, icl.SEED)
        got.append({"question": ex["question"], "answer": ex["answer"], "prompt": icl.PROMPT_TEMPLATE.format(**ex)})
    assert got == expected


def test_shuffle_and_split_are_datasets():
    datasets = pytest.importorskip("datasets")
    rows = [{"text": f"t{i}", "label": i % 5} for i in range(57)]
    ds = datasets.Dataset.from_list(rows)
    assert ds.shuffle(seed=42).to_list() == [rows[i] for i in icl.shuffled(57, 42)]
    split = ds.train_test_split(test_size=0.1, seed=42)
    train, test = icl.train_test_split(rows, 42)
    assert split["train"].to_list() == train and split["test"].to_list() == test


def test_seeds_and_label_map():
    assert (
        icl.local_seed("abc", 42)
        == (int("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 16) + 42) % 2**31
    )
    import random

    random.seed(icl.local_seed("abc", 42))
    expected = list(range(77))
    random.shuffle(expected)
    assert icl.label_mapping(77, icl.local_seed("abc", 42)) == expected


def test_sample_no_chat_newline_stop_and_tail_truncation(tmp_path):
    d = FIXTURES / "data" / "trec_coarse"
    task = icl.HelmetIclTask("icl_trec_coarse", d / "train.jsonl", d / "test.jsonl", {100000: 23, 900: 23})
    train, test = task.loaded()
    assert len(test) == 12  # 12 rows, fewer than 500: load_icl keeps them in file order
    ex = icl.make_example(test[0], train, "coarse_label", 6, 23, icl.SEED)
    full = task.build({"id": "100000-0", "length": 100000, "row": 0}, CharTokenizer(), 200000)  # type: ignore[arg-type]
    assert full.prompt == icl.PROMPT_TEMPLATE.format(**ex) and full.messages is None
    assert full.stop == ["\n"] and full.max_new_tokens == 20 and full.references == [ex["answer"]]
    assert full.meta["length"] == 100000 and full.meta["shots"] == 23 and not full.meta["truncated_by_task"]
    # over HELMET's input length: the context loses its tail (the last demonstrations), question and "label:" stay
    cut = task.build({"id": "900-0", "length": 900, "row": 0}, CharTokenizer(), 200000)  # type: ignore[arg-type]
    assert cut.meta["truncated_by_task"] and cut.prompt is not None and len(cut.prompt) <= 900 - 20 - 1
    _, _, rest = cut.prompt.partition(" \n\n")
    assert cut.prompt.endswith("\n\n" + ex["question"] + "\nlabel:")
    assert ex["context"].startswith(rest[: -len("\n\n" + ex["question"] + "\nlabel:")])
    # the model's window below the input length wins
    small = task.build({"id": "100000-0", "length": 100000, "row": 0}, CharTokenizer(), 700)  # type: ignore[arg-type]
    assert small.meta["truncated_by_task"] and len(small.prompt or "") <= 700 - 20 - 1


# --- the metric ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['output']!r}-{c['answer']}")
def test_exact_match_is_post_process(case):
    assert icl.parse_output(case["output"], icl.SYSTEM_TEMPLATE) == case["parsed_output"]
    assert icl.exact_match(case["output"], case["answer"]) == float(case["exact_match"])


def test_tricky_outputs():
    assert icl.exact_match("label: 5\nlabel: 7", "5") == 1.0  # the first label
    assert icl.exact_match("15", "5") == 0.0 and icl.exact_match("the 5.", "5") == 1.0
    assert icl.exact_match("5 label: 7", "7") == 1.0  # text after the first "label:" wins over the first line


# --- data by name -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", list(icl.DATA))
def test_data_by_name_from_hub_cache(task, tmp_path, monkeypatch):
    hub = _offline_hub(tmp_path, monkeypatch)
    _publish(hub, task)
    t = icl.DATA[task]
    from longkit.eval.tasks.registry import registry

    built = icl._factory(registry()[task], {"lengths": [8192, 131072], "options": {"max_test_samples": 8}})
    assert isinstance(built, icl.HelmetIclTask)
    assert built.shots == {8192: t.shots[8192], 131072: t.shots[131072]}
    train, test = built.loaded()
    exp_train, exp_test = _official_selection(task, 8)
    assert test == [{"text": r["text"], t.label_field: r[t.label_field]} for r in exp_test]
    assert len(train) == len(exp_train)
    assert [s["id"] for s in built.plan()][:2] == ["8192-0", "8192-1"] and len(built.plan()) == 2 * len(test)


def test_missing_data_offline_is_one_line(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    _offline_hub(tmp_path, monkeypatch)
    with pytest.raises(InputError, match=r"icl_banking77: official data not available .*PolyAI/banking77"):
        make_task("icl_banking77", {"lengths": [8192]})


# --- bad input ----------------------------------------------------------------------------------------------------------


def test_unknown_option_and_length_are_refused():
    from longkit.eval.tasks.registry import check_options, make_task

    with pytest.raises(ConfigError, match=r"task icl_nlu: options: unknown option 'shot' \(this task accepts: "):
        check_options("icl_nlu", {"shot": 5})
    with pytest.raises(ConfigError, match="options"):
        check_options("icl_nlu", {"shots": "many"})
    with pytest.raises(ConfigError, match=r"icl_trec_fine: HELMET runs it at 8192 \(400 shots\).*length 4096 is none"):
        make_task("icl_trec_fine", {"lengths": [4096]})


def test_bad_rows_name_file_and_field(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text(json.dumps({"text": "a", "coarse_label": 1}) + "\n" + json.dumps({"text": "b"}) + "\n")
    with pytest.raises(InputError, match=r"train.jsonl:2: .*'coarse_label'"):
        icl.read_rows(bad, "coarse_label", 6)
    pq = tmp_path / "test.parquet"
    pq.write_bytes(_parquet([{"label": 3}, {"label": 4}]))  # a file without the text column
    with pytest.raises(InputError, match=r"test.parquet: row 1: missing field 'text'$"):
        icl.read_rows(pq, "label", 77)
    pq.write_bytes(_parquet([{"text": "a", "label": "x"}]))
    with pytest.raises(InputError, match=r"test.parquet: row 1: field 'label': expected an integer label"):
        icl.read_rows(pq, "label", 77)
    pq.write_bytes(_parquet([{"text": "a", "label": 80}]))
    with pytest.raises(InputError, match=r"row 1: field 'label': label outside 0..76"):
        icl.read_rows(pq, "label", 77)


# --- the suite ----------------------------------------------------------------------------------------------------------


def test_suite_end_to_end(tmp_path, monkeypatch, tiny_backend):
    from longkit.eval.suite import SuiteConfig, run_suite

    hub = _offline_hub(tmp_path, monkeypatch)
    for task in ("icl_trec_coarse", "icl_nlu"):
        _publish(hub, task)
    local = tmp_path / "local"
    local.mkdir()
    (local / "train.jsonl").write_bytes((FIXTURES / "data" / "clinic150" / "train.jsonl").read_bytes())
    (local / "test.jsonl").write_bytes((FIXTURES / "data" / "clinic150" / "test.jsonl").read_bytes())
    out = tmp_path / "suite"
    opts = {"shots": 6, "max_test_samples": 4}
    cfg = SuiteConfig.model_validate(
        {
            "name": "helmet-icl",
            "models": [{"name": "tiny", "model": "unused"}],
            "lengths": [512, 1024],
            "samples": 3,
            "tasks": [
                {"name": "icl_trec_coarse", "options": opts},
                {"name": "icl_nlu", "options": opts},
                {"name": "icl_clinic150", "options": opts, "path": str(local)},
                {"name": "icl_banking77", "options": opts},  # not in the cache: skipped with the file it needs
            ],
            "out": str(out),
        }
    )
    rep = run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    tasks = rep["models"]["tiny"]["tasks"]
    assert set(tasks) == {"icl_trec_coarse", "icl_nlu", "icl_clinic150"}
    for name, entry in tasks.items():
        assert entry["benchmark"] == "HELMET" and entry["metric"] == "exact_match"
        assert entry["samples"] == 6 and set(entry["by_group"]) == {"512", "1024"}
        assert entry["official"]["scale"] == "x100"
        records = [json.loads(line) for line in (out / "tiny" / name / "results.jsonl").open()]
        for r in records:
            assert r["meta"]["shots"] == 6 and r["meta"]["length"] in (512, 1024)
            assert r["scores"]["score"] == icl.exact_match(r["prediction"], r["references"][0])
    reasons = {s["task"]: s["reason"] for s in rep["skipped"]}
    assert set(reasons) == {"icl_banking77"} and "PolyAI/banking77" in reasons["icl_banking77"]
    bad = cfg.model_copy(
        update={
            "tasks": [cfg.tasks[0].model_copy(update={"options": {"shot": 3}})],
            "out": str(tmp_path / "other"),
        }
    )
    with pytest.raises(ConfigError, match="unknown option 'shot'"):
        run_suite(bad, backends={"tiny": tiny_backend}, progress=False)
    assert not (tmp_path / "other").exists()
