"""Benchmark loaders on fixtures in each benchmark's official file format."""

from __future__ import annotations

from pathlib import Path

import pytest

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.tasks.registry import make_task, registry, resolve_name

FIX = Path(__file__).parent / "fixtures"
DATA = {"infinitebench": str(FIX / "infinitebench"), "longbench": str(FIX / "longbench"), "scrolls": str(FIX / "scrolls"),
        "lveval": str(FIX / "lveval"), "chatrag": str(FIX / "chatrag"), "squad": str(FIX / "squad_v2_dev.json"),
        "hotpotqa": str(FIX / "hotpotqa_dev.json")}


@pytest.fixture(scope="module")
def tok(trained_tokenizer):
    return TextTokenizer(trained_tokenizer)


def _samples(name, tok, window=8192, **kw):
    task = make_task(name, {"lengths": [1024], "data": DATA, "chat": False, **kw})
    return task, [task.build(spec, tok, window) for spec in task.plan()]


def _gold(task, sample):
    return task.score(sample.references[0], sample)["score"]


@pytest.mark.parametrize("name", ["En.QA", "En.MC", "En.Sum", "En.Dia", "qmsum", "qasper", "quality", "musique",
                                  "hotpotqa", "multifieldqa_en", "hotpotwikiqa_mixup", "factrecall_en", "doc2dial", "quac"])
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
    with pytest.raises(InputError, match=r"En.QA: .*HF_HUB_OFFLINE is set.*dataset xinrongzhang2022/InfiniteBench, "
                                         r"file longbook_qa_eng.jsonl.*`longkit eval fetch En.QA`"):
        make_task("En.QA", {"lengths": [1], "data": {}})
    with pytest.raises(InputError, match="none of longbook_sum_eng.jsonl found"):
        make_task("En.Sum", {"lengths": [1], "data": {"infinitebench": str(tmp_path)}})


def test_unknown_task_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown task 'niah_single_7'.*RULER: niah_single_1.*InfiniteBench:.*kv_retrieval"):
        resolve_name("niah_single_7")
    assert resolve_name("Retrieve.KV") == "kv_retrieval"
    names = set(registry())
    for n in ["niah_single_1", "niah_multikey_2", "vt", "cwe", "fwe", "qa_1", "qa_2", "kv_retrieval", "En.QA", "qmsum",
              "quality", "multifieldqa_en", "hotpotwikiqa_mixup", "doc2dial", "convfinqa", "niah", "passkey"]:
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
    docs = [("dmv", "Renewing a licence. You can renew your driving licence online if it expires within 60 days. "
                    "The renewal fee is 25 dollars and is paid by card. Offices open at 8 am on weekdays."),
            ("zoo", "The city zoo houses two elephants and a family of otters. Feeding time is at noon.")]
    index = open_or_create(tmp_path / "ix", emb, chunking_record(cfg, "embedder", "error"))
    index_documents(index, docs, emb, cfg)
    data = tmp_path / "doc2dial.json"
    data.write_text(json.dumps([{"messages": [{"role": "user", "content": "How much is the renewal fee?"}],
                                 "answers": ["25 dollars"], "document": "dmv"}]))
    task = make_task("doc2dial", {"lengths": [1], "path": str(data), "options": {"index": str(tmp_path / "ix"),
                                                                                  "num_ctx": 2}})
    [spec] = task.plan()
    s = task.build(spec, tok, 4096)
    assert "The renewal fee is 25 dollars" in s.prompt and "otters" not in s.prompt
    assert s.prompt.count("title: dmv, source:") >= 1
