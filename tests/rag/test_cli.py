"""`longkit rag index/ask/tune/info/delete` and `longkit eval rag-vs-long` end to end on tiny real models."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from longkit.cli import app

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_index_ask_tune_delete(tmp_path, topics, tiny_llama_dir, tiny_backend, minilm):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("pass", "del", "global"):
        (docs / f"{name}.txt").write_text(topics[name])
    (docs / "image.png").write_bytes(b"\x89PNG\x00\x00")  # skipped inside a directory
    ix = tmp_path / "ix"
    res = _invoke("rag", "index", docs, "--out", ix, "--chunk-size", "50", "--commit-every", "1")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{") :])
    assert out["added"] == 3 and out["chunks"] > 3 and out["commits"] == out["chunks"]  # --commit-every counts chunks
    assert "indexing: 3/3 docs" in res.output  # plain progress lines when output is not a terminal
    again = _invoke("rag", "index", docs, "--out", ix, "--chunk-size", "50")
    resumed = json.loads(again.output[again.output.index("{") :])
    assert resumed["skipped"] == 3 and resumed["chunks_added"] == 0  # a rerun (or a resumed build) adds nothing
    assert resumed["chunks"] == resumed["chunks_before"] == out["chunks"]  # and reports the index's total

    res = _invoke(
        "rag",
        "ask",
        ix,
        "How do I remove a name binding?",
        "--model",
        tiny_llama_dir,
        "-k",
        "2",
        "--max-new-tokens",
        "3",
        "--json",
    )
    assert res.exit_code == 0, res.output
    ans = json.loads(res.output[res.output.index("{") :])
    assert len(ans["citations"]) == 2 and ans["citations"][0]["doc_id"].endswith("del.txt")
    res = _invoke(
        "rag",
        "ask",
        ix,
        "How do I remove a name binding?",
        "--model",
        tiny_llama_dir,
        "-k",
        "1",
        "--max-new-tokens",
        "3",
    )
    assert res.exit_code == 0 and "chunks used (1," in res.output and "del.txt #" in res.output

    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps({"document": topics["pass"], "question": "What is pass?", "answers": ["a null operation"]}) + "\n"
    )
    res = _invoke(
        "rag",
        "tune",
        ix,
        "--qa",
        qa,
        "--model",
        tiny_llama_dir,
        "--chunk-sizes",
        "40,80",
        "--top-ks",
        "1,2",
        "--max-new-tokens",
        "3",
        "--tolerance",
        "1.0",
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((ix / "manifest.json").read_text())
    assert manifest["tuned"]["chunk_size"] in (40, 80) and manifest["tuned"]["top_k"] in (1, 2)
    assert manifest["tuned"]["token_budget"] == manifest["tuned"]["chunk_size"] * manifest["tuned"]["top_k"]
    from longkit.rag.pipeline import RagPipeline

    tuned = RagPipeline.from_index(ix, tiny_backend, embedder=minilm)  # `rag ask` uses the tuned budget
    assert tuned.settings.token_budget == manifest["tuned"]["token_budget"]
    assert RagPipeline.from_index(ix, tiny_backend, embedder=minilm, top_k=1).settings.token_budget is None
    info = json.loads(_invoke("rag", "info", ix).output)
    assert info["tuned"] == manifest["tuned"] and info["documents"] == 3

    res = _invoke("rag", "delete", ix, str(docs / "del.txt"))
    assert res.exit_code == 0 and json.loads(res.output)["removed_chunks"] >= 1
    assert json.loads(_invoke("rag", "info", ix).output)["documents"] == 2


def test_cli_errors_are_one_line(tmp_path, topics):
    (tmp_path / "bad.txt").write_bytes("caf\xe9".encode("latin-1"))
    res = _invoke("rag", "index", tmp_path / "bad.txt", "--out", tmp_path / "ix")
    assert res.exit_code == 2 and "bad.txt:1: not valid UTF-8" in res.output and "Traceback" not in res.output
    res = _invoke("rag", "ask", tmp_path / "nowhere", "q")
    assert res.exit_code == 2 and "no index here" in res.output
    (tmp_path / "ok.txt").write_text(topics["pass"])
    assert _invoke("rag", "index", tmp_path / "ok.txt", "--out", tmp_path / "ix2").exit_code == 0
    res = _invoke("rag", "index", tmp_path / "ok.txt", "--out", tmp_path / "ix2", "--embedder", "decoder:/nonexistent")
    assert res.exit_code == 2 and "could not load decoder embedder" in res.output
    res = _invoke("rag", "index", tmp_path / "ok.txt", "--out", tmp_path / "ix3", "--chunk-size", "400")
    assert res.exit_code == 0  # the topic is short: one chunk that fits
    long_doc = tmp_path / "long.txt"
    long_doc.write_text(" ".join(topics.values()))
    res = _invoke("rag", "index", long_doc, "--out", tmp_path / "ix4", "--chunk-size", "400")
    assert res.exit_code == 2 and "reads at most 256" in res.output


def test_eval_rag_vs_long_command(tmp_path, topics, tiny_llama_dir):
    qa = tmp_path / "qa.jsonl"
    doc = "\n\n".join(topics.values())
    pairs = [("What does pass do?", "nothing"), ("What does del do?", "deletes")]
    qa.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "document": doc, "question": q, "answers": [a]}) + "\n"
            for i, (q, a) in enumerate(pairs)
        )
    )
    out = tmp_path / "run"
    res = _invoke(
        "eval",
        "rag-vs-long",
        qa,
        "--model",
        tiny_llama_dir,
        "--chunk-sizes",
        "64",
        "--top-ks",
        "1,4",
        "--out",
        out,
        "--max-new-tokens",
        "3",
        "--max-context",
        "600",
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_questions"] == 2 and summary["long_context"]["n"] == 2 and summary["max_context"] == 600
    assert [(r["chunk_size"], r["top_k"], r["n"]) for r in summary["rag"]] == [(64, 1, 2), (64, 4, 2)]
    assert (out / "rag_vs_long.png").exists() and "plot:" in res.output
    assert "generating: " in res.output and "indexing chunk size 64: 1/1 docs" in res.output
    assert 0 <= res.output.index("estimate: 6 prompts") < res.output.index("| long context |")  # said first
    assert "empty answers" in res.output and summary["empty_answers"] <= summary["answers"] == 6
    run = json.loads((out / "run.json").read_text())
    assert run["backend"] == "hf" and run["generation"]["max_context"] == 600 and run["metric"] == "token_f1"
    res = _invoke(
        "eval",
        "rag-vs-long",
        qa,
        "--model",
        tiny_llama_dir,
        "--chunk-sizes",
        "64",
        "--top-ks",
        "1,4",
        "--out",
        out,
        "--max-new-tokens",
        "3",
        "--max-context",
        "512",
    )
    assert res.exit_code == 2 and "generation.max_context was 600, now 512" in res.output
