import numpy as np
import pytest

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.haystack import load_haystack
from longkit.eval.judge import LLMJudge, parse_rating
from longkit.eval.tasks.niah import (
    CHATQA2_NEEDLE,
    Haystack,
    NeedleSpec,
    NIAHConfig,
    NIAHTask,
    PasskeyTask,
    insert_needles,
    sentence_boundary,
)


@pytest.fixture(params=["smol_tokenizer", "trained_tokenizer"])
def tok(request):
    return TextTokenizer(request.getfixturevalue(request.param))


@pytest.mark.parametrize("chat", [False, True])
@pytest.mark.parametrize("length", [1000, 3000])
def test_needle_lands_at_sentence_boundary_and_length_fits(tok, chat, length):
    hay = Haystack(load_haystack("pydoc"), tok)
    spec = NeedleSpec([CHATQA2_NEEDLE], "What is the best thing to do in San Francisco?", ["eat a sandwich"])
    for depth in (0, 10, 37, 50, 100):
        user, meta = insert_needles(hay, tok, spec, length, depth, "question-after", 32, chat)
        # total = prompt (with chat template when asked) + answer budget, within 1% of the target
        rendered = tok.render_messages([{"role": "user", "content": user}]) if chat else user
        total = tok.count(rendered) + 32
        assert total == meta["actual_length"]
        assert abs(total - length) <= 0.01 * length
        # the needle sits where the meta says: the largest sentence boundary at or before depth * budget
        budget = meta["haystack_tokens"]
        ids, ends = hay.take(budget)
        pos = meta["needle_token_offsets"][0]
        assert pos == sentence_boundary(ends, int(round(depth / 100 * budget)))
        assert pos <= round(depth / 100 * budget)
        if pos > 0:
            assert tok.decode([int(ids[pos - 1])]).rstrip(" ").endswith((".", "!", "?", "\n"))
        before = user.split(CHATQA2_NEEDLE)[0]
        assert user.count(CHATQA2_NEEDLE) == 1
        assert abs(tok.count(before) - pos) <= 3  # re-tokenising at the cut may merge a token or two


def test_multi_needle_spreads_needles_after_depth(smol_tokenizer):
    tok = TextTokenizer(smol_tokenizer)
    hay = Haystack(load_haystack("pydoc"), tok)
    needles = [
        "Figs are one secret pizza ingredient.",
        "Prosciutto is another secret pizza ingredient.",
        "Goat cheese is the third secret pizza ingredient.",
    ]
    spec = NeedleSpec(needles, "What are the secret pizza ingredients?", ["figs", "prosciutto", "goat cheese"])
    user, meta = insert_needles(hay, tok, spec, 2000, 20, "question-both", 32, False)
    offsets = meta["needle_token_offsets"]
    assert offsets == sorted(offsets) and len(set(offsets)) == 3
    assert [user.index(n) for n in needles] == sorted(user.index(n) for n in needles)
    assert user.count("What are the secret pizza ingredients?") == 2
    assert meta["actual_depths"][0] <= 20 < meta["actual_depths"][1] < meta["actual_depths"][2]


def test_scorers():
    task = NIAHTask(NIAHConfig(lengths=[1000], depths=[50]))
    sample = type("S", (), {"references": ["eat a sandwich and sit in Dolores Park on a sunny day"]})()
    full = task.score("You should eat a sandwich and sit in Dolores Park on a sunny day.", sample)
    # `contains_all` (formerly `exact`): every answer occurs in the normalised prediction, not an exact match
    assert full == {"score": 1.0, "keyword_recall": 1.0, "contains_all": 1.0}
    half = task.score("Eat a sandwich in the park.", sample)
    # keywords: eat sandwich sit dolores park sunny day -> eat, sandwich, park recalled = 3/7
    assert half["keyword_recall"] == pytest.approx(3 / 7) and half["contains_all"] == 0.0
    assert task.score("Visit the Golden Gate Bridge.", sample)["score"] == 0.0
    pk = PasskeyTask(NIAHConfig(lengths=[1000], depths=[50]))
    s2 = type("S", (), {"references": ["48213"]})()
    assert pk.score("The pass key is 48213.", s2)["score"] == 1.0
    assert pk.score("It is 1 of 48213", s2) == {"score": 0.0, "exact": 0.0, "contains": 1.0}


def test_passkeys_are_seeded_and_differ_per_cell(smol_tokenizer):
    shared = NIAHConfig(lengths=[600, 900], depths=[0, 50])
    task = PasskeyTask(shared, key_digits=6)
    assert shared.needles == [CHATQA2_NEEDLE]  # the caller's config is left as it was
    keys = [task.needle_spec(s).answers[0] for s in task.plan()]
    again = PasskeyTask(NIAHConfig(lengths=[600, 900], depths=[0, 50]), key_digits=6)
    assert keys == [again.needle_spec(s).answers[0] for s in again.plan()]
    assert len(set(keys)) == 4 and all(len(k) == 6 for k in keys)
    sample = task.build(task.plan()[1], TextTokenizer(smol_tokenizer), 8192)
    text = sample.messages[0]["content"]
    assert f"The pass key is {keys[1]}. Remember it. {keys[1]} is the pass key." in text
    assert sample.meta["question"] == "What is the pass key?"


def test_llm_judge_through_a_backend(tiny_backend):
    assert parse_rating("Rating: [[8]]") == 8.0
    assert parse_rating("I'd say 7 out of 10") == 7.0
    assert parse_rating("no idea") is None
    assert parse_rating("[[42]]") is None
    scores = LLMJudge(tiny_backend).score_batch(["q?"], ["an answer"], [["the answer"]])
    assert len(scores) == 1 and (scores[0] is None or 0.1 <= scores[0] <= 1.0)


def test_bad_inputs(tmp_path):
    with pytest.raises(ConfigError, match="outside 0-100"):
        NIAHTask(NIAHConfig(lengths=[1000], depths=[-5]))
    with pytest.raises(InputError, match="no .txt files"):
        load_haystack(str(tmp_path))
    (tmp_path / "a.txt").write_text("   \n")
    with pytest.raises(InputError, match="empty"):
        load_haystack(str(tmp_path))
    with pytest.raises(ConfigError, match="template"):
        NIAHTask(NIAHConfig(lengths=[500], depths=[0], template="no placeholders"))


def test_haystack_dir_and_sentence_flags(tmp_path, smol_tokenizer):
    (tmp_path / "b.txt").write_text("Second file. It ends here!")
    (tmp_path / "a.txt").write_text("First file comes first? Yes.")
    text = load_haystack(str(tmp_path))
    assert text.index("First file") < text.index("Second file")
    tok = TextTokenizer(smol_tokenizer)
    hay = Haystack(text, tok)
    pieces = [tok.decode([int(t)]) for t in hay.ids]
    flagged = [p for p, e in zip(pieces, hay.sentence_end) if e]
    assert all(p.rstrip(" ").endswith((".", "!", "?", "\n")) for p in flagged)
    assert sum(p.strip() in {".", "?", "!"} or p.strip().endswith((".", "?", "!")) for p in flagged) == 4
    ids, ends = hay.take(len(hay.ids) * 2 + 1)
    assert len(ids) == len(hay.ids) * 2 + 1 and np.array_equal(ids[: len(hay.ids)], hay.ids)
