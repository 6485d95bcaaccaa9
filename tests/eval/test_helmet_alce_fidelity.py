"""HELMET's citation tasks (ALCE ASQA, QAMPARI): the demo files verbatim, the prompt of fixture rows in the official
format (a Hub-layout cache holding data.tar.gz), str_em and QAMPARI recall@5 by hand, eval_alce.py's citation recall
and precision on recorded NLI replies, HELMET's Cite column, bad input, and suite runs with the tiny model."""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import re
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from char_tokenizer import CharTokenizer
from hub_cache import hub_file

from longkit.backends.base import Completion
from longkit.errors import ConfigError, InputError
from longkit.eval.metrics import helmet_cite
from longkit.eval.tasks import helmet_alce as ha

# sha256 of princeton-nlp/HELMET@4526dfbdc512bd9ff721da336bff4e3e75ecfd27 prompts/asqa_revised.json, qampari_revised.json
DEMO_SHA256 = {
    "ASQA_REVISED": "99ebb9d7371895dc352a7f9135ef9e84c3757a9d9d4ce2091b4e2b1d7c39299c",
    "QAMPARI_REVISED": "d73e184ec6d9fd6ba821ea1e537d2dec96be602aa693706862acc1b3d9586104",
}


class _ChunkTokenizer(CharTokenizer):
    """Four characters a token, so that a fixture's demonstrations fit in 8192 tokens."""

    def __init__(self) -> None:
        self.vocab: list[str] = []

    def encode(self, text: str) -> list[int]:
        start = len(self.vocab)
        self.vocab += [text[i : i + 4] for i in range(0, len(text), 4)]
        return list(range(start, len(self.vocab)))

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i] for i in ids)

    def count(self, text: str) -> int:
        return -(-len(text) // 4)

    def render_messages(self, messages: list[dict[str, str]]) -> str:
        return "".join(m["content"] for m in messages)


class _NliServer:
    """A judge backend answering TRUE inputs from a table ("1" for the entailed ones), keeping what it was sent."""

    def __init__(self, entailed: set[str]):
        self.entailed, self.requests = entailed, []  # type: ignore[var-annotated]

    def generate(self, reqs: list[Any]) -> list[Completion]:
        self.requests += reqs
        texts = [r.prompt if r.prompt is not None else r.messages[0]["content"] for r in reqs]
        return [Completion(text="1" if t in self.entailed else "0") for t in texts]


class _Spec:
    backend, model = "recorded", "t5_xxl_true_nli_mixture"

    def __init__(self, server: _NliServer):
        self.server = server

    def build(self) -> _NliServer:
        return self.server


def _regex_sentences(text: str) -> list[str]:
    """Stands in for NLTK's Punkt in tests (its data is a separate download): split after . ! ? and a space."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


# --- fixtures in the official format ---------------------------------------------------------------------------------


def _docs(tag: str, n: int, size: int = 20) -> list[dict[str, Any]]:
    return [
        {"id": f"{tag}{j}", "title": f"T{tag}{j}", "text": f"text {tag}{j} " + "x" * size, "score": 1.0}
        for j in range(n)
    ]


def _asqa_rows() -> list[dict[str, Any]]:
    return [
        {
            "question": f"Question {i}?",
            "answer": f"Long answer {i}.",
            "docs": _docs(f"a{i}-", 40),
            "qa_pairs": [{"question": "q", "short_answers": [f"ans{i}"], "context": "c", "wikipage": "w"}],
            "sample_id": f"s{i}",
        }
        for i in range(3)
    ]


def _qampari_rows() -> list[dict[str, Any]]:
    return [
        {
            "id": f"q{i}",
            "question": f"List {i}?",
            "answers": [[f"a{i}"], [f"b{i}", f"bb{i}"]],
            "docs": _docs(f"q{i}-", 40),
        }
        for i in range(3)
    ]


def _archive(members: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, rows in members.items():
            data = json.dumps(rows, indent=4).encode()  # ALCE's files are indented JSON lists
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asqa: Any = None, qampari: Any = None) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "cache"))
    members = {
        "data/alce/asqa_eval_gtr_top2000.json": _asqa_rows() if asqa is None else asqa,
        "data/alce/qampari_eval_gtr_top2000.json": _qampari_rows() if qampari is None else qampari,
    }
    hub_file(tmp_path / "hub", "princeton-nlp/HELMET", "data.tar.gz", _archive(members))
    return tmp_path / "hub"


# --- the official strings --------------------------------------------------------------------------------------------


def test_demo_files_and_templates_are_verbatim():
    from longkit.eval.tasks import helmet_alce_demos as demos

    for name, digest in DEMO_SHA256.items():
        assert hashlib.sha256(getattr(demos, name).encode("utf-8")).hexdigest() == digest, name
    asqa = json.loads(demos.ASQA_REVISED)
    assert asqa["doc_prompt"] == "Document [{ID}](Title: {title}): {text}"
    assert asqa["demo_prompt"] == "{instruction}\n\nQuestion: {question}\n\n{context}\n\nAnswer: {answer}"
    assert (
        json.loads(demos.QAMPARI_REVISED)["demo_prompt"]
        == "{instruction}\n\nQuestion: {question}\n\n{context}\nAnswer: {answer}"
    )
    assert [len(d["docs"]) for d in asqa["demos"]] == [5, 5, 5, 5]
    assert ha.PROMPT == "{demo_text}{instruction}\n\nQuestion: {question}\n\n{context}\n\nAnswer:"
    assert ha.NLI_INPUT.format("P", "H") == "premise: P hypothesis: H"
    assert ha.NUM_DOCS == {4096: 8, 8192: 30, 16384: 75, 32768: 165, 65536: 345, 131072: 700}


def test_prompt_of_a_fixture_row_from_the_hub_layout(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    _hub(tmp_path, monkeypatch)
    task = make_task("helmet_alce_asqa", {"lengths": [8192, 16384]})
    assert isinstance(task, ha.AlceTask) and task.chat  # use_chat_template: true
    tok = _ChunkTokenizer()
    plan = task.plan()
    # data.shuffle(seed=42).select(range(min(100, 3))): all three rows in the permuted order, at each length
    order = [int(i) for i in np.random.default_rng(42).permutation(3)]
    assert [p["id"] for p in plan] == [f"{L}-{i}" for L in (8192, 16384) for i in order]
    s = task.build(plan[0], tok, 10**6)  # type: ignore[arg-type]
    row = _asqa_rows()[order[0]]

    # eval.py random.seed(42), then load_alce's map draws random.sample(demos, 2) for every row in file order
    official = json.loads(ha.helmet_alce_demos.ASQA_REVISED)
    rng = random.Random(42)
    draws = [rng.sample(official["demos"], 2) for _ in range(3)]

    def docs(ds: list[dict[str, Any]]) -> str:
        return "\n\n".join(f"Document [{j + 1}](Title: {d['title']}): {d['text']}" for j, d in enumerate(ds))

    instruction = official["instruction"]
    demo = "\n\n\n".join(
        f"{instruction}\n\nQuestion: {d['question']}\n\n{docs(d['docs'])}\n\nAnswer: {d['answer']}"
        for d in draws[order[0]]
    )
    expected = f"{demo}\n\n\n{instruction}\n\nQuestion: {row['question']}\n\n{docs(row['docs'][:30])}"
    assert s.messages == [{"role": "user", "content": expected}]
    assert s.max_new_tokens == 300 and s.meta["passages"] == 30 and not s.meta["truncated_by_task"]
    assert s.references == [f"ans{order[0]}"] and s.meta["answer_groups"] == [[f"ans{order[0]}"]]
    # 16384: 75 passages asked, the row has 40
    assert task.build(plan[3], tok, 10**6).meta["passages"] == 40  # type: ignore[arg-type]

    plain = make_task("alce_asqa", {"lengths": [8192], "chat": False})
    p = plain.build(plain.plan()[0], tok, 10**6)  # type: ignore[arg-type]
    assert p.prompt == expected + "\n\nAnswer:"
    assert plain.score(" ans" + str(order[0]) + " [1].", p)["str_em"] == 1.0  # "Answer:" prepended, as eval.py does


def test_a_long_prompt_loses_the_tail_of_its_passages(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    rows = [{**r, "docs": _docs("L", 40, size=400)} for r in _asqa_rows()]
    _hub(tmp_path, monkeypatch, asqa=rows)
    task = make_task("alce_asqa", {"lengths": [8192], "options": {"shots": 0}})
    s = task.build(task.plan()[0], CharTokenizer(), 10**6)  # type: ignore[arg-type]
    text = s.messages[0]["content"]  # type: ignore[index]
    assert len(text) == 8192 - 300 and s.meta["truncated_by_task"]
    assert text.startswith(json.loads(ha.helmet_alce_demos.ASQA_REVISED)["instruction"] + "\n\nQuestion: ")
    # the passages close the prompt, so cutting their tail by the excess keeps the prompt's first 7892 tokens
    instruction = json.loads(ha.helmet_alce_demos.ASQA_REVISED)["instruction"]
    full = f"{instruction}\n\nQuestion: {rows[0]['question']}\n\n" + "\n\n".join(
        f"Document [{j + 1}](Title: {d['title']}): {d['text']}" for j, d in enumerate(rows[0]["docs"][:30])
    )
    first = int(np.random.default_rng(42).permutation(3)[0])
    full = full.replace("Question 0?", f"Question {first}?")
    assert text == full[: 8192 - 300] and "Document [30]" not in text


# --- correctness metrics, by hand ------------------------------------------------------------------------------------


def test_str_em_removes_citations_before_matching():
    groups = [["July 1861"], ["Mawsynram"], ["Lloro", "Lloró"]]
    out = ha.alce_output("The record is for July [1] 1861 [2].\n\nMawsynram [3] holds it.<|im_end|>")
    assert out == "The record is for July [1] 1861 [2]. Mawsynram [3] holds it."
    plain = ha.remove_citations(out)
    assert plain == "The record is for July 1861. Mawsynram holds it."
    # 2 of 3 pairs answered: str_em 2/3, not a hit; with the citation left in, "july 1 1861" would not match
    assert ha.str_em(plain, groups) == {"str_em": pytest.approx(2 / 3), "str_hit": 0.0}
    assert ha.str_em(out, groups)["str_em"] == pytest.approx(1 / 3)
    assert ha.str_em("Lloró, the Mawsynram, in July 1861", groups) == {"str_em": 1.0, "str_hit": 1.0}
    assert ha.remove_citations("a [1][2] b |x] [3 c") == "a bx c"  # " [n", then "[n", then " |" and every "]"


def test_qampari_recall_at_5_by_hand():
    answers = [["Paris"], ["Lyon", "Lyons"], ["Nice"], ["Lille"], ["Nantes"], ["Metz"], ["Brest"]]
    plain = ha.remove_citations("Paris [1], Lyons [2], Berlin [3], the Nice [4].")
    s = ha.qampari_scores(plain, answers)
    # predictions paris, lyons, berlin, nice: precision 3/4, recall 3/7, recall@5 3/min(5, 7)
    assert s["num_preds"] == 4 and s["qampari_prec"] == 0.75
    assert s["qampari_rec"] == pytest.approx(3 / 7) and s["qampari_rec_top5"] == pytest.approx(0.6)
    assert s["qampari_f1"] == pytest.approx(2 * 0.75 * (3 / 7) / (0.75 + 3 / 7))
    assert s["qampari_f1_top5"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    # at most 5 answers count: all 7 found is recall@5 1; two answer groups, one found, is 1/2
    assert ha.qampari_scores("Paris, Lyon, Nice, Lille, Nantes, Metz, Brest", answers)["qampari_rec_top5"] == 1.0
    assert ha.qampari_scores("Paris,, ,", [["paris"], ["x"]])["qampari_rec_top5"] == 0.5
    assert ha.qampari_scores("", [["paris"]]) == {
        "num_preds": 0.0,
        "qampari_prec": 0.0,
        "qampari_rec": 0.0,
        "qampari_rec_top5": 0.0,
        "qampari_f1": 0.0,
        "qampari_f1_top5": 0.0,
    }


# --- citation recall and precision -----------------------------------------------------------------------------------


def _doc(j: int) -> dict[str, Any]:
    return {"title": f"T{j}", "text": f"text {j}"}


def _premise(*ids: int) -> str:
    return "\n".join(f"Title: T{j}\ntext {j}" for j in ids)


def test_citation_recall_and_precision_by_hand():
    docs = [_doc(j) for j in range(5)]
    sents = ["Mawsynram is wettest [1][2].", "Sohra holds a record [3].", "No citation here.", "Out of range [9]."]
    entailed = {
        f"premise: {_premise(0, 1)} hypothesis: Mawsynram is wettest.",  # the joint premise supports it
        f"premise: {_premise(0)} hypothesis: Mawsynram is wettest.",  # doc 1 alone does not, and doc 0 suffices
        f"premise: {_premise(2)} hypothesis: Sohra holds a record.",
    }
    asked: list[list[str]] = []

    def entails(inputs: list[str]) -> list[bool]:
        asked.append(inputs)
        return [i in entailed for i in inputs]

    got = ha.citation_scores(sents, docs, entails)
    # recall: 2 of 4 sentences supported; precision: doc 1 is over-cited, so 2 of the 3 citations kept count
    assert got == {"citation_rec": 0.5, "citation_prec": pytest.approx(2 / 3)}
    assert asked == [
        [
            f"premise: {_premise(0, 1)} hypothesis: Mawsynram is wettest.",
            f"premise: {_premise(2)} hypothesis: Sohra holds a record.",
        ],
        [
            f"premise: {_premise(0)} hypothesis: Mawsynram is wettest.",
            f"premise: {_premise(1)} hypothesis: Mawsynram is wettest.",
        ],
        [f"premise: {_premise(0)} hypothesis: Mawsynram is wettest."],  # doc 1's subset: the others without it
    ]
    # both necessary: each alone fails, each subset fails -> both count; at most 3 citations kept ([4] dropped)
    two = ha.citation_scores(["A claim [1][2][3][4]."], docs, lambda xs: [_premise(0, 1, 2) in x for x in xs])
    assert two == {"citation_rec": 1.0, "citation_prec": 1.0}
    assert ha.citation_scores([], docs, entails) is None
    assert ha.cited_ids("x [0] [12][3]") == [-1, 11, 2]  # "[0" reads the last doc, as Python indexing does there
    assert ha.nli_document({"title": "T", "text": "body", "sent": "s"}) == "Title: T\ns"


def test_citation_sentences():
    assert ha.citation_sentences("Paris [1], Lyon [2].", "Which cities?", qampari=True) == [
        "Which cities? Paris [1]",
        "Which cities? Lyon [2]",
    ]
    assert ha.citation_sentences("", "Q?", qampari=True) == ["Q? "]  # never empty for QAMPARI
    assert ha.entailed("1") and ha.entailed(" 1\n") and not ha.entailed("0") and not ha.entailed("entailed: 1")


def test_judged_qampari_sample_and_the_cite_column(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    _hub(tmp_path, monkeypatch)
    row = _qampari_rows()[int(np.random.default_rng(42).permutation(3)[0])]
    d0, d1 = row["docs"][0], row["docs"][1]
    n = row["id"][1:]
    entailed = {f"premise: Title: {d0['title']}\n{d0['text']} hypothesis: {row['question']} a{n}"}
    server = _NliServer(entailed)
    task = make_task("alce_qampari", {"lengths": [8192], "judge": _Spec(server), "samples": 1})
    s = task.build(task.plan()[0], CharTokenizer(), 10**6)  # type: ignore[arg-type]
    scores = task.score(f"a{n} [1], bb{n} [2], zz.", s)
    # recall@5: both answer groups found (2/2); precision 2 of 3 predictions; citations: 1 of 3 claims supported,
    # precision 1 of 2 citations ("zz" cites nothing)
    assert scores["qampari_rec_top5"] == 1.0 and scores["qampari_prec"] == pytest.approx(2 / 3)
    assert scores["citation_rec"] == pytest.approx(1 / 3) and scores["citation_prec"] == 0.5 and scores["cited"] == 1.0
    assert scores["score"] == pytest.approx((1 + 1 / 3 + 0.5) / 3)
    assert all(r.prompt is not None and r.max_new_tokens == 10 for r in server.requests)  # TRUE's input, raw
    assert "citation recall/precision judged (NLI via recorded:" in task.describe()
    assert f"premise: Title: {d1['title']}\n{d1['text']} hypothesis: {row['question']} bb{n}" in [
        r.prompt for r in server.requests
    ]


def test_cite_column_by_hand():
    judged = [
        {"str_em": 1.0, "citation_rec": 0.5, "citation_prec": 1.0, "cited": 1.0},
        {"str_em": 0.5, "citation_rec": 1.0, "citation_prec": 0.0, "cited": 1.0},
        {"str_em": 0.0, "cited": 0.0},  # no sentence: out of the citation means, in str_em's
    ]
    # str_em 1.5/3 = 0.5, citation recall 0.75, precision 0.5 over the two with sentences: (0.5+0.75+0.5)/3
    assert helmet_cite(judged) == pytest.approx(1.75 / 3)
    assert math.isnan(helmet_cite([{"str_em": 1.0, "score": 1.0}]))  # not judged: no official Cite score
    assert ha.alce_columns(judged) == {"str_em": 50.0, "citation_rec": 75.0, "citation_prec": 50.0, "cite": 58.33}
    assert ha.alce_columns([{"qampari_rec_top5": 0.5, "qampari_prec": 1.0, "qampari_f1": 0.5}])["cite"] == "not judged"


# --- bad input -------------------------------------------------------------------------------------------------------


def test_bad_schema_names_file_and_field(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    bad = _asqa_rows()
    del bad[1]["qa_pairs"]
    _hub(tmp_path, monkeypatch, asqa=bad)
    task = make_task("alce_asqa", {"lengths": [8192]})
    with pytest.raises(InputError, match=r"asqa_eval_gtr_top2000.json: item 1: missing field 'qa_pairs'$"):
        task.plan()
    f = tmp_path / "qampari.json"
    f.write_text(json.dumps([{"question": "q", "answers": [["a"]], "docs": [{"title": "t"}]}]))
    with pytest.raises(InputError, match=r"qampari.json: item 0: field 'docs\[0\].text': missing$"):
        ha.read_alce(f, qampari=True)
    f.write_text(json.dumps([{"question": "q", "answers": ["a"], "docs": []}]))
    with pytest.raises(InputError, match=r"field 'answers': expected a non-empty list of lists of strings$"):
        ha.read_alce(f, qampari=True)


def test_unpublished_length_lists_the_published_ones(tmp_path, monkeypatch):
    from longkit.eval.tasks.registry import make_task

    _hub(tmp_path, monkeypatch)
    with pytest.raises(ConfigError) as err:
        make_task("alce_qampari", {"lengths": [8192, 12000]})
    msg = str(err.value)
    assert "\n" not in msg and "length 12000 is none of them" in msg
    assert "8192 (30 passages)" in msg and "131072 (700 passages)" in msg


def test_judged_asqa_needs_punkt(monkeypatch):
    def missing(text: str) -> list[str]:
        raise LookupError("punkt_tab")

    monkeypatch.setattr(ha, "split_sentences", missing)
    with pytest.raises(ConfigError, match=r"run `python -m nltk.downloader punkt_tab`"):
        ha.check_punkt()


# --- end to end ------------------------------------------------------------------------------------------------------


def _suite(tmp_path: Path, out: Path, judge: Any, tiny_llama_dir: Path) -> dict[str, Any]:
    from longkit.eval.suite import SuiteConfig

    cfg: dict[str, Any] = {
        "models": [{"name": "tiny", "model": "unused"}],
        "lengths": [8192],
        "samples": 1,
        "tasks": ["alce_asqa", "helmet_alce_qampari"],
        "out": str(out),
    }
    if judge:
        cfg["judge"] = {"backend": "hf", "model": str(tiny_llama_dir)}
    return SuiteConfig.model_validate(cfg)  # type: ignore[return-value]


def test_suite_with_and_without_the_judge(tmp_path, monkeypatch, tiny_backend, tiny_llama_dir):
    from longkit.eval.suite import run_suite

    _hub(tmp_path, monkeypatch)
    monkeypatch.setattr(ha, "split_sentences", _regex_sentences)

    plain = run_suite(
        _suite(tmp_path, tmp_path / "plain", False, tiny_llama_dir), backends={"tiny": tiny_backend}, progress=False
    )
    for name in ("alce_asqa", "alce_qampari"):
        records = [json.loads(x) for x in (tmp_path / "plain" / "tiny" / name / "results.jsonl").open()]
        assert len(records) == 1
        assert all("citation_rec" not in r["scores"] and "cited" not in r["scores"] for r in records)
        entry = plain["models"]["tiny"]["tasks"][name]
        assert entry["official"] is None or entry["official"].get("score") is None  # no judge: Cite not reported
    summary = json.loads((tmp_path / "plain" / "tiny" / "alce_asqa" / "summary.json").read_text())
    assert "citation not judged" in summary["setup"]

    judged = run_suite(
        _suite(tmp_path, tmp_path / "judged", True, tiny_llama_dir), backends={"tiny": tiny_backend}, progress=False
    )
    for name in ("alce_asqa", "alce_qampari"):
        records = [json.loads(x) for x in (tmp_path / "judged" / "tiny" / name / "results.jsonl").open()]
        assert all("cited" in r["scores"] for r in records)
        assert any("citation_rec" in r["scores"] for r in records) or name == "alce_asqa"
        run = json.loads((tmp_path / "judged" / "tiny" / name / "run.json").read_text())
        assert run["task"]["judge"]["model"] == f"hf:{tiny_llama_dir}"
    entry = judged["models"]["tiny"]["tasks"]["alce_qampari"]
    assert entry["official"]["score"] is not None and isinstance(entry["benchmark_summary"]["cite"], float)
    report = (tmp_path / "judged" / "report.md").read_text()
    assert "alce_qampari: qampari rec top5" in report and "citation recall/precision judged (NLI via hf:" in report
