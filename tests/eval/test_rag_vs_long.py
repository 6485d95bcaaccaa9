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
    from longkit.eval.rag_vs_long import load_qa, run_rag_vs_long as rag_vs_long
    from longkit.rag.pipeline import RagSettings
    from longkit.rag.tune import choose_setting

    doc = tmp_path / "doc.txt"
    from pydoc_data.topics import topics as t

    doc.write_text("\n\n".join(t[k] for k in ("assert", "del", "pass", "while", "for", "try"))[:6000])
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q1", "document_path": "doc.txt", "question": "What does pass do?",
                              "answers": ["nothing happens"]}) + "\n"
                  + json.dumps({"id": "q2", "document": "Alice was born in Paris. " * 30 + "Bob likes tea.",
                                "question": "What does Bob like?", "answers": ["tea"]}) + "\n")
    items = load_qa(qa)
    assert items[0].document.startswith("The \"assert\" statement")

    class Counting:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0
            self.name, self.max_context, self.tokenizer = "hf", 700, inner.tokenizer

        def generate(self, reqs):
            self.calls += len(reqs)
            return self.inner.generate(reqs)

    backend = Counting(tiny_backend)
    settings = RagSettings(max_new_tokens=4)
    summary = rag_vs_long(items, backend, minilm, out_dir=tmp_path / "run", chunk_sizes=(40, 120), top_ks=(1, 40, 50),
                          settings=settings, batch_size=4)
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

    again = rag_vs_long(items, backend, minilm, out_dir=tmp_path / "run", chunk_sizes=(40, 120), top_ks=(1, 40, 50),
                        settings=settings)
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
