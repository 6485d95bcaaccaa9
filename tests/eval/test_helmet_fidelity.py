"""HELMET's recall, RAG and re-ranking tasks follow princeton-nlp/HELMET: the templates (copied in fixtures/helmet/,
see SOURCE there), the prompts data.py's loaders assemble (demonstrations, max_test_samples draw) on rows in the
official row format, the end-of-context truncation, answer budgets and newline stops of its configs, and the metrics
its post_process functions and pytrec_eval's NDCG@10 return; data read by name from a Hub-layout cache (the
data.tar.gz archive), bad rows, lengths and options refused in one line, and a suite run end to end."""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

import pytest
from hub_cache import hub_file  # tests/eval is on sys.path under pytest's rootdir rules

from longkit.errors import ConfigError, InputError
from longkit.eval.tasks import helmet as hm
from longkit.eval.tasks.base import Sample

FIXTURES = Path(__file__).parent / "fixtures" / "helmet"
DATA = FIXTURES / "data"
TEMPLATES = json.loads((FIXTURES / "official_templates.json").read_text(encoding="utf-8"))
EXPECTED = json.loads((FIXTURES / "expected_prompts.json").read_text(encoding="utf-8"))
METRICS = json.loads((FIXTURES / "official_metrics.json").read_text(encoding="utf-8"))

FILES = {  # dataset -> (length label, test file, demo file) of the fixture rows
    "ruler_niah_mk_2": ("8k", "ruler/niah_multikey_2/validation_8192.jsonl", None),
    "ruler_niah_mk_3": ("8k", "ruler/niah_multikey_3/validation_8192.jsonl", None),
    "ruler_niah_mv": ("8k", "ruler/niah_multivalue/validation_8192.jsonl", None),
    "json_kv": ("8k", "json_kv/test_k105_dep6.jsonl", None),
    "kilt_nq": ("8k", "kilt/nq-dev-multikilt_1000_k50_dep6.jsonl", "kilt/nq-train-multikilt_1000_k3_dep6.jsonl"),
    "kilt_popqa_3": ("8k", "kilt/popqa_test_1000_k50_dep6.jsonl", "kilt/popqa_test_1000_k3_dep6.jsonl"),
    "msmarco_rerank_psg": (
        "8k",
        "msmarco/test_reranking_data_k50_dep3.jsonl",
        "msmarco/test_reranking_data_k10_dep3.jsonl",
    ),
}
BIG = 10**6  # a window that never cuts


def _task(name: str, **kwargs) -> hm.HelmetTask:
    level, test, demo = FILES[name]
    return hm.HelmetTask(hm.VARIANTS[name], [(level, DATA / test)], DATA / demo if demo else None, **kwargs)


def _offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "longkit-cache"))
    return tmp_path / "hub"


def _archive(extra: dict[str, bytes] | None = None) -> bytes:
    """data.tar.gz as download_data.sh unpacks it: the data/ tree."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        files = {f"data/{p.relative_to(DATA).as_posix()}": p.read_bytes() for p in DATA.rglob("*.jsonl")}
        for name, data in {**files, **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# --- the official strings and settings -----------------------------------------------------------------------------


def test_templates_are_data_py():
    qa, kv, ruler, rr = (TEMPLATES[f] for f in ("load_qa", "load_json_kv", "load_ruler", "load_msmarco_rerank"))
    assert hm.QA_USER == qa["user_template"][1] and hm.QA_SYSTEM == qa["system_template"][0]  # [0] is nq_bad's
    assert hm.QA_DEMO == qa["demo_template"][0] and hm.QA_PASSAGE == qa["passage_template"][0]
    assert (hm.JSON_KV_USER, hm.JSON_KV_SYSTEM, hm.JSON_KV_DEMO) == (
        kv["user_template"][0],
        kv["system_template"][0],
        kv["demo_template"][0],
    )
    # load_ruler: [0] the generic default, [1] niah_mv/mq, [2] niah
    assert (hm.RULER_MV_USER, hm.RULER_MV_SYSTEM) == (ruler["user_template"][1], ruler["system_template"][1])
    assert (hm.RULER_NIAH_USER, hm.RULER_NIAH_SYSTEM) == (ruler["user_template"][2], ruler["system_template"][2])
    assert hm.RERANK_USER == rr["user_template"][0] and hm.RERANK_SYSTEM == rr["system_template"][0]
    assert [hm.RERANK_PASSAGE_TITLE, hm.RERANK_PASSAGE] == rr["passage_template"]
    assert "relelvant" in hm.RERANK_USER  # the typo stays


def test_declarations_follow_the_configs():
    from longkit.eval.tasks.registry import registry, resolve_name

    specs = {n: s for n, s in registry().items() if s.benchmark == "HELMET" and n in hm.VARIANTS}
    assert set(specs) == set(hm.VARIANTS)
    budgets = {n: s.answer_budget for n, s in specs.items()}
    assert budgets == {
        "ruler_niah_mk_2": 50,
        "ruler_niah_mk_3": 100,
        "ruler_niah_mv": 50,
        "json_kv": 100,
        "kilt_nq": 20,
        "kilt_triviaqa": 20,
        "kilt_hotpotqa": 20,
        "kilt_popqa_3": 20,
        "msmarco_rerank_psg": 200,
    }
    groups = {n: s.average_group for n, s in specs.items()}
    assert {n for n, g in groups.items() if g == "HELMET Recall"} == {
        "json_kv",
        "ruler_niah_mk_2",
        "ruler_niah_mk_3",
        "ruler_niah_mv",
    }
    assert {n for n, g in groups.items() if g == "HELMET RAG"} == {n for n in specs if n.startswith("kilt_")}
    assert specs["msmarco_rerank_psg"].metric.name == "NDCG@10" and groups["msmarco_rerank_psg"] == "HELMET Re-rank"
    for name, spec in specs.items():
        assert spec.metric.scale_label == "x100" and not spec.synthetic
        assert spec.official.repo == "princeton-nlp/HELMET" and spec.official.commit == hm.COMMIT
        assert spec.data is not None and (spec.data.repo, spec.data.file) == ("princeton-nlp/HELMET", "data.tar.gz")
        assert resolve_name(f"helmet_{name}") == name
    # the files of each length, as generate_configs.py's master_mapping names them
    assert hm.VARIANTS["json_kv"].test["128k"] == "json_kv/test_k1800_dep6.jsonl"
    assert hm.VARIANTS["kilt_hotpotqa"].test["8k"] == "kilt/hotpotqa-dev-multikilt_1000_k50_dep3.jsonl"
    assert hm.VARIANTS["kilt_nq"].test["128k"] == "kilt/nq-dev-multikilt_1000_k1000_dep6.jsonl"
    assert hm.VARIANTS["msmarco_rerank_psg"].test["32k"] == "msmarco/test_reranking_data_k285_dep3.jsonl"
    assert hm.VARIANTS["ruler_niah_mv"].test["64k"] == "ruler/niah_multivalue/validation_65536.jsonl"
    assert hm.VARIANTS["kilt_popqa_3"].demo == "kilt/popqa_test_1000_k3_dep6.jsonl"
    assert [v.stop_newline for v in hm.VARIANTS.values()] == [False] * 4 + [True] * 5


# --- prompt assembly -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [None, 2])
@pytest.mark.parametrize("name", list(FILES))
def test_prompts_are_the_official_loaders(name, n, tiny_backend):
    expected = [e for e in EXPECTED if e["dataset"] == name and e["max_test_samples"] == n]
    assert expected
    plain = _task(name, limit=n)
    chat = _task(name, limit=n, chat=True)
    plan = plain.plan()
    assert len(plan) == len(expected)
    for spec, exp in zip(plan, expected, strict=True):
        sample = plain.build(spec, tiny_backend.tokenizer, BIG)
        assert sample.prompt == exp["prompt"]
        assert sample.meta["prefix"] == exp["system"]  # prepended to the output before scoring
        answer = exp["answer"]
        assert sample.references == ([answer] if isinstance(answer, str) else answer)
        assert not sample.meta["truncated_by_task"]
        assert chat.build(spec, tiny_backend.tokenizer, BIG).messages == [{"role": "user", "content": exp["user"]}]


def test_budget_stops_and_no_chat_by_default(tiny_backend):
    for name, (level, _, _) in FILES.items():
        sample = _task(name).build(_task(name).plan()[0], tiny_backend.tokenizer, BIG)
        assert sample.max_new_tokens == hm.VARIANTS[name].budget and sample.prompt is not None
        assert sample.stop == (["\n", "\n\n"] if hm.VARIANTS[name].stop_newline else [])
        assert sample.meta["length"] == hm.LEVELS[level] and sample.meta["level"] == level
    assert _task("kilt_nq", chat=None).chat is False and _task("kilt_nq").describe() == ""
    assert "chat template" in _task("kilt_nq", chat=True).describe()
    assert "0 demonstrations" in _task("kilt_nq", options=hm.HelmetOptions(shots=0)).describe()
    assert _task("ruler_niah_mv", options=hm.HelmetOptions(shots=5)).shots == 0  # RULER takes no demos


def test_the_context_loses_its_end(tiny_backend):
    tok = tiny_backend.tokenizer
    task = _task("kilt_nq")
    full = task.build(task.plan()[0], tok, BIG)
    total = full.meta["input_tokens"]
    window = total - 10 + hm.VARIANTS["kilt_nq"].budget  # 10 tokens over input length - answer budget
    cut = task.build(task.plan()[0], tok, window)
    assert cut.meta["truncated_by_task"] and cut.meta["input_tokens"] == total
    assert cut.prompt is not None and full.prompt is not None
    # the instruction, demonstrations and question stay; the end of the passages goes
    head, tail = (
        full.prompt.split("Document (Title: Hey Jude)")[0],
        "\n\nQuestion: who wrote the song {hey} jude\nAnswer:",
    )
    assert cut.prompt.startswith(head) and cut.prompt.endswith(tail)
    assert "Let It Be is a 1970 album." in full.prompt and "Let It Be is a 1970 album." not in cut.prompt
    assert task._count(tok, cut.prompt) <= window - hm.VARIANTS["kilt_nq"].budget + 2


def test_draw_is_datasets_shuffle():
    datasets = pytest.importorskip("datasets")
    for n, seed in ((7, 42), (100, 42), (30, 123456789)):
        ds = datasets.Dataset.from_dict({"i": list(range(n))}).shuffle(seed=seed)
        assert hm.shuffled(n, seed) == ds["i"]


def test_popqa_filter_and_demo_exclusion():
    task = _task("kilt_popqa_3")
    assert [r["id"] for _, _, r in task.rows()] == [100, 102, 103]  # s_pop 5000 >= 10**3 goes
    assert all(d["s_pop"] < 1000 for d in task.demos())


# --- metrics -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", METRICS["post_process"], ids=lambda c: f"{c['dataset']}:{c['output'][:25]}")
def test_post_process_is_official(case):
    name = case["dataset"]
    answers = case["answer"]
    refs = [answers] if isinstance(answers, str) else answers
    sample = Sample("x", refs, prompt="p", meta={"prefix": ""})
    task = hm.HelmetTask(hm.VARIANTS[name], [("8k", DATA / FILES["ruler_niah_mv"][1])])
    assert task.score(case["output"], sample)["score"] == pytest.approx(case["official"])


@pytest.mark.parametrize("case", METRICS["rankings"], ids=lambda c: c["output"][:30])
def test_rankings_and_ndcg_are_pytrec_eval(case):
    parsed = hm.parse_rankings(case["output"])
    assert parsed == case["parsed"]
    assert hm.ndcg_at_k({k: float(v) for k, v in parsed.items()}, case["qrels"]) == pytest.approx(case["ndcg10"])


def test_ndcg_by_hand():
    qrels = {"10": 0, "11": 2, "12": 1, "13": 0, "14": 3}
    # ranking 11, 14, 12: DCG = 2/log2(2) + 3/log2(3) + 1/log2(4); ideal 3, 2, 1
    dcg = 2 + 3 / math.log2(3) + 1 / 2
    idcg = 3 + 2 / math.log2(3) + 1 / 2
    got = hm.ndcg_at_k(hm.parse_rankings("Ranking: ID11 > ID14 > [ID: 12] > 11"), qrels)
    assert got == pytest.approx(round(dcg / idcg, 5)) == pytest.approx(0.92249)
    # the cut at 10: a relevant passage ranked 11th counts nothing, but it is in the ideal
    ranked = {str(i): 20.0 - i for i in range(1, 12)}
    assert hm.ndcg_at_k(ranked, {"11": 1}) == 0.0
    assert hm.ndcg_at_k(ranked, {"1": 1, "11": 1}) == pytest.approx(round(1 / (1 + 1 / math.log2(3)), 5))


def test_normalize_and_parse_output_are_utils_py():
    for case in METRICS["normalize_answer"]:
        assert hm.normalize_answer(case["text"]) == case["normalized"]
    for case in METRICS["parse_output"]:
        assert hm.parse_output(case["output"], case["prefix"]) == case["parsed"]


def test_scores_through_the_task(tiny_backend):
    task = _task("msmarco_rerank_psg")
    sample = task.build(task.plan()[0], tiny_backend.tokenizer, BIG)
    assert sample.meta["qrels"] == {"10": 0, "11": 2, "12": 1, "13": 0, "14": 3}
    # no chat: "Ranking:" is prepended, so a bare list scores as HELMET scores it
    assert task.score(" 14 > 11 > 12 > 10 > 13", sample) == {"score": 1.0, "num_preds": 5}
    kv = _task("json_kv")
    s = kv.build(kv.plan()[0], tiny_backend.tokenizer, BIG)
    assert kv.score(" k03-vvvv", s)["score"] == 1.0 and kv.score(" k03 vvvv", s)["score"] == 0.0
    mv = _task("ruler_niah_mv")
    s = mv.build(mv.plan()[0], tiny_backend.tokenizer, BIG)
    assert mv.score(" 111, 222 and 444.", s)["score"] == 0.75


# --- lengths, data by name, bad input ------------------------------------------------------------------------------


def test_lengths_map_to_helmet_labels():
    assert hm.choose_levels("kilt_nq", {"lengths": [8192, 131072]}) == ["8k", "128k"]
    assert hm.choose_levels("kilt_nq", {"levels": ["16k"], "lengths": [8192]}) == ["16k"]
    with pytest.raises(ConfigError) as err:
        hm.choose_levels("kilt_nq", {"lengths": [8000]})
    assert "\n" not in str(err.value) and "length 8000 is none of them" in str(err.value)
    with pytest.raises(ConfigError, match=r"^json_kv: HELMET runs json_kv at 4k, .*length 256k is not one of them$"):
        hm.choose_levels("json_kv", {"levels": ["256k"]})


def test_data_by_name_from_the_hub_cache(tmp_path, monkeypatch, tiny_backend):
    from longkit.eval.fetch import fetch
    from longkit.eval.tasks.registry import make_task

    hub = _offline_hub(tmp_path, monkeypatch)
    hub_file(hub, "princeton-nlp/HELMET", "data.tar.gz", _archive())
    settings = {"lengths": [8192], "data": {}, "options": {}, "chat": False}
    task = make_task("kilt_nq", settings)
    assert [s["id"] for s in task.plan()] == ["8k-1", "8k-2", "8k-3"]
    sample = task.build(task.plan()[0], tiny_backend.tokenizer, BIG)
    assert sample.prompt == next(e["prompt"] for e in EXPECTED if e["dataset"] == "kilt_nq" and e["i"] == 0)
    assert str(tmp_path / "longkit-cache") in str(task.files[0][1])  # type: ignore[attr-defined]
    # `eval fetch` reads the 8k file, kept as a JSON array in longkit's cache; one absent from the archive is one line
    rows = json.loads(fetch("kilt_nq").read_text())
    assert rows == [json.loads(line) for line in (DATA / FILES["kilt_nq"][1]).read_text().splitlines()]
    with pytest.raises(InputError) as err:
        fetch("kilt_hotpotqa")
    assert "\n" not in str(err.value)
    assert "data/kilt/hotpotqa-dev-multikilt_1000_k50_dep3.jsonl not found" in str(err.value)
    # a local copy of the unpacked data/ directory (or its parent) wins
    local = make_task("msmarco_rerank_psg", {**settings, "data": {"helmet": str(FIXTURES)}})
    assert local.files[0][1] == DATA / FILES["msmarco_rerank_psg"][1]  # type: ignore[attr-defined]


def test_bad_rows_name_file_and_line(tmp_path):
    good = (DATA / FILES["kilt_nq"][1]).read_text().splitlines()[0]
    bad = tmp_path / "nq.jsonl"

    def refused(name: str, content: str) -> str:
        bad.write_text(content)
        task = hm.HelmetTask(hm.VARIANTS[name], [("8k", bad)], options=hm.HelmetOptions(shots=0))
        with pytest.raises(InputError) as err:
            task.plan()
        assert "\n" not in str(err.value)
        return str(err.value)

    row = json.loads(good)
    assert refused("kilt_nq", good + "\n" + json.dumps({"question": "q", "ctxs": []})) == (
        f"{bad}:2: missing field 'answers'"
    )
    assert (
        refused("kilt_nq", json.dumps({**row, "ctxs": [{"title": "t"}]})) == f"{bad}:1: field 'ctxs[0].text': missing"
    )
    assert refused("kilt_nq", json.dumps({**row, "answers": "Paris"})) == (
        f"{bad}:1: field 'answers': expected a non-empty list"
    )
    assert refused("kilt_nq", good + "\n{oops").startswith(f"{bad}:2: invalid JSON")
    assert refused("kilt_popqa_3", good) == f"{bad}:1: missing field 's_pop'"
    assert refused("ruler_niah_mv", json.dumps({"context": "c", "query": "q", "type_needle_v": "n"})) == (
        f"{bad}:1: missing field 'outputs'"
    )
    assert refused(
        "msmarco_rerank_psg", json.dumps({"qid": "1", "query": "q", "ctxs": [{"id": "1", "text": "t"}]})
    ) == (f"{bad}:1: field 'ctxs[0].label': missing")
    assert refused("json_kv", "") == f"{bad}: no samples"


def test_unknown_or_mistyped_options_are_refused():
    from longkit.eval.tasks.registry import check_options

    with pytest.raises(
        ConfigError, match=r"^task kilt_nq: options: unknown option 'demos' \(this task accepts: shots\)$"
    ):
        check_options("kilt_nq", {"demos": 2})
    with pytest.raises(ConfigError, match=r"^task json_kv: options: .*shots"):
        check_options("helmet_json_kv", {"shots": "two"})
    check_options("msmarco_rerank_psg", {"shots": 0})


# --- the suite -----------------------------------------------------------------------------------------------------


def test_suite_end_to_end_with_data_by_name(tmp_path, monkeypatch, tiny_backend):
    from longkit.eval.suite import SuiteConfig, run_suite

    hub = _offline_hub(tmp_path, monkeypatch)
    hub_file(hub, "princeton-nlp/HELMET", "data.tar.gz", _archive())
    out = tmp_path / "suite"
    cfg = SuiteConfig.model_validate(
        {
            "name": "helmet",
            "models": [{"name": "tiny", "model": "unused"}],
            "lengths": [8192],
            "samples": 2,
            "tasks": [
                "ruler_niah_mv",
                {"name": "ruler_niah_mk_2", "levels": ["8k"]},
                "json_kv",
                "kilt_nq",
                "helmet_msmarco_rerank_psg",
                "kilt_triviaqa",
            ],
            "out": str(out),
        }
    )
    rep = run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    tasks = rep["models"]["tiny"]["tasks"]
    assert set(tasks) == {"ruler_niah_mv", "ruler_niah_mk_2", "json_kv", "kilt_nq", "msmarco_rerank_psg"}
    assert tasks["ruler_niah_mv"]["samples"] == 1 and tasks["kilt_nq"]["samples"] == 2
    for name, entry in tasks.items():
        assert entry["benchmark"] == "HELMET" and entry["official"]["scale"] == "x100"
        assert entry["metric"] == hm.VARIANTS[name].metric
        assert entry["official"]["score"] == pytest.approx(100 * entry["overall"], abs=0.01)
    assert set(tasks["kilt_nq"]["by_group"]) == {"8192"}
    averages = {k: v for k, v in rep["models"]["tiny"].items() if k.endswith("_average")}
    assert averages["helmet_recall_average"]["tasks"] == 3 and averages["helmet_rag_average"]["tasks"] == 1
    reasons = {s["task"]: s["reason"] for s in rep["skipped"]}
    assert (
        set(reasons) == {"kilt_triviaqa"} and "triviaqa-dev-multikilt_1000_k50_dep6.jsonl" in reasons["kilt_triviaqa"]
    )
    records = [json.loads(line) for line in (out / "tiny" / "msmarco_rerank_psg" / "results.jsonl").open()]
    for r in records:  # the stored score is NDCG@10 of "Ranking:" + the stored answer
        ranking = hm.parse_rankings("Ranking:" + r["prediction"])
        expected = hm.ndcg_at_k({k: float(v) for k, v in ranking.items()}, r["meta"]["qrels"])
        assert r["scores"]["score"] == pytest.approx(expected)
    bad = cfg.model_copy(
        update={"tasks": [cfg.tasks[2].model_copy(update={"options": {"shot": 1}})], "out": str(tmp_path / "x")}
    )
    with pytest.raises(ConfigError, match="options"):
        run_suite(bad, backends={"tiny": tiny_backend}, progress=False)
    assert not (tmp_path / "x").exists()
