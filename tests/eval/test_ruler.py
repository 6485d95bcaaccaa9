"""RULER generators: exact lengths, needle placement and answerability, on two real tokenizers."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError
from longkit.eval.tasks.ruler import RULER_TASKS, TEMPLATES, RulerConfig, RulerTask, fit_units, split_sentences, zeta

FIX = Path(__file__).parent / "fixtures"
SYNTHETIC = [t for t in RULER_TASKS if not t.startswith("qa_")]


@pytest.fixture(scope="module")
def tok(trained_tokenizer):
    return TextTokenizer(trained_tokenizer)


def _build(name, tok, length=1024, chat=False, **kw):
    cfg = RulerConfig(
        lengths=[length],
        num_samples=1,
        chat=chat,
        squad=str(FIX / "squad_v2_dev.json"),
        hotpotqa=str(FIX / "hotpotqa_dev.json"),
        **kw,
    )
    task = RulerTask(name, cfg)
    return task, task.build(task.plan()[0], tok, 8192)


def test_all_13_tasks_registered():
    assert len(RULER_TASKS) == 13


@pytest.mark.parametrize("name", SYNTHETIC)
def test_length_is_fitted_exactly(name, tok):
    task, s = _build(name, tok, 1024)
    total = tok.count(s.prompt) + task.tokens_to_generate
    assert total == s.meta["actual_length"] <= 1024
    # one more haystack unit would not fit: the fit is the largest possible
    assert total > 1024 - 80, (name, total)
    assert s.max_new_tokens == TEMPLATES[task.kind]["tokens_to_generate"]
    if task.kind in ("common_words_extraction", "freq_words_extraction"):
        assert s.prompt.endswith(TEMPLATES[task.kind]["answer_prefix"])
    # deterministic
    assert task.build(task.plan()[0], tok, 8192).prompt == s.prompt


def test_fit_units_finds_the_largest_fitting_count(tok):
    render = lambda n: ("word " * n, None, None)  # noqa: E731
    n, (text, _, _) = fit_units(render, tok, 300, start=7)
    assert tok.count(text) <= 300 < tok.count("word " * (n + 1))


@pytest.mark.parametrize(
    "name",
    [
        "niah_single_1",
        "niah_single_2",
        "niah_single_3",
        "niah_multikey_1",
        "niah_multikey_2",
        "niah_multikey_3",
        "niah_multivalue",
        "niah_multiquery",
    ],
)
def test_niah_needles_are_placed_and_answerable(name, tok):
    task, s = _build(name, tok, 2048)
    st = task.settings
    needles = s.meta["needles"]
    assert len(needles) == st["num_needle_k"] * st["num_needle_v"]
    for needle in needles:
        assert s.prompt.count(needle) == 1
    assert len(s.references) == st["num_needle_q"] * st["num_needle_v"]
    for (value,) in zip(s.references):
        # every answer is the value of a needle whose key is asked for
        holders = [n for n in needles if n.endswith(f" is: {value}.")]
        assert len(holders) == 1 and any(f" {q} is:" in holders[0] for q in s.meta["queries"])
    question = s.prompt.rsplit("\n", 1)[-1]
    for q in s.meta["queries"]:
        assert q in question
    if st["num_needle_q"] * st["num_needle_v"] == 1:
        assert "A special magic" in s.prompt and "What is the special magic" in s.prompt
    else:
        assert "Some special magic" in s.prompt
    if st["type_haystack"] == "essay":
        # RULER places needles by sentence count: needle k follows int(sentences * depth_k / 100) sentences
        context = s.prompt.split("afterwards.\n", 1)[1].rsplit("\nWhat ", 1)[0]

        def strip(text):
            for n in needles:
                text = text.replace(" " + n, "").replace(n + " ", "").replace(n, "")
            return text

        total = len(split_sentences(strip(context)))
        for needle, depth in zip(needles, s.meta["depths"]):
            before = strip(context[: context.index(needle)])
            assert len(split_sentences(before)) == int(total * depth / 100)
    else:
        lines = s.prompt.split("afterwards.\n", 1)[1].split("\n")
        assert sorted(i for i, line in enumerate(lines) if line in needles) == s.meta["needle_lines"]
    if st["type_haystack"] == "needle":  # distractors share the format but never a queried key
        others = [
            line for line in s.prompt.split("\n") if line.startswith("One of the special magic") and line not in needles
        ]
        assert len(others) > 10 and not any(f" {q} is:" in o for o in others for q in s.meta["queries"])


def test_vt_chain_is_answerable(tok):
    _, s = _build("vt", tok, 2048)
    assert len(s.references) == 5
    example, main = s.prompt.rsplit("Memorize and track", 1)  # the one-shot example comes first
    assert "VAR" in example and " = 12345" not in example  # current RULER re-draws the example's value
    value = re.search(r"assigned the value (\d+) in the text above", main).group(1)
    first = re.search(rf"VAR (\w+) = {value}", main).group(1)
    chain = [first]
    while len(chain) < 5:
        chain.append(re.search(rf"VAR (\w+) = VAR {chain[-1]}\b", main).group(1))
    assert chain == s.references
    assert s.prompt.endswith(f"5 variables are assigned the value {value}, they are: ")


def test_cwe_answers_are_the_most_common_words(tok):
    _, s = _build("cwe", tok, 2048, fewshot=False)
    listing = s.prompt.split("Memorize the ones that appear most often.\n", 1)[1].split("\nQuestion:")[0]
    words = re.findall(r"\d+\. (\S+)", listing)
    counts = Counter(words)
    top = {w for w, _ in counts.most_common(10)}
    assert set(s.references) == top
    assert min(counts[w] for w in s.references) > max(c for w, c in counts.items() if w not in top)


def test_fwe_answers_are_ranks_two_to_four(tok):
    _, s = _build("fwe", tok, 2048)
    text = s.prompt.split("coded words. ", 1)[1].split("\nQuestion:")[0]
    counts = Counter(text.split())
    ranked = [w for w, _ in counts.most_common()]
    assert ranked[0] == "..." and ranked[1:4] == s.references
    assert zeta(2.0) == pytest.approx(3.141592653589793**2 / 6, rel=1e-9)


@pytest.mark.parametrize("name", ["qa_1", "qa_2"])
def test_qa_contains_gold_documents(name, tok):
    _, s = _build(name, tok, 1024)
    assert s.meta["actual_length"] <= 1024
    docs = re.findall(r"Document (\d+):\n", s.prompt)
    assert [int(d) for d in docs] == list(range(1, s.meta["num_docs"] + 1))
    assert any(ref in s.prompt for ref in s.references) or s.references == ["yes"]
    assert s.meta["question"] in s.prompt and s.prompt.endswith(" Answer:")


def test_qa_missing_source_is_a_clear_error():
    with pytest.raises(ConfigError, match="qa_1 needs SQuAD v2.*data.squad"):
        RulerTask("qa_1", RulerConfig(lengths=[1024]))
    with pytest.raises(ConfigError, match="unknown RULER task 'niah_single_9'.*niah_single_1"):
        RulerTask("niah_single_9", RulerConfig(lengths=[1024]))


def test_chat_template_and_other_tokenizer(smol_tokenizer):
    tok = TextTokenizer(smol_tokenizer)
    task, s = _build("niah_single_1", tok, 1024, chat=True)
    assert s.prompt.startswith(tok.render_messages([{"role": "user", "content": "x"}])[:10])
    assert s.prompt.endswith("mentioned in the provided text is")
    assert tok.count(s.prompt) + 128 == s.meta["actual_length"] <= 1024
