"""HELMET's judged tasks (NarrativeQA, InfiniteBench En.Sum, Multi-LexSum): the judge prompts verbatim, the prompts of
fixture rows in the official file formats (a Hub-layout cache), the judge parsing and F1 combination on replies
written by hand, bad input, the no-judge refusal through the CLI, and a suite run with the tiny model as its judge."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from char_tokenizer import CharTokenizer
from hub_cache import hub_file

from longkit.backends.base import Completion
from longkit.errors import ConfigError, InputError
from longkit.eval.metrics import mean_of_judged
from longkit.eval.tasks import helmet_judge_prompts as P
from longkit.eval.tasks import helmet_judged as hj

# sha256 of each prompt as ast reads it from princeton-nlp/HELMET@4526dfbdc512bd9ff721da336bff4e3e75ecfd27
# scripts/eval_gpt4_longqa.py (judge_prompt) and scripts/eval_gpt4_summ.py (the other six)
PROMPT_SHA256 = {
    "LONGQA_JUDGE": "5e58473efe89277f4b60e33c4bc02f615fd0586df2130e648bc833eef855f46a",
    "FLUENCY_PROMPT": "1ae2a512ceda269aa9e72e315dc1abcda107f117461fdd7b62d2c20d086a5944",
    "FLUENCY_PROMPT_BOOK": "1cdd25fa4ef5982bbd528c1ff37fcedc5aeb79167ad1359d0cae5afab293bc82",
    "RECALL_PROMPT": "18fbb46816b4f27396742966b6ed10ca97cab895aa6b482d3972b687c180a3d4",
    "RECALL_PROMPT_BOOK": "2716154035020275c959dece28b02b8f098b9c1384d520d2e3efd1479169625e",
    "PRECISION_PROMPT": "977e320bea9a59567f5fbe23f74566d96940b946a23104c6d7d007e2989113af",
    "PRECISION_PROMPT_BOOK": "98f9964803fa36d0fe75169ea2d90cd3f9dc6ff0e79302941bdc3c8c3ea782dc",
}


class _RecordedJudge:
    """A judge backend that answers with recorded replies, keeping the prompts it was sent."""

    def __init__(self, replies: list[str]):
        self.replies, self.prompts = list(replies), []  # type: ignore[var-annotated]

    def generate(self, reqs: list[Any]) -> list[Completion]:
        self.prompts += [r.messages[0]["content"] for r in reqs]
        return [Completion(text=self.replies.pop(0)) for _ in reqs]


class _Spec:
    backend, model = "recorded", "gpt-4o-2024-05-13"

    def __init__(self, judge: _RecordedJudge):
        self.judge = judge

    def build(self) -> _RecordedJudge:
        return self.judge


# --- the judge prompts and their arithmetic --------------------------------------------------------------------------


def test_judge_prompts_are_verbatim():
    for name, digest in PROMPT_SHA256.items():
        assert hashlib.sha256(getattr(P, name).encode("utf-8")).hexdigest() == digest, name
    assert P.LONGQA_JUDGE.endswith(
        '{{"fluency": 0, "correctness": 1}}.\n\nQuestion: {question}\nCorrect answers: {correct_answers}\nAnswer: {parsed_output}\n'
    )
    assert P.PRECISION_PROMPT.endswith('Expert summary: "{expert_summary}"\n\nProvided summary: "{summary}"\n')
    assert P.PRECISION_PROMPT_BOOK.endswith("Provided summary: <start of summary>{summary}<end of summary>\n")
    assert "Ã" in P.FLUENCY_PROMPT  # the official example's mojibake is part of the prompt


def test_judge_prompts_for_a_row():
    out = "Answer: the North Pole\nmore"
    assert hj.longqa_parse_output(out) == "the North Pole more"  # eval_gpt4_longqa.py joins lines first
    p = hj.longqa_prompt("Where?", ["north pole", "the pole"], out)
    assert p.endswith("Question: Where?\nCorrect answers: ['north pole', 'the pole']\nAnswer: the North Pole more\n")
    fp, rp, pp = hj.summ_prompts(False, "  A summary.  ", ["kp one", "kp two"], "The long summary.")
    assert fp == P.FLUENCY_PROMPT.format(text="A summary.")
    assert rp.endswith('Key points:\n1. kp one\n2. kp two\n\nSummary: "A summary."\n')
    assert pp == P.PRECISION_PROMPT.format(expert_summary="The long summary.", summary="A summary.")
    book = hj.summ_prompts(True, "S", ["k"], "E")
    assert book[1] == P.RECALL_PROMPT_BOOK.format(keypoints="1. k", summary="S")


def test_parsing_and_f1_on_written_replies():
    # recall 3 of 4 key points, precision 6 of 8 sentences, fluent: f1 = 2 * .75 * .75 / 1.5 = 0.75
    replies = ['ok {"fluency": 1}', 'Reasoning... Output: {"recall": 3}', '{"precision": 6, "sentence_count": 8}']
    s = hj.summ_score(replies, 4)
    assert s == {"judged_ok": 1.0, "judge_fluency": 1.0, "judge_recall": 0.75, "judge_precision": 0.75, "judged": 0.75}
    # recall 1/2, precision 1/4: f1 = 2 * (1/8) / (3/4) = 1/3; a disfluent summary scores 0 whatever its F1
    assert hj.summ_score(['{"fluency": 1}', '{"recall": 1}', '{"precision": 1, "sentence_count": 4}'], 2)[
        "judged"
    ] == pytest.approx(1 / 3)
    assert (
        hj.summ_score(['{"fluency": 0}', '{"recall": 2}', '{"precision": 4, "sentence_count": 4}'], 2)["judged"] == 0.0
    )
    assert (
        hj.summ_score(['{"fluency": 1}', '{"recall": 0}', '{"precision": 0, "sentence_count": 0}'], 0)["judged"] == 0.0
    )
    # the ```json fallback when the last {...} is no JSON; an unusable reply leaves the sample out
    assert hj.summ_parse_json('```json\n{"recall": 2}\n``` and {not json}') == {"recall": 2}
    assert hj.summ_parse_json("so {not json}") is None
    assert hj.summ_parse_json('{"a": {"recall": 2}}') is None
    assert hj.summ_score(["no json", '{"recall": 1}', '{"precision": 1, "sentence_count": 1}'], 1) == {"judged_ok": 0.0}
    assert hj.summ_score(['{"fluency": "1"}', '{"recall": 1}', '{"precision": 1, "sentence_count": 1}'], 1) == {
        "judged_ok": 0.0
    }
    assert hj.longqa_score('Step by step... {"fluency": 1, "correctness": 2}')["judged"] == 2.0
    assert hj.longqa_score("[[7]]") == {"judged_ok": 0.0}
    # left out, not zero: (2/3 + 3/3) / 2 over the two judged samples
    recs = [{"score": 2 / 3, "judged_ok": 1.0}, {"score": 0.0, "judged_ok": 0.0}, {"score": 1.0, "judged_ok": 1.0}]
    assert mean_of_judged(recs) == pytest.approx(5 / 6)
    assert mean_of_judged([{"score": 0.0, "judged_ok": 0.0}]) != mean_of_judged(
        [{"score": 0.0, "judged_ok": 0.0}]
    )  # NaN
    assert mean_of_judged([{"score": 0.5}, {"score": 0.25}]) == 0.375  # no judge: the plain mean (rougeL_f1)


# --- fixtures in the official formats ----------------------------------------------------------------------------------


def _nqa_row(doc: str, text: str, q: str, answers: list[str]) -> dict[str, Any]:
    return {
        "document": {
            "id": doc,
            "kind": "gutenberg",
            "url": "u",
            "file_size": 1,
            "word_count": 1,
            "start": "s",
            "end": "e",
            "summary": {"text": "s", "tokens": [], "url": "u", "title": "t"},
            "text": text,
        },
        "question": {"text": q, "tokens": q.split()},
        "answers": [{"text": a, "tokens": a.split()} for a in answers],
    }


def _parquet(rows: list[dict[str, Any]], schema: Any = None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return buf.getvalue()


def _narrativeqa_hub(hub: Path, long_doc: str) -> list[dict[str, Any]]:
    import pyarrow as pa

    test = [
        _nqa_row("d1", long_doc, "Who sails?", ["Ahab", "the captain"]),
        _nqa_row("d2", "short story", "Who stays?", ["Ishmael"]),
        _nqa_row("d1", long_doc, "What whale?", ["white whale"]),
    ]
    train = [_nqa_row("t", "x", f"Train q{i}?", [f"a{i}", "other"]) for i in range(5)]
    schema = pa.Table.from_pylist(test).schema
    for i, f in enumerate(hj.NQA_TEST):
        hub_file(hub, hj.NQA_HUB, f, _parquet(test if i == 0 else [], schema))
    for i, f in enumerate(hj.NQA_TRAIN):
        hub_file(hub, hj.NQA_HUB, f, _parquet(train if i == 0 else [], schema))
    return test


def _offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "hub"


def _tar(members: dict[str, str]) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_narrativeqa_prompt_from_the_hub_layout(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    long_doc = "word " * 30000  # 150000 characters: over 131072 tokens for the character tokenizer
    test = _narrativeqa_hub(_offline(tmp_path, monkeypatch), long_doc)
    task = make_task("narrativeqa", {"lengths": [131072, 8192], "chat": False})
    assert isinstance(task, hj.HelmetJudgedTask)
    tok = CharTokenizer()
    s = task.build({"id": "131072-0", "length": 131072, "row": 0}, tok, 10**6)  # type: ignore[arg-type]
    # test.shuffle(seed=42) order, the short document filtered out
    order = [int(i) for i in np.random.default_rng(42).permutation(3)]
    first = [i for i in order if test[i]["document"]["id"] == "d1"][0]
    demos = [
        f"Question: Train q{k}?\nAnswer: a{k}" for k in np.random.default_rng([42, first]).choice(5, 2, replace=False)
    ]
    demo = "For example:\n\n" + "\n\n".join(demos) + "\n\nNow, use the following story to answer the question:\n\n"
    context = (
        long_doc[: 130772 - len(" ... [the rest of the text is omitted]") - 1]
        + " ... [the rest of the text is omitted]"
    )
    user = (
        "You are given a story, which can be either a novel or a movie script, and a question. Answer the question as concisely as you can, using a single phrase if possible.\n\n"
        f"{demo}{context}\n\nQuestion: {test[first]['question']['text']}"
    )
    # truncate_llama2 keeps 130772 tokens; the instructions and demonstrations then push the prompt over
    # input_max_length - generation_max_length, so model_utils.tokenize() cuts the context's tail further
    assert hj.truncate_context(long_doc, 130772, tok) == context  # type: ignore[arg-type]
    head, tail = user.split(context)
    assert s.prompt and s.prompt.startswith(head + "word word") and s.prompt.endswith(tail + "\nAnswer:")
    assert len(s.prompt) <= 131072 - 100 - 1 and s.meta["truncated_by_task"]
    wide = make_task("narrativeqa", {"lengths": [131072], "chat": False, "options": {"shots": 2}})
    s2 = wide.build({"id": "x", "length": 131072, "row": 0}, CharTokenizer(), 10**6)  # type: ignore[arg-type]
    assert s2.prompt == s.prompt
    assert s.max_new_tokens == 100 and s.references == [a["text"] for a in test[first]["answers"]]
    assert len(task.rows(tok)) == 2  # type: ignore[arg-type]
    with pytest.raises(InputError, match="only 2 rows pass"):
        task.build({"id": "x", "length": 8192, "row": 2}, tok, 10**6)  # type: ignore[arg-type]
    # without a judge: rougeL_f1 is the score, and the setup line says so
    assert task.score(" " + s.references[0], s)["score"] == 1.0 and "no judge configured" in task.describe()


def test_narrativeqa_judged_with_recorded_replies(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    _narrativeqa_hub(_offline(tmp_path, monkeypatch), "word " * 30000)
    judge = _RecordedJudge(['Reasoning. {"fluency": 1, "correctness": 3}'])
    task = make_task("narrativeqa", {"lengths": [8192], "judge": _Spec(judge)})
    s = task.build({"id": "8192-0", "length": 8192, "row": 0}, CharTokenizer(), 10**6)  # type: ignore[arg-type]
    scores = task.score("Answer: white whale", s)
    assert scores["score"] == 1.0 and scores["judged"] == 3.0 and scores["rougeL_f1"] == 1.0  # 3/3: x100 = 100
    assert judge.prompts == [
        P.LONGQA_JUDGE.format(question="What whale?", correct_answers=["white whale"], parsed_output="white whale")
    ]
    assert task.fingerprint()["judge"]["model"] == "recorded:gpt-4o-2024-05-13"


def _summ_data(root: Path) -> None:
    """A local copy: InfiniteBench's longbook_sum_eng.jsonl, Multi-LexSum's release files and HELMET's key points."""
    books = [
        {"id": i, "context": f"Book {i}. " * 50, "input": "", "answer": [f" Summary {i}. "], "options": []}
        for i in range(4)
    ]
    (root / "infbench").mkdir(parents=True)
    (root / "longbook_sum_eng.jsonl").write_text(_jsonl(books))
    (root / "infbench" / "longbook_sum_eng_keypoints.jsonl").write_text(
        _jsonl([{"id": i, "keypoints": [f"k{i}a", f"k{i}b"]} for i in range(4)])
    )
    rel = root / "releases" / "v20230518"
    rel.mkdir(parents=True)
    cases = [
        {
            "case_id": f"c{i}",
            "case_documents": [f"d{i}", "shared"],
            "summary/short": f"Short {i}." if i != 2 else None,
            "summary/long": f"Long {i}.",
        }
        for i in range(4)
    ]
    (rel / "dev.json").write_text(_jsonl(cases))
    (rel / "train.json").write_text(_jsonl([{**c, "summary/short": f"Train short {c['case_id']}."} for c in cases]))
    docs = {f"d{i}": {"doc_text": f"Document {i} " * (40 if i else 2)} for i in range(4)}
    (rel / "sources.json").write_text(json.dumps({**docs, "shared": {"doc_text": "Shared docket."}}))
    (root / "multi_lexsum").mkdir()
    (root / "multi_lexsum" / "multi_lexsum_val.jsonl").write_text(
        _jsonl([{"id": f"c{i}", "summary/short_keypoints": [f"p{i}"]} for i in range(4)])
    )


def test_summary_prompts_and_judged_f1(tmp_path):
    from longkit.eval.tasks.registry import make_task

    _summ_data(tmp_path)
    judge = _RecordedJudge(['{"fluency": 1}', '{"recall": 1}', '{"precision": 1, "sentence_count": 2}'])
    task = make_task("infbench_sum_eng", {"lengths": [8192], "path": str(tmp_path), "judge": _Spec(judge)})
    tok = CharTokenizer()
    s = task.build({"id": "8192-0", "length": 8192, "row": 0}, tok, 10**6)  # type: ignore[arg-type]
    first = int(np.random.default_rng(42).permutation(4)[0])  # shuffle(seed).select(range(100))
    others = [i for i in range(4) if i != first]
    demo_ids = [others[int(k)] for k in np.random.default_rng(42).permutation(3)[:2]]
    demo = (
        "For example:\n\n"
        + "\n\n".join(f"[story text]\nSummary: Summary {i}." for i in demo_ids)
        + "\n\nNow, read the following story:\n\n"
    )
    assert s.messages and s.messages[0]["content"] == hj.SUM_USER.format(demo=demo, context=f"Book {first}. " * 50)
    scores = task.score("A fluent summary. Two sentences.", s)
    # recall 1/2, precision 1/2: f1 0.5
    assert scores["score"] == 0.5 and scores["judge_recall"] == 0.5 and "rougeL_recall" in scores
    assert judge.prompts[2] == P.PRECISION_PROMPT_BOOK.format(
        expert_summary=f" Summary {first}. ", summary="A fluent summary. Two sentences."
    )

    lex = make_task(
        "multi_lexsum", {"lengths": [8192], "path": str(tmp_path), "judge": _Spec(_RecordedJudge([])), "chat": False}
    )
    # the loader keeps contexts of >= 65536 tokens only: none of the fixture's
    dev_rows = hj.read_multi_lexsum(
        tmp_path / "releases/v20230518/dev.json", tmp_path / "releases/v20230518/sources.json"
    )
    assert [r["id"] for r in dev_rows] == ["c0", "c1", "c3"]  # c2 has no summary/short
    assert dev_rows[1]["context"] == "Document 1 " * 40 + "\n\nShared docket."
    assert lex.rows(tok) == []  # type: ignore[arg-type]  # none reaches 65536 tokens


def test_multi_lexsum_prompt(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    _summ_data(tmp_path)
    monkeypatch.setattr(hj, "_over", lambda tok, text, n, strict: len(text) > 100)  # the fixture's long cases
    task = make_task(
        "multi_lexsum", {"lengths": [8192], "path": str(tmp_path), "judge": _Spec(_RecordedJudge([])), "chat": False}
    )
    s = task.build({"id": "8192-0", "length": 8192, "row": 0}, CharTokenizer(), 10**6)  # type: ignore[arg-type]
    pool = [f"Summary: Train short c{i}." for i in range(4)]
    demos = [pool[int(k)] for k in np.random.default_rng([42, 0]).choice(4, 2, replace=False)]
    demo = (
        "Example summaries:\n\n" + "\n\n".join(demos) + "\n\nNow, write a summary of the following legal documents.\n"
    )
    user = hj.LEX_USER.format(demo=demo, context="Document 1 " * 40 + "\n\nShared docket.")
    assert s.prompt == user + "\n\nSummary:" and s.meta["expert_summary"] == "Long 1." and s.meta["keypoints"] == ["p1"]


# --- bad input -------------------------------------------------------------------------------------------------------


def test_bad_schema_names_file_and_field(tmp_path):
    bad = tmp_path / "test.parquet"
    bad.write_bytes(_parquet([{"document": {"id": "d", "text": "t"}, "answers": [{"text": "a"}]}]))
    with pytest.raises(InputError, match=r"test.parquet:row 0: missing field 'question'$"):
        hj.read_narrativeqa([bad], True)
    kp = tmp_path / "kp.jsonl"
    kp.write_text(_jsonl([{"id": 1, "keypoints": "one string"}]))
    with pytest.raises(InputError, match=r"kp.jsonl:1: field 'keypoints': expected list, got str$"):
        hj.read_keypoints(kp, "keypoints", "id")
    dev = tmp_path / "dev.json"
    dev.write_text(_jsonl([{"case_id": "c", "summary/short": "s", "summary/long": "l", "case_documents": ["x"]}]))
    src = tmp_path / "sources.json"
    src.write_text(json.dumps({"y": {"doc_text": "t"}}))
    with pytest.raises(InputError, match=r"sources.json: document 'x': expected an object, got NoneType$"):
        hj.read_multi_lexsum(dev, src)


def test_summaries_refuse_to_run_without_a_judge(tmp_path, cli):
    from longkit.eval.tasks.registry import make_task

    with pytest.raises(ConfigError, match="no judge is configured; add `judge:"):
        make_task("multi_lexsum", {"lengths": [8192], "path": str(tmp_path)})
    config = tmp_path / "suite.yaml"
    config.write_text(
        json.dumps({"models": [{"model": "never-loaded"}], "tasks": ["infbench_sum_eng"], "out": str(tmp_path / "out")})
    )
    code, _, err = cli("eval", "suite", str(config), "--quiet")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "task infbench_sum_eng is scored by an LLM judge and no judge is configured; add `judge:`" in err
    assert not (tmp_path / "out").exists()


# --- end to end ------------------------------------------------------------------------------------------------------


def test_suite_with_the_tiny_model_as_judge(tmp_path, monkeypatch, tiny_backend, tiny_llama_dir):
    from longkit.eval.suite import SuiteConfig, run_suite

    hub = _offline(tmp_path, monkeypatch)
    _narrativeqa_hub(hub, "word " * 140000)  # over 131072 tokens for the SmolLM2 tokenizer
    out = tmp_path / "suite"
    cfg = SuiteConfig.model_validate(
        {
            "models": [{"name": "tiny", "model": "unused"}],
            "judge": {"backend": "hf", "model": str(tiny_llama_dir)},
            "lengths": [1024],
            "samples": 2,
            "tasks": [{"name": "narrativeqa", "options": {"judge_max_new_tokens": 8}}],
            "out": str(out),
        }
    )
    rep = run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    entry = rep["models"]["tiny"]["tasks"]["narrativeqa"]
    records = [json.loads(x) for x in (out / "tiny" / "narrativeqa" / "results.jsonl").open()]
    assert len(records) == 2
    for r in records:  # a random model's replies hold no JSON: left out of the judged mean, as HELMET does
        assert r["scores"]["judged_ok"] == 0.0 and "rougeL_f1" in r["scores"]
    assert entry["overall"] is None or entry["overall"] != entry["overall"] or entry["overall"] == 0.0
    run = json.loads((out / "tiny" / "narrativeqa" / "run.json").read_text())
    assert run["task"]["judge"]["model"] == f"hf:{tiny_llama_dir}"
