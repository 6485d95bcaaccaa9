"""The gkamradt NIAH protocol pinned to gkamradt/LLMTest_NeedleInAHaystack as the needlehaystack 0.1.0 wheel runs
it: needlehaystack/run.py (needle, question, buffer; @03a1d3cb07d3ed8605ddb9c6dc25ea1976fb88e7),
llm_needle_haystack_tester.py (generate_context / insert_needle; @2b3fb9a60decdf17dce845e5b65e4e725af31fbd),
providers/openai.py (messages; @1a73e370b4c831f2765ab6ad2ed262ebcd55682d), evaluators/openai.py (rubric;
@186553d1f4e8ecece0a7cfb6454e81867af623fe) and langchain's labeled_score_string prompt. ChatQA 2's protocol stays
the default."""

from __future__ import annotations

import pytest

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError
from longkit.eval.haystack import paul_graham_text
from longkit.eval.judge import LLMJudge
from longkit.eval.needle_run import NeedleRunConfig, run_needles
from longkit.eval.tasks.niah import (
    CHATQA2_ANSWER,
    CHATQA2_NEEDLE,
    GKAMRADT_BUFFER,
    GKAMRADT_JUDGE_PROMPT,
    GKAMRADT_JUDGE_SYSTEM,
    GKAMRADT_MAX_TOKENS,
    GKAMRADT_NEEDLE,
    GKAMRADT_QUESTION,
    GKAMRADT_SYSTEM,
    Haystack,
    NIAHConfig,
    NIAHTask,
    PasskeyTask,
    gkamradt_context,
)


@pytest.fixture(scope="module")
def smol(smol_tokenizer):
    return TextTokenizer(smol_tokenizer)


@pytest.fixture(scope="module")
def essays(smol):
    return Haystack(paul_graham_text(), smol)


def test_official_strings():
    assert GKAMRADT_NEEDLE == (
        "\nThe best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.\n"
    )
    assert GKAMRADT_SYSTEM == (
        "You are a helpful AI bot that answers questions for a user. Keep your response short and direct"
    )
    assert (
        GKAMRADT_QUESTION.format(question="Q?")
        == "Q? Don't give information outside the document or repeat your findings"
    )
    assert (GKAMRADT_BUFFER, GKAMRADT_MAX_TOKENS) == (200, 300)
    # langchain SCORING_TEMPLATE_WITH_REFERENCE, criteria rendered as ScoreStringEvalChain does (key: rubric)
    assert GKAMRADT_JUDGE_SYSTEM == "You are a helpful assistant."
    text = GKAMRADT_JUDGE_PROMPT.format(reference="R", question="Q", prediction="P")
    assert text.startswith(
        "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response "
        "provided by an AI assistant to the user question displayed below. For this evaluation, you "
        "should primarily consider the following criteria:\naccuracy: \n                Score 1: The "
        "answer is completely unrelated to the reference.\n"
    )
    assert (
        "                Score 10: The answer is completely accurate and aligns perfectly with the reference.\n"
        "                Only respond with a numberical score\n[Ground truth]\nR\nBegin your evaluation by providing "
        "a short explanation."
    ) in text
    assert text.endswith(
        '"[[rating]]", for example: "Rating: [[5]]".\n\n[Question]\nQ\n\n'
        "[The Start of Assistant's Answer]\nP\n[The End of Assistant's Answer]"
    )


@pytest.mark.parametrize("depth", [0, 10, 37, 50, 99, 100])
def test_context_is_length_minus_buffer_with_the_needle_after_a_period(smol, essays, depth):
    length = 1500
    context, meta = gkamradt_context(essays, smol, GKAMRADT_NEEDLE, length, depth)
    needle_ids = smol.encode(GKAMRADT_NEEDLE)
    period = set(smol.encode("."))
    # haystack + needle are cut to length - 200 tokens; the wrapper is not counted here
    assert meta["context_tokens"] == length - 200 == meta["haystack_tokens"] + len(needle_ids)
    pos = meta["needle_token_offsets"][0]
    hay_ids = smol.encode(smol.decode(essays.take(length)[0].tolist()))[: meta["haystack_tokens"]]
    if depth == 100:
        assert pos == meta["haystack_tokens"] and context.endswith(GKAMRADT_NEEDLE)
    else:
        assert pos <= int(meta["haystack_tokens"] * depth / 100)
        assert pos == 0 or hay_ids[pos - 1] in period  # moved back to just after a '.' token
        # no '.' token between the chosen point and the target: it moved back to the nearest one
        assert not any(t in period for t in hay_ids[pos : int(meta["haystack_tokens"] * depth / 100)])
    assert context.count(CHATQA2_NEEDLE) == 1
    assert context.startswith(GKAMRADT_NEEDLE) == (pos == 0)


def test_task_builds_three_messages_and_caps_the_answer_at_the_window(smol):
    task = NIAHTask(
        NIAHConfig(
            lengths=[1200],
            depths=[50],
            haystack="paulgraham",
            protocol="gkamradt",
            needles=[GKAMRADT_NEEDLE],
            answer_budget=300,
        )
    )
    s = task.build(task.plan()[0], smol, 1200)
    assert [m["role"] for m in s.messages] == ["system", "user", "user"]
    assert s.messages[0]["content"] == GKAMRADT_SYSTEM
    assert s.messages[2]["content"] == (
        "What is the best thing to do in San Francisco? Don't give information outside "
        "the document or repeat your findings"
    )
    assert s.references == [GKAMRADT_NEEDLE]  # the judge grades against the needle itself
    prompt_tokens = smol.count(smol.render_messages(s.messages))
    assert prompt_tokens > 1200 - 200  # the system message and the question come on top of L - 200
    assert s.max_new_tokens == min(300, 1200 - prompt_tokens) == s.meta["answer_budget"]
    wide = task.build(task.plan()[0], smol, 8192)
    assert wide.max_new_tokens == 300
    # without a judge the score is keyword recall against ChatQA 2's answer, not the needle
    assert task.score(CHATQA2_ANSWER, s)["score"] == 1.0
    assert "gkamradt" in task.describe() and "the benchmark's own" in task.describe()


def test_protocol_is_checked_and_chatqa2_stays_the_default():
    assert NIAHConfig(lengths=[1], depths=[0]).protocol == "chatqa2"
    assert NeedleRunConfig().protocol == "chatqa2"
    with pytest.raises(ConfigError, match="--protocol"):
        NIAHTask(NIAHConfig(lengths=[1000], depths=[0], protocol="kamradt"))
    with pytest.raises(ConfigError, match="one needle"):
        NIAHTask(NIAHConfig(lengths=[1000], depths=[0], protocol="gkamradt", needles=["a.", "b."]))
    with pytest.raises(ConfigError, match="passkey"):
        PasskeyTask(NIAHConfig(lengths=[1000], depths=[0], protocol="gkamradt"))
    chatqa2 = NIAHTask(NIAHConfig(lengths=[1000], depths=[0]))
    assert "Protocol: chatqa2" in chatqa2.describe() and "differs from the official haystack" in chatqa2.describe()
    assert chatqa2.config.needles == [CHATQA2_NEEDLE]
    # each protocol's own defaults, wherever the task is built from (CLI, YAML, suite options)
    assert (chatqa2.config.haystack, chatqa2.config.answer_budget) == ("pydoc", 32)
    gk = NIAHTask(NIAHConfig(lengths=[1000], depths=[0], protocol="gkamradt"))
    assert (gk.config.haystack, gk.config.answer_budget) == ("auto", 300)
    assert gk.fingerprint()["haystack"] == "paulgraham"


def test_gkamradt_judge_prompt_through_a_backend(tiny_backend):
    judge = LLMJudge(tiny_backend, max_new_tokens=6, prompt=GKAMRADT_JUDGE_PROMPT, system=GKAMRADT_JUDGE_SYSTEM)
    scores = judge.score_batch(
        ["What is the best thing to do in San Francisco?"], ["Eat a sandwich."], [[GKAMRADT_NEEDLE]]
    )
    assert len(scores) == 1 and (scores[0] is None or 0.1 <= scores[0] <= 1.0)


def test_reports_name_protocol_and_haystack(tiny_backend, tmp_path):
    cfg = NeedleRunConfig(lengths=[600], depths=[0, 100], protocol="gkamradt", answer_budget=4, out=str(tmp_path / "g"))
    summary = run_needles(cfg, "niah", backend=tiny_backend, progress=False)
    assert "gkamradt" in summary["setup"] and "Paul Graham's essays" in summary["setup"]
    report = (tmp_path / "g" / "report.md").read_text()
    assert "gkamradt protocol" in report.splitlines()[0] and "Paul Graham's essays" in report
    cfg2 = NeedleRunConfig(lengths=[600], depths=[50], answer_budget=4, out=str(tmp_path / "c"))
    run_needles(cfg2, "niah", backend=tiny_backend, progress=False)
    report2 = (tmp_path / "c" / "report.md").read_text()
    assert "chatqa2 protocol" in report2.splitlines()[0]
    assert "Python's language reference" in report2 and "differs from the official haystack" in report2
