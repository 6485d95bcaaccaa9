"""ChatQA format, answer-only labels, blends and synthetic long samples (real tokenizers, no mocks)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from longkit.errors import ConfigError, InputError, located
from longkit.sft.blend import plan_blend
from longkit.sft.format import CHATQA_SYSTEM, IGNORE, encode_chatqa, format_chatqa
from longkit.sft.synth import SynthOptions, split_sentences, synthesize

CONV = [
    {"role": "user", "content": "Who wrote it?"},
    {"role": "assistant", "content": "Ada wrote it."},
    {"role": "user", "content": "When?"},
    {"role": "assistant", "content": "In 1843."},
]


def test_chatqa_system_message_is_the_published_one():
    assert CHATQA_SYSTEM == (
        "This is a chat between a user and an artificial intelligence assistant. The assistant "
        "gives helpful, detailed, and polite answers to the user's questions based on the "
        "context. The assistant should also indicate when the answer cannot be found in the "
        "context."
    )


def test_format_chatqa_layout():
    text = format_chatqa(CONV[:3], context="The note.")
    assert text == (
        f"System: {CHATQA_SYSTEM}\n\nThe note.\n\nUser: Who wrote it?\n\nAssistant: Ada wrote it."
        "\n\nUser: When?\n\nAssistant:"
    )
    assert format_chatqa(CONV[:1]).startswith(f"System: {CHATQA_SYSTEM}\n\nUser: Who wrote it?")


@pytest.mark.parametrize("tok_name", ["smol_tokenizer", "trained_tokenizer"])
def test_labels_cover_only_assistant_replies(tok_name, request):
    tok = request.getfixturevalue(tok_name)
    ids, labels = encode_chatqa(tok, CONV, context="The note.")
    assert len(ids) == len(labels)
    trained = [t for t, lab in zip(ids, labels) if lab != IGNORE]
    assert tok.decode(trained) == " Ada wrote it. In 1843." + tok.eos_token
    # The whole sequence is the ChatQA text of the conversation plus EOS.
    assert tok.decode(ids) == format_chatqa(CONV, context="The note.", add_generation_prompt=False) + tok.eos_token
    masked = tok.decode([t for t, lab in zip(ids, labels) if lab == IGNORE])
    assert "User: When?" in masked and "Ada" not in masked


def test_encode_rejects_bad_conversations(smol_tokenizer):
    with pytest.raises(InputError, match="f.jsonl:3: the last message must be an assistant reply"):
        with located("f.jsonl:3"):  # the caller that knows the file and line names them, once
            encode_chatqa(smol_tokenizer, CONV[:3])
    with pytest.raises(InputError, match=r"messages\[1\] repeats role 'user'"):
        encode_chatqa(smol_tokenizer, [CONV[0], CONV[0]])


def test_blend_weights_and_epochs_report_effective_epochs():
    items = [{"path": "a.jsonl", "weight": 3.0}, {"path": "b.jsonl", "weight": 1.0}, {"path": "c.jsonl", "epochs": 2.5}]
    order, parts = plan_blend(items, [100, 10, 8], num_samples=200, seed=0)
    got = {p.name: (p.samples, p.effective_epochs) for p in parts}
    assert got == {"a": (150, 1.5), "b": (50, 5.0), "c": (20, 2.5)}
    assert len(order) == 220
    counts = np.bincount([i for i, _ in order], minlength=3)
    assert counts.tolist() == [150, 50, 20]
    # Every row of an upsampled dataset appears floor(epochs) or ceil(epochs) times.
    b_rows = np.bincount([j for i, j in order if i == 1], minlength=10)
    assert set(b_rows.tolist()) == {5}
    with pytest.raises(ConfigError, match=r"blend\[0\] \(a.jsonl\): give exactly one of 'weight' or 'epochs'"):
        plan_blend([{"path": "a.jsonl", "weight": 1, "epochs": 1}], [5])


def test_split_sentences_round_trips():
    text = 'One. "Two!" Three? Four\nfive. Six'
    parts = split_sentences(text)
    assert "".join(parts) == text and len(parts) == 5


def test_synth_inserts_summary_at_a_sentence_boundary(smol_tokenizer):
    rng = np.random.default_rng(0)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    doc = " ".join(" ".join(rng.choice(words, 12)).capitalize() + "." for _ in range(400))
    other = " ".join(" ".join(rng.choice(words, 8)).capitalize() + "." for _ in range(300))
    summary = "SUMMARY: the heron steals the silver key at dawn."
    rows = [
        (
            "f:1",
            {
                "id": "d1",
                "document": doc,
                "summary": summary,
                "qa": [{"question": "Who steals the key?", "answer": "The heron."}],
            },
        ),
        ("f:2", {"id": "d2", "document": other, "summary": "Other summary.", "qa": [{"question": "q", "answer": "a"}]}),
    ]
    out = list(synthesize(rows, smol_tokenizer, SynthOptions(lengths=(1024, 4096, 16384), seed=1)))
    assert len(out) == 6
    for s in out[:3]:
        ctx, target = s["context"], s["meta"]["target_length"]
        assert summary in ctx
        before = ctx[: ctx.index(summary)]
        assert before == "" or before.endswith("\n\n")  # inserted between sentences, never inside one
        assert before.rstrip() == "" or before.rstrip()[-1] in ".!?"
        assert s["messages"] == [
            {"role": "user", "content": "Who steals the key?"},
            {"role": "assistant", "content": "The heron."},
        ]
        n = s["meta"]["context_tokens"]
        assert n <= target + 8
    # The 1024-token sample is cut to a window near the target; the 16K one is filled with the other document.
    assert out[0]["meta"]["context_tokens"] > 900
    assert out[2]["meta"]["distractor_docs"] == 1
    with pytest.raises(InputError, match="f:9: field 'summary' must be a non-empty string"):
        list(synthesize([("f:9", {"document": doc, "qa": []})], smol_tokenizer, SynthOptions()))


def test_cli_synth_long(tmp_path):
    from typer.testing import CliRunner

    from longkit.cli import app

    src = tmp_path / "triples.jsonl"
    doc = " ".join(f"Sentence number {i} is here." for i in range(300))
    src.write_text(
        json.dumps({"document": doc, "summary": "The summary.", "qa": [{"question": "What?", "answer": "That."}]})
        + "\n"
    )
    r = CliRunner().invoke(
        app, ["data", "synth-long", str(src), "--out", str(tmp_path / "o.jsonl"), "--lengths", "512,1024"]
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [x["meta"]["target_length"] for x in rows] == [512, 1024]
    assert all("The summary." in x["context"] for x in rows)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"document": "x", "summary": "y"}\n')
    r = CliRunner().invoke(app, ["data", "synth-long", str(bad), "--out", str(tmp_path / "p.jsonl")])
    assert r.exit_code == 2 and "bad.jsonl:1: field 'qa'" in r.output


def test_synth_hits_its_target_length_with_exact_sentence_counts(smol_tokenizer):
    """Counting sentences one by one overcounted ~20% (samples came out short); offsets in the joined text fix it."""
    from longkit.sft.synth import sentence_tokens

    doc = " ".join(f"Sentence number {i} is here." for i in range(400))
    sents = split_sentences(doc)
    counts = sentence_tokens(smol_tokenizer, sents)
    assert counts.sum() == len(smol_tokenizer(doc, add_special_tokens=False)["input_ids"])
    row = {"document": doc, "summary": "The summary.", "qa": [{"question": "q", "answer": "a"}]}
    out = list(synthesize([("f:1", row)], smol_tokenizer, SynthOptions(lengths=(512, 1024, 2048))))
    for s in out:
        t = s["meta"]["target_length"]
        assert 0.95 * t <= s["meta"]["context_tokens"] <= t + 8
        assert "short_reason" not in s["meta"]


def test_sentence_counts_without_offsets_count_each_sentence():
    """A tokenizer that returns no offsets (transformers 5's Python backend, e.g. ByT5's) counts sentence by
    sentence; ByT5 has one token per UTF-8 byte, so the counts are the byte lengths."""
    from transformers import ByT5Tokenizer

    from longkit.sft.synth import sentence_tokens

    sents = ["Hello there. ", "Ünïcode sentence two."]
    assert sentence_tokens(ByT5Tokenizer(), sents).tolist() == [len(s.encode()) for s in sents]


def test_cli_synth_long_says_how_many_at_which_lengths_and_why_short(tmp_path):
    from typer.testing import CliRunner

    from longkit.cli import app

    src = tmp_path / "triples.jsonl"
    doc = " ".join(f"Sentence number {i} is here." for i in range(200))  # about 1,400 tokens
    src.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"d{k}",
                    "document": doc,
                    "summary": "The summary.",
                    "qa": [{"question": "What?", "answer": "That."}],
                }
            )
            + "\n"
            for k in range(2)
        )
    )
    out = tmp_path / "o.jsonl"
    r = CliRunner().invoke(
        app, ["data", "synth-long", str(src), "--out", str(out), "--lengths", "512,8192", "--no-fill"]
    )
    assert r.exit_code == 0, r.output
    assert "wrote 4 of 4 samples asked (2 documents x 2 lengths)" in r.output
    assert "synth-long: 4/4 samples" in r.output  # plain progress lines off a TTY
    lines = {ln.split(":")[0].strip(): ln for ln in r.output.splitlines() if ln.strip().startswith("length ")}
    assert "shorter" not in lines["length 512"]
    assert (
        "2 shorter than 90% of the target: 2 because document shorter than the target and --no-fill"
        in lines["length 8192"]
    )
    report = json.loads((tmp_path / "o.jsonl.report.json").read_text())
    assert report["asked"] == report["written"] == 4
    by = report["by_length"]
    assert by["512"]["short"] == 0 and by["8192"]["short"] == 2
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert by["8192"]["context_tokens"]["max"] == max(
        x["meta"]["context_tokens"] for x in rows if x["meta"]["target_length"] == 8192
    )
    # with fill, the other document tops a sample up, and what is still short says that the inputs ran out
    r2 = CliRunner().invoke(
        app, ["data", "synth-long", str(src), "--out", str(tmp_path / "p.jsonl"), "--lengths", "8192"]
    )
    assert r2.exit_code == 0, r2.output
    assert "because all input documents together are shorter than the target" in r2.output
