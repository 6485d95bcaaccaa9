"""`longkit.eval.rag_vs_long`: the RAG-versus-long-context sweep (resume, dedupe, plot), its run record,
empty-answer counts and run-time estimate, and the tuner's window bound (`longkit.rag.tune`)."""

from __future__ import annotations

import json

import pytest

from longkit.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def minilm():
    """The bundled sentence-transformers embedder."""
    from longkit.rag.embed import load_embedder

    return load_embedder("all-minilm-l6-v2")


def test_rag_vs_long_sweep_resumes_and_plots(tmp_path, minilm, tiny_backend):
    from longkit.eval.metrics import token_f1
    from longkit.eval.rag_vs_long import SweepPlan, load_qa, sweep
    from longkit.rag.pipeline import RagSettings
    from longkit.rag.tune import choose_setting

    doc = tmp_path / "doc.txt"
    from pydoc_data.topics import topics as t

    doc.write_text("\n\n".join(t[k] for k in ("assert", "del", "pass", "while", "for", "try"))[:6000])
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps(
            {"id": "q1", "document_path": "doc.txt", "question": "What does pass do?", "answers": ["nothing happens"]}
        )
        + "\n"
        + json.dumps(
            {
                "id": "q2",
                "document": "Alice was born in Paris. " * 30 + "Bob likes tea.",
                "question": "What does Bob like?",
                "answers": ["tea"],
            }
        )
        + "\n"
    )
    items = load_qa(qa)
    assert items[0].document.startswith('The "assert" statement')

    class Counting:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0
            self.name, self.max_context, self.tokenizer = "hf", 700, inner.tokenizer

        def generate(self, reqs):
            self.calls += len(reqs)
            return self.inner.generate(reqs)

    backend = Counting(tiny_backend)
    settings = RagSettings(max_new_tokens=4)
    plan = SweepPlan(chunk_sizes=(40, 120), top_ks=(1, 40, 50), settings=settings, batch_size=4)
    summary = sweep(items, backend, minilm, plan, out_dir=tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * (1 + 2 * 3)
    for r in rows:
        assert r["score"] == token_f1(r["prediction"], r["answers"])
        assert r["context_tokens"] <= 700
    long_rows = [r for r in rows if r["setting"] == "long"]
    assert sum(r["truncated"] for r in long_rows) == 1  # the 6000-character document does not fit 700 tokens
    k50 = [r for r in rows if r["top_k"] == 50]
    assert any(r["dropped_chunks"] > 0 for r in k50)
    first_calls = backend.calls
    assert first_calls < len(rows)  # identical prompts (k beyond the document) generated once
    tokens = {(s["chunk_size"], s["top_k"]): s["context_tokens"] for s in summary["rag"]}
    assert tokens[(40, 1)] < tokens[(40, 50)] and tokens[(120, 1)] < tokens[(120, 50)]
    assert (tmp_path / "run" / "rag_vs_long.png").stat().st_size > 5000
    assert "| long context |" in (tmp_path / "run" / "report.md").read_text()

    again = sweep(
        items,
        backend,
        minilm,
        SweepPlan(chunk_sizes=(40, 120), top_ks=(1, 40, 50), settings=settings),
        out_dir=tmp_path / "run",
    )
    assert backend.calls == first_calls and again["rag"] == summary["rag"]

    choice = choose_setting(summary, tolerance=1.0)  # everything is within 1.0: the cheapest wins
    assert (choice["chunk_size"], choice["top_k"]) == min(tokens, key=tokens.get)
    best = max(s["score"] for s in summary["rag"])
    assert choice["long_context_beats_rag"] == (summary["long_context"]["score"] > best)


def test_qa_file_errors(tmp_path):
    from longkit.eval.rag_vs_long import load_qa

    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"question": "q", "answers": ["a"]}\n')
    with pytest.raises(InputError, match="qa.jsonl:1: needs a 'document' or a 'document_path'"):
        load_qa(bad)
    bad.write_text('{"question": "q", "answers": [], "document": "x"}\n')
    with pytest.raises(InputError, match="qa.jsonl:1: field 'answers'"):
        load_qa(bad)
    bad.write_text('{"question": "q", "answers": ["a"], "document_path": "missing.txt"}\n')
    with pytest.raises(InputError, match="document_path 'missing.txt' not found"):
        load_qa(bad)


def _qa_items(tmp_path):
    from longkit.eval.rag_vs_long import load_qa

    doc = (
        "The pass statement is a null operation: nothing happens when it executes. " * 8
        + "The del statement removes a name binding. " * 8
    )
    qa = tmp_path / "qa.jsonl"
    pairs = [("What does pass do?", "nothing"), ("What does del do?", "removes")]
    qa.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "document": doc, "question": q, "answers": [a]}) + "\n"
            for i, (q, a) in enumerate(pairs)
        )
    )
    return load_qa(qa)


def test_estimate_comes_first_and_estimate_only_stops(tmp_path, minilm, tiny_backend):
    from longkit.eval.rag_vs_long import SweepPlan, describe_estimate, sweep
    from longkit.rag.pipeline import RagSettings

    items = _qa_items(tmp_path)
    seen = []
    out = tmp_path / "est"
    plan = SweepPlan(chunk_sizes=(32,), top_ks=(1, 2), settings=RagSettings(max_new_tokens=3))
    res = sweep(items, tiny_backend, minilm, plan, out_dir=out, on_estimate=seen.append, estimate_only=True)
    est = res["estimate"]
    assert seen == [est] and est["prompts"] == 2 * (1 + 2) and est["seconds"] > 0
    assert est["prefill_tokens_per_second"] > 0 and est["prompt_tokens"] >= est["longest_prompt_tokens"]
    assert not (out / "results.jsonl").exists() and not (out / "indexes").exists()  # nothing ran
    assert describe_estimate(est).startswith("estimate: 6 prompts") and "--limit" in describe_estimate(est)

    order = []

    class Watching:
        def __init__(self, inner):
            self.inner, self.name, self.max_context, self.tokenizer = inner, "hf", inner.max_context, inner.tokenizer

        def generate(self, reqs):
            order.append("generate" if seen2 else "probe")
            return self.inner.generate(reqs)

    seen2: list = []
    summary = sweep(items, Watching(tiny_backend), minilm, plan, out_dir=tmp_path / "run", on_estimate=seen2.append)
    assert len(seen2) == 1 and order[:3] == ["probe"] * 3 and "generate" in order  # measured, reported, then run
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert summary["answers"] == len(rows) == 6
    assert summary["empty_answers"] == sum(not r["prediction"].strip() for r in rows)
    assert summary["prompt_style"] == "chat"  # the tiny model carries SmolLM2's chat template: auto picks it


def test_rag_vs_long_out_with_other_settings_is_refused(tmp_path, minilm, tiny_backend):
    from longkit.eval.rag_vs_long import SweepPlan, sweep
    from longkit.rag.pipeline import RagSettings

    def plan(**settings):
        return SweepPlan(chunk_sizes=(32,), top_ks=(1,), settings=RagSettings(**settings))

    items = _qa_items(tmp_path)[:1]
    out = tmp_path / "run"
    sweep(items, tiny_backend, minilm, plan(max_new_tokens=3), out_dir=out)
    before = (out / "results.jsonl").read_bytes()
    with pytest.raises(ConfigError, match=r"generation\.max_new_tokens was 3, now 5"):
        sweep(items, tiny_backend, minilm, plan(max_new_tokens=5), out_dir=out)
    with pytest.raises(ConfigError, match=r"generation\.style was \"chat\", now \"chatqa\""):
        sweep(items, tiny_backend, minilm, plan(max_new_tokens=3, style="chatqa"), out_dir=out)
    assert (out / "results.jsonl").read_bytes() == before


def test_tune_never_chooses_or_accepts_a_budget_above_the_window(tmp_path, minilm, tiny_backend):
    from longkit.backends.hf import HFBackend
    from longkit.eval.rag_vs_long import SweepPlan, sweep
    from longkit.rag.build import chunking_record, index_documents, open_or_create
    from longkit.rag.chunk import ChunkConfig
    from longkit.rag.pipeline import RagPipeline, RagSettings
    from longkit.rag.tune import choose_setting

    small = HFBackend(tiny_backend.model, tiny_backend.hf_tokenizer, max_context=300)
    items = _qa_items(tmp_path)
    plan = SweepPlan(chunk_sizes=(32, 96), top_ks=(1, 4), settings=RagSettings(max_new_tokens=3))
    summary = sweep(items, small, minilm, plan, out_dir=tmp_path / "sweep")
    assert max(r["token_budget"] for r in summary["rag"]) == 384 > 300 - 64  # the sweep went past the window
    for tolerance in (0.0, 0.5, 1.0):
        choice = choose_setting(summary, tolerance, max_context=300, answer_budget=64)
        assert choice["token_budget"] <= 300 - 64 == choice["max_budget"]
    with pytest.raises(ConfigError, match="every swept budget exceeds"):
        choose_setting(summary, 1.0, max_context=300, answer_budget=280)

    cfg = ChunkConfig(size=32)
    index = open_or_create(tmp_path / "ix", minilm, chunking_record(cfg, "embedder", "error"))
    index_documents(index, [("d", items[0].document)], minilm, cfg)
    index.update_manifest(tuned={"chunk_size": 1200, "top_k": 10, "token_budget": 12000})  # tuned for a larger model
    pipe = RagPipeline.from_index(tmp_path / "ix", small, embedder=minilm, max_new_tokens=16)
    assert pipe.settings.token_budget == 300 - 16  # capped, not taken as is
    with pytest.raises(ConfigError, match="--budget 5000: above the 284 tokens"):
        RagPipeline.from_index(tmp_path / "ix", small, embedder=minilm, max_new_tokens=16, token_budget=5000)


def test_run_rag_vs_long_and_tune_take_one_options_object(tmp_path, minilm, tiny_llama_dir):
    from longkit.backends.spec import BackendSpec
    from longkit.eval.rag_tune import TuneOptions, tune
    from longkit.eval.rag_vs_long import RagVsLongOptions, run_rag_vs_long
    from longkit.rag.build import chunking_record, index_documents, open_or_create
    from longkit.rag.chunk import ChunkConfig

    items = _qa_items(tmp_path)
    qa = tmp_path / "qa.jsonl"
    gen = BackendSpec(model=str(tiny_llama_dir), batch_size=4)
    said: list[str] = []
    opts = RagVsLongOptions(
        qa=qa, generator=gen, chunk_sizes=(32,), top_ks=(1, 2), out=tmp_path / "rvl", max_new_tokens=3
    )
    summary = run_rag_vs_long(opts, log=said.append)
    assert summary["n_questions"] == 2 and summary["answers"] == 2 * (1 + 2) and summary["model"]
    assert (tmp_path / "rvl" / "summary.json").exists() and (tmp_path / "rvl" / "rag_vs_long.png").exists()
    assert said[0] == "2 questions x (1 chunk sizes x 2 top-k + long context); measuring..."
    assert said[1].startswith("estimate: 6 prompts")
    est = run_rag_vs_long(
        RagVsLongOptions(
            qa=qa,
            generator=gen,
            chunk_sizes=(32,),
            top_ks=(4,),
            out=tmp_path / "rvl",
            max_new_tokens=3,
            estimate_only=True,
        )
    )
    assert est["estimate"]["prompts"] == 2  # only k=4 is new: the long-context answers are logged already
    # options are checked when the object is made, naming the option a user of the CLI would change
    for bad, option in (
        ({"order": "random"}, "--order"),
        ({"chunk_sizes": ()}, "--chunk-sizes"),
        ({"top_ks": (0,)}, "--top-ks"),
        ({"metric": "bleu"}, "--metric"),
    ):
        with pytest.raises(ConfigError, match=option):
            RagVsLongOptions(qa=qa, **bad)
    with pytest.raises(ConfigError, match="--tolerance"):
        TuneOptions(index=tmp_path / "ix", qa=qa, tolerance=2.0)

    cfg = ChunkConfig(size=32)
    index = open_or_create(tmp_path / "ix", minilm, chunking_record(cfg, "embedder", "error"))
    index_documents(index, [(items[0].doc_id, items[0].document)], minilm, cfg)
    result = tune(
        TuneOptions(
            index=tmp_path / "ix",
            qa=qa,
            generator=gen,
            chunk_sizes=(32, 64),
            top_ks=(1, 2),
            tolerance=1.0,
            max_new_tokens=3,
            answer_budget=16,
        )
    )
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["tuned"] == json.loads(json.dumps(result.choice)) and result.index_chunk_size == 32
    assert result.choice["token_budget"] == result.choice["chunk_size"] * result.choice["top_k"]
    assert result.choice["answer_budget"] == 16 and result.skipped == 0
    assert (tmp_path / "ix" / "tune" / "summary.json").exists()  # the sweep's default folder
