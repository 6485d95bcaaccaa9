"""Benchmark loaders on fixtures in each benchmark's official file format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_cache import REV, hub_file  # tests/eval is on sys.path under pytest's rootdir rules

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.tasks.registry import make_task, registry, resolve_name

FIX = Path(__file__).parent / "fixtures"
DATA = {
    "infinitebench": str(FIX / "infinitebench"),
    "longbench": str(FIX / "longbench"),
    "scrolls": str(FIX / "scrolls"),
    "lveval": str(FIX / "lveval"),
    "chatrag": str(FIX / "chatrag"),
    "squad": str(FIX / "squad_v2_dev.json"),
    "hotpotqa": str(FIX / "hotpotqa_dev.json"),
}


@pytest.fixture(scope="module")
def tok(trained_tokenizer):
    return TextTokenizer(trained_tokenizer)


def _samples(name, tok, window=8192, **kw):
    task = make_task(name, {"lengths": [1024], "data": DATA, "chat": False, **kw})
    return task, [task.build(spec, tok, window) for spec in task.plan()]


def _gold(task, sample):
    return task.score(sample.references[0], sample)["score"]


@pytest.mark.parametrize(
    "name",
    [
        "En.QA",
        "En.MC",
        "En.Sum",
        "En.Dia",
        "qmsum",
        "qasper",
        "quality",
        "musique",
        "hotpotqa",
        "multifieldqa_en",
        "hotpotwikiqa_mixup",
        "factrecall_en",
        "doc2dial",
        "quac",
    ],
)
def test_file_tasks_load_prompt_and_score_the_gold_answer(name, tok):
    task, samples = _samples(name, tok)
    assert samples
    for s in samples:
        text = s.prompt
        assert text and s.references
        if name == "En.MC":
            assert "A. oak\nB. silver birch" in text and s.references == ["silver birch", "B"]
            assert task.score("B", s)["score"] == 1.0 and task.score("A", s)["score"] == 0.0
        elif name == "quality":
            assert s.meta["letters"] == ["B"]
            # SCROLLS's exact match is the reported score; the bare letter counts only in the named lenient score
            assert task.score("(B) Ada Reyes", s)["score"] == 0.0 and task.score("(B) Ada Reyes", s)["lenient"] == 1.0
            assert task.score("Tom Reyes", s)["score"] == 0.0 and task.score("Tom Reyes", s)["lenient"] == 0.0
        elif name == "En.Dia":
            assert task.score("It is John.", s)["score"] == 1.0
        else:
            assert _gold(task, s) == pytest.approx(1.0), (name, s.references)


def test_prompts_follow_official_templates(tok):
    _, [s] = _samples("hotpotqa", tok)
    assert s.prompt.startswith("Answer the question based on the given passages.") and s.prompt.endswith("\nAnswer:")
    assert s.max_new_tokens == 32
    _, [s, _] = _samples("En.QA", tok)
    assert s.prompt.startswith("Read the book below and answer a question.") and s.prompt.endswith("Be very concise.")
    assert s.max_new_tokens == 40
    _, [s] = _samples("qmsum", tok)
    assert len(s.references) == 2  # SCROLLS duplicates merged into one sample
    _, [s] = _samples("doc2dial", tok)
    assert s.prompt.startswith("System: This is a chat between a user and an artificial intelligence assistant.")
    assert "User: Please give a full and complete answer for the question. Can I renew online?" in s.prompt
    assert "sixth chunk" not in s.prompt and "title: DMV tests" in s.prompt  # top-5 contexts
    assert s.prompt.endswith("User: How much does it cost?\n\nAssistant:")


def test_lveval_levels_and_gate(tok):
    task, samples = _samples("hotpotwikiqa_mixup", tok)
    assert sorted(s.meta["length"] for s in samples) == [16384, 32768]
    s = samples[0]
    # keywords [indian, ocean]: 'ocean' alone passes the 20% gate; F1 [answer,is,atlantic,ocean] vs [indian,ocean] = 1/3
    assert task.score("The answer is the Atlantic Ocean", s)["score"] == pytest.approx(1 / 3)
    assert task.score("The Atlantic", s)["score"] == 0.0  # no keyword: gated to 0
    assert task.score("It is the Indian Ocean, yes", s)["score"] == pytest.approx(4 / 7)  # P=2/5, R=1


def test_middle_truncation_to_the_window(tok):
    task, [s, _] = _samples("En.QA", tok, window=256)
    assert s.meta["truncated_by_task"] and tok.count(s.prompt) + s.max_new_tokens <= 256
    assert s.prompt.startswith("Read the book below") and s.prompt.endswith("Be very concise.")


def test_chatqa2_set_defaults_to_32k(tok):
    task, _ = _samples("musique", tok)
    assert task.max_length == 32768


def test_quac_unanswerable_refusal_scores(tok):
    task, samples = _samples("quac", tok)
    unans = [s for s in samples if s.meta["unanswerable"]][0]
    assert task.score("I'm sorry, the text does not mention it.", unans)["score"] == 1.0


def test_schema_errors_name_file_line_and_field(tok, tmp_path, monkeypatch):
    task = make_task("En.QA", {"lengths": [1], "data": {"infinitebench": str(FIX / "bad")}})
    with pytest.raises(InputError, match=r"bad/longbook_qa_eng.jsonl:2: missing field 'answer'"):
        task.plan()
    task = make_task("doc2dial", {"lengths": [1], "path": str(FIX / "bad" / "chatrag_missing_answers.json")})
    with pytest.raises(InputError, match=r"chatrag_missing_answers.json: item 0: missing field 'answers'"):
        task.plan()
    # no local copy and nothing in the (empty) hub cache offline: one line naming repo, file and the fetch command
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(
        InputError,
        match=r"En.QA: .*HF_HUB_OFFLINE is set.*dataset xinrongzhang2022/InfiniteBench, "
        r"file longbook_qa_eng.jsonl.*`longkit eval fetch En.QA`",
    ):
        make_task("En.QA", {"lengths": [1], "data": {}})
    with pytest.raises(InputError, match="none of longbook_sum_eng.jsonl found"):
        make_task("En.Sum", {"lengths": [1], "data": {"infinitebench": str(tmp_path)}})


def test_unknown_task_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown task 'niah_single_7' \(known tasks: ") as err:
        resolve_name("niah_single_7")
    assert "RULER: niah_single_1" in str(err.value) and "InfiniteBench: Retrieve.PassKey" in str(err.value)
    assert resolve_name("Retrieve.KV") == "kv_retrieval"
    names = set(registry())
    for n in [
        "niah_single_1",
        "niah_multikey_2",
        "vt",
        "cwe",
        "fwe",
        "qa_1",
        "qa_2",
        "kv_retrieval",
        "En.QA",
        "qmsum",
        "quality",
        "multifieldqa_en",
        "hotpotwikiqa_mixup",
        "doc2dial",
        "convfinqa",
        "niah",
        "passkey",
    ]:
        assert n in names


@pytest.mark.parametrize("kind", ["Retrieve.PassKey", "number_string", "kv_retrieval"])
def test_infinitebench_retrieval_generated_to_length(kind, tok):
    task = make_task(kind, {"lengths": [1024], "samples": 3, "chat": False})
    samples = [task.build(s, tok, 4096) for s in task.plan()]
    for s in samples:
        assert s.meta["actual_length"] <= 1024 and s.meta["actual_length"] > 900
        assert s.references[0] in s.prompt
        assert task.score(s.references[0], s)["score"] == 1.0
    depths = [s.meta["depth"] for s in samples]
    assert depths == [0.0, 50.0, 100.0]
    body = samples[0].prompt
    assert body.index(samples[0].references[0]) < len(body) * 0.3  # depth 0 near the start


@pytest.mark.slow
def test_chatrag_long_document_contexts_retrieved_through_rag_pipeline(tok, tmp_path):
    """With an index, the top chunks come from longkit.rag (the documents' own text), not from 'ctxs'."""
    import json

    from longkit.rag.build import chunking_record, index_documents, open_or_create
    from longkit.rag.chunk import ChunkConfig
    from longkit.rag.embed import load_embedder

    emb = load_embedder("all-minilm-l6-v2")
    cfg = ChunkConfig(size=40, overlap=0)
    docs = [
        (
            "dmv",
            "Renewing a licence. You can renew your driving licence online if it expires within 60 days. "
            "The renewal fee is 25 dollars and is paid by card. Offices open at 8 am on weekdays.",
        ),
        ("zoo", "The city zoo houses two elephants and a family of otters. Feeding time is at noon."),
    ]
    index = open_or_create(tmp_path / "ix", emb, chunking_record(cfg, "embedder", "error"))
    index_documents(index, docs, emb, cfg)
    data = tmp_path / "doc2dial.json"
    data.write_text(
        json.dumps(
            [
                {
                    "messages": [{"role": "user", "content": "How much is the renewal fee?"}],
                    "answers": ["25 dollars"],
                    "document": "dmv",
                }
            ]
        )
    )
    task = make_task(
        "doc2dial", {"lengths": [1], "path": str(data), "options": {"index": str(tmp_path / "ix"), "num_ctx": 2}}
    )
    [spec] = task.plan()
    s = task.build(spec, tok, 4096)
    assert "The renewal fee is 25 dollars" in s.prompt and "otters" not in s.prompt
    assert s.prompt.count("title: dmv, source:") >= 1


# ---------------------------------------------------------------------------------------------------
# ChatRAG Bench layout and prompts (ChatQA evaluation/dataset.py and get_scores.py, issue 12 items 2 and 14)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["topiocqa", "sqa", "coqa"])
def test_chatrag_instruction_on_the_last_user_turn(name, tok):
    from longkit.eval.tasks.chatrag import INSTRUCTIONS

    _, [s] = _samples(name, tok, path=str(FIX / "chatrag" / "coqa" / "dev.json"))
    assert f"User: Who wrote the letter?\n\nAssistant: Anna\n\nUser: {INSTRUCTIONS[name]}To whom?" in s.prompt


def test_chatrag_official_doqa_layout_and_left_out_turns(tok):
    # DATA points at the ChatRAG directory; doqa_cooking is found as doqa/test_cooking.json (the official layout)
    task, samples = _samples("doqa_cooking", tok)
    assert task.path.as_posix().endswith("chatrag/doqa/test_cooking.json")
    assert len(samples) == 2  # the third item has only empty answers: left out, not scored 0
    assert "User: Please give a full and complete answer for the question. How long" in samples[0].prompt


def test_convfinqa_instruction_and_executed_gold(tok):
    from longkit.eval.tasks.chatrag import LONG_ANSWER

    task, [s, t] = _samples("convfinqa", tok)
    assert f"User: {LONG_ANSWER}what was the net change" in s.prompt  # the long-answer instruction, first user turn
    assert s.references == ["20.0"] and s.meta["formula"] == "subtract(120, 100)"
    assert task.score("The net change was 20 million.", s)["score"] == 1.0
    assert task.score("It changed by -10.0 percent", t)["score"] == 1.0
    assert task.score("It was 100", s)["score"] == 0.0


# ---------------------------------------------------------------------------------------------------
# Official truncation budgets (issue 12 item 6)
# ---------------------------------------------------------------------------------------------------


def test_official_truncation_budgets(tok):
    from longkit.eval.tasks.infinitebench import TRUNCATE_LEN
    from longkit.eval.tasks.longbench import LONGBENCH_32K_BUDGET

    assert TRUNCATE_LEN == 128 * 1024 and LONGBENCH_32K_BUDGET == 31500
    task, [s] = _samples("musique", tok)
    assert task.budget == 31500 and s.meta["budget"] == "window"  # an 8K window cannot hold 31,500 tokens
    assert make_task("En.QA", {"lengths": [1], "data": DATA}).budget == 128 * 1024
    assert make_task("qmsum", {"lengths": [1], "data": DATA}).budget is None  # SCROLLS defines no budget
    # the budget cuts the prompt text itself (before any chat template), independent of the answer room
    task, [s, _] = _samples("En.QA", tok, budget=120)
    assert s.meta["budget"] == "official" and s.meta["truncated_by_task"] and tok.count(s.prompt) <= 121
    assert make_task("En.QA", {"lengths": [1], "data": DATA, "budget": 0}).budget is None  # 0: fit the window


# ---------------------------------------------------------------------------------------------------
# Benchmark data by name from a Hugging Face hub cache (HF_HUB_OFFLINE=1, HF_HUB_CACHE in a tmp dir)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "longkit"))
    return tmp_path / "hub"


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_tasks_resolve_official_data_from_the_hub_cache(hub, tok):
    ib = (FIX / "infinitebench" / "longbook_qa_eng.jsonl").read_bytes()
    link = hub_file(hub, "xinrongzhang2022/InfiniteBench", "longbook_qa_eng.jsonl", ib)
    task = make_task("En.QA", {"lengths": [1]})  # no data path: resolved by name
    assert task.path == link and len(task.plan()) == 2
    # LongBench ships data.zip (data/<dataset>.jsonl); the archive stays in the hub cache, unpacked once
    hub_file(
        hub,
        "THUDM/LongBench",
        "data.zip",
        _zip({"data/musique.jsonl": (FIX / "longbench" / "musique.jsonl").read_bytes()}),
    )
    task = make_task("musique", {"lengths": [1], "chat": False})
    assert task.path.as_posix().endswith(f"THUDM--LongBench/{REV}/data/data/musique.jsonl")
    assert task.build(task.plan()[0], tok, 8192).prompt.startswith("Answer the question based on the given passages.")
    # SCROLLS: <name>.zip holding <name>/validation.jsonl
    hub_file(
        hub,
        "tau/scrolls",
        "qmsum.zip",
        _zip({"qmsum/validation.jsonl": (FIX / "scrolls" / "qmsum.jsonl").read_bytes()}),
    )
    assert len(make_task("qmsum", {"lengths": [1]}).plan()) == 1
    # LV-Eval: one zip per dataset; the task reads the unpacked directory
    hub_file(
        hub,
        "Infinigence/LVEval",
        "factrecall_en.zip",
        _zip(
            {
                f"factrecall_en/factrecall_en_{lv}.jsonl": (FIX / "lveval" / f"factrecall_en_{lv}.jsonl").read_bytes()
                for lv in ("16k", "32k")
            }
        ),
    )
    assert len(make_task("factrecall_en", {"lengths": [1], "levels": ["16k", "32k"]}).plan()) == 2
    # ChatRAG Bench: data/<dataset>/<split>.json, DoQA as doqa/test_<domain>.json
    hub_file(
        hub,
        "nvidia/ChatRAG-Bench",
        "data/doqa/test_cooking.json",
        (FIX / "chatrag" / "doqa" / "test_cooking.json").read_bytes(),
    )
    assert len(make_task("doqa_cooking", {"lengths": [1]}).plan()) == 2


def test_squad_and_hotpotqa_rebuilt_from_hub_parquet(hub):
    """The Hub's Parquet rows give back the original JSON layouts that RULER's readers take, in file order."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from longkit.eval.fetch import fetch
    from longkit.eval.tasks.ruler import read_hotpotqa, read_squad

    squad = json.loads((FIX / "squad_v2_dev.json").read_text())
    rows = [
        {
            "id": q["id"],
            "title": d["title"],
            "context": p["context"],
            "question": q["question"],
            "answers": {
                "text": [a["text"] for a in q["answers"]],
                "answer_start": [a["answer_start"] for a in q["answers"]],
            },
        }
        for d in squad["data"]
        for p in d["paragraphs"]
        for q in p["qas"]
    ]
    path = hub / "squad.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    hub_file(hub, "rajpurkar/squad_v2", "squad_v2/validation-00000-of-00001.parquet", path.read_bytes())
    # Parquet has one row per question, so paragraphs without questions (only in this fixture; every paragraph of
    # dev-v2.0.json has some) cannot come back: compare with the fixture without them
    for d in squad["data"]:
        d["paragraphs"] = [p for p in d["paragraphs"] if p["qas"]]
    (hub / "squad_with_questions.json").write_text(json.dumps(squad))
    assert read_squad(fetch("qa_1")) == read_squad(hub / "squad_with_questions.json")

    hot = json.loads((FIX / "hotpotqa_dev.json").read_text())
    rows = [
        {
            "id": d["_id"],
            "question": d["question"],
            "answer": d["answer"],
            "type": d["type"],
            "level": d["level"],
            "supporting_facts": {
                "title": [t for t, _ in d["supporting_facts"]],
                "sent_id": [i for _, i in d["supporting_facts"]],
            },
            "context": {"title": [t for t, _ in d["context"]], "sentences": [s for _, s in d["context"]]},
        }
        for d in hot
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    hub_file(hub, "hotpotqa/hotpot_qa", "distractor/validation-00000-of-00001.parquet", path.read_bytes())
    assert read_hotpotqa(fetch("qa_2")) == read_hotpotqa(FIX / "hotpotqa_dev.json")
    assert make_task("qa_2", {"lengths": [1024]}).config.hotpotqa == str(fetch("qa_2"))


def test_cli_fetch_offline(hub):
    from typer.testing import CliRunner

    from longkit.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["eval", "fetch", "En.MC"])
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line and "xinrongzhang2022/InfiniteBench" in line and "longbook_choice_eng.jsonl" in line
    assert "longkit eval fetch En.MC" in line
    hub_file(
        hub,
        "xinrongzhang2022/InfiniteBench",
        "longbook_choice_eng.jsonl",
        (FIX / "infinitebench" / "longbook_choice_eng.jsonl").read_bytes(),
    )
    res = runner.invoke(app, ["eval", "fetch", "longbook_choice_eng"])
    assert res.exit_code == 0 and f"snapshots/{REV}/longbook_choice_eng.jsonl" in res.output
    res = runner.invoke(app, ["eval", "fetch", "niah_single_1"])
    assert res.exit_code == 2 and "generated" in res.output
    res = runner.invoke(app, ["eval", "list", "--json", "--benchmark", "InfiniteBench"])
    data = {t["name"]: t["data"] for t in json.loads(res.output)}
    assert data["En.MC"] == "hf:xinrongzhang2022/InfiniteBench/longbook_choice_eng.jsonl"
    assert data["kv_retrieval"] == "generated"
