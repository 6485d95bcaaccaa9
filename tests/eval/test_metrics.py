"""Metric tests on hand-computed cases, one block per benchmark's official definition."""

from __future__ import annotations

import pytest

from longkit.eval import metrics as m


def test_squad_f1_and_exact_match():
    # pred [cat, sat] vs ref [cat, sat, down]: P=1, R=2/3 -> F1=0.8
    assert m.token_f1("the cat sat", ["a cat sat down"]) == pytest.approx(0.8)
    assert m.token_f1("the cat sat", ["dog", "a cat sat down"]) == pytest.approx(0.8)  # max over references
    assert m.exact_match("The Cat!", ["cat"]) == 1.0
    assert m.exact_match("cats", ["cat"]) == 0.0


def test_ruler_string_match():
    assert m.string_match_all("The numbers are 123 and 456", ["123", "456", "789"]) == pytest.approx(2 / 3)
    assert m.string_match_all("ABC", ["abc"]) == 1.0  # case-insensitive
    assert m.string_match_part("It is Paris.", ["paris", "Lyon"]) == 1.0
    assert m.string_match_part("Rome", ["paris", "Lyon"]) == 0.0


def test_rouge_and_scrolls_geometric_mean():
    pred, ref = "the cat sat on the mat", "the cat lay on the mat"
    r = m.rouge(pred, ref)
    # unigrams: the x2, cat, on, mat = 5 of 6; bigrams: the-cat, on-the, the-mat = 3 of 5; LCS 5 of 6
    assert r["rouge1"] == pytest.approx(5 / 6)
    assert r["rouge2"] == pytest.approx(3 / 5)
    assert r["rougeL"] == pytest.approx(5 / 6)
    assert m.rouge_lsum(pred, ["unrelated words", ref]) == pytest.approx(5 / 6)
    s = m.scrolls_rouge(pred, [ref])
    assert s["geometric_mean"] == pytest.approx(((5 / 6) * (3 / 5) * (5 / 6)) ** (1 / 3))
    assert m.scrolls_rouge("zzz", [ref])["geometric_mean"] == 0.0


def test_infinitebench_parsers():
    assert m.first_int("The pass key is 71432. Done 9") == "71432"
    assert m.first_int("no digits") == ""
    assert m.kv_retrieval_match('The value is "abc-123".', "abc-123") == 1.0
    assert m.kv_retrieval_match("abc-1234", "abc-123") == 0.0
    assert m.choice_match("B. because", ["some text", "B"]) == 1.0
    assert m.choice_match("I think the answer is: C", ["foo", "C"]) == 1.0
    assert m.choice_match("I think the answer is: C", ["foo", "A"]) == 0.0
    assert m.choice_match("It must be D", ["x", "D"]) == 1.0
    assert m.choice_match("It must be D", ["x", "A"]) == 0.0
    assert m.dialogue_name_match("It was John.", ["JOHN"]) == 1.0
    assert m.dialogue_name_match("It was Johnny.", ["JOHN"]) == 0.0


def test_lveval_keyword_gated_f1():
    # gate passes (paris is 1 of 1 keyword); F1: P=1/4 (capital is paris france), R=1 -> 0.4
    assert m.lveval_f1("The capital is Paris France", "Paris", "Paris") == pytest.approx(0.4)
    # the only shared keyword 'is' is blacklisted -> recall 0 < 0.2 -> 0, although F1 alone would be 2/3
    assert m.lveval_f1("it is in the city", "in the city", "of the light is") == 0.0
    assert m.lveval_f1("it is in the city", "in the city", None) == pytest.approx(2 / 3)


def test_chatrag_f1_unanswerable_handling():
    no = m.CHATRAG_NO_ANSWER
    # QuAC/DoQA: any refusal phrase becomes the no-answer sentence
    assert m.chatrag_f1("Sorry, I can't find it", [no], "quac") == 1.0
    assert m.chatrag_f1("Sorry, I can't find it", [no], "doqa_cooking") == 1.0
    # elsewhere it is plain token F1: [sorry,i,can,t,find,it] vs 8 tokens, 3 shared -> 3/7
    assert m.chatrag_f1("Sorry, I can't find it", [no], "doc2dial") == pytest.approx(3 / 7)
    # punctuation becomes a space (unlike SQuAD's removal)
    assert m.chatrag_normalize("U.S.A. rocks") == "u s rocks"
    assert m.normalize_answer("U.S.A. rocks") == "usa rocks"
    # INSCIT drops the no-answer sentence from its reference list
    assert m.chatrag_f1(no, ["the blue one", no], "inscit") == 0.0
    assert m.chatrag_f1("x", ["", "  "], "coqa") is None
    assert m.convfinqa_match("The answer is 1,234.5 million", "1234.5") == 1.0
    assert m.convfinqa_match("it rose 12.35 percent", "0.1235", question="what percent") == 1.0
    assert m.convfinqa_match("about 7", "1234.5") == 0.0


# ---------------------------------------------------------------------------------------------------
# Pinned to the official scorers (issue 12, items 12-19); each test names the source it follows.
# ---------------------------------------------------------------------------------------------------


def test_qa_f1_both_sides_empty_scores_zero():
    # THUDM/LongBench metrics.py@f6227eb7 f1_score and OpenBMB/InfiniteBench src/compute_scores.py@88b3daa6:
    # `if num_same == 0: return 0` -- 'the' vs 'the' normalise to nothing and share no token.
    assert m.token_f1("the", ["the"]) == 0.0
    assert m.token_f1("", ["an"]) == 0.0
    assert m.lveval_f1("the", "the") == 0.0


def test_longbench_rouge_l_is_the_rouge_package_definition():
    # THUDM/LongBench metrics.py@f6227eb7 rouge_score: Rouge().get_scores(...)["rouge-l"]["f"], 0 on any exception.
    # Case-sensitive: only 'is nice' is common -> P = R = 2/3 -> F = 2/3 (rouge's F carries a 1e-8 epsilon).
    assert m.longbench_rouge_l("Paris is nice", "paris is nice") == pytest.approx(2 / 3, abs=1e-6)
    assert m.rouge("Paris is nice", "paris is nice", ("rougeL",))["rougeL"] == pytest.approx(1.0)  # rouge_score differs
    assert m.longbench_rouge_l("", "a summary") == 0.0  # 'Hypothesis is empty' raised -> 0
    assert m.longbench_rouge_l("the cat sat", "the cat sat") == pytest.approx(1.0, abs=1e-6)


def test_longbench_summaries_score_with_the_official_rouge(tok_free_longbench_task):
    task, sample = tok_free_longbench_task
    assert task.score("Paris is nice", sample)["score"] == pytest.approx(2 / 3, abs=1e-6)
    assert task.score("", sample)["score"] == 0.0


@pytest.fixture
def tok_free_longbench_task(tmp_path):
    import json

    from longkit.eval.tasks.base import Sample
    from longkit.eval.tasks.longbench import LongBenchTask

    f = tmp_path / "qmsum.jsonl"
    f.write_text(json.dumps({"input": "q", "context": "c", "answers": ["paris is nice"], "_id": "1"}) + "\n")
    return LongBenchTask("qmsum", f), Sample(id="1", references=["paris is nice"], prompt="x")


def test_infinitebench_choice_strips_and_accepts_the_option_text():
    # OpenBMB/InfiniteBench src/compute_scores.py@88b3daa6 get_score_one_longbook_choice_eng: pred.strip(), then the
    # first letter, then `if pred in label` (label = [option text, letter]).
    labels = ["silver birch", "B"]
    assert m.choice_match(" B: silver birch", labels) == 1.0
    assert m.choice_match("  silver birch\n", labels) == 1.0
    assert m.choice_match(" A: oak", labels) == 0.0
    assert m.choice_match("   ", labels) == 0.0
    assert m.choice_match("silver birch tree", labels) == 0.0  # not the option text itself, no letter word


def test_passkey_digits_are_ascii_only():
    # InfiniteBench first_int_match splits on [^0-9]: Arabic-Indic and fullwidth digits are not digits
    assert m.first_int("\u0667\u0661\u0664\u0663\u0662 or 71432") == "71432"
    assert m.first_int("\uff17\uff11\uff14") == ""


def test_ruler_postprocess_pred_before_matching():
    # NVIDIA/RULER scripts/eval/evaluate.py postprocess_pred: strip, [\x00-\x1f] -> '\n', strip
    assert m.ruler_postprocess("  12\x0034\t \n") == "12\n34"
    assert m.string_match_all("a\x07b", ["a\nb"]) == 1.0
    assert m.string_match_part("x\x1fy", ["x\ny"]) == 1.0


def test_chatrag_order_of_operations_and_left_out_turns():
    no = m.CHATRAG_NO_ANSWER
    # one line first: the refusal phrase spans a line break in the raw output
    assert m.chatrag_f1("I can't\nfind that.", [no], "quac") == 1.0
    # '</S>' becomes '</s>' by lowercasing and is removed only after the refusal test:
    # 'can</s>not find' holds no phrase -> 'cannot find' vs 8 normalised answer tokens: P=1, R=1/4 -> 2/5
    # (removing '</s>' first, as before, left 'can s not find': 1/6)
    assert m.chatrag_f1("Can</S>not find", [no], "doqa_movies") == pytest.approx(2 / 5)
    assert m.chatrag_prediction("Ten</s> minutes\n", "coqa") == "Ten minutes"
    # no non-empty answer: None, left out of the mean (F1Metric.compute_all_pairs appends only when one remains)
    assert m.chatrag_f1("x", ["", " "], "doqa_cooking") is None
    assert m.chatrag_f1("x", [no], "inscit") is None


def test_convfinqa_gold_is_the_executed_answer():
    # get_scores.py evaluate_convfinqa: gold = exe_answer (a JSON number), str(gold) in the cleaned prediction
    assert m.convfinqa_match("the change is 20", 20.0, "subtract(120, 100)") == 1.0  # 20.0 ends with .0 -> '20'
    assert m.convfinqa_match("subtract(120, 100)", 20.0, "subtract(120, 100)") == 1.0  # the formula
    assert m.convfinqa_match("it changed by -10.0 percent", -0.1, question="what percent") == 1.0  # str(gold * 100)
    assert m.convfinqa_match("it fell 10.0 percent", -0.1, question="what percent") == 0.0  # the sign is compared
    assert m.convfinqa_match("a decrease of 10", -10, question="how much") == 1.0  # -1 * gold = 10
    assert m.convfinqa_match("about 7", 20.0, "subtract(120, 100)") == 0.0


def test_scrolls_qmsum_corpus_score_is_geometric_mean_of_corpus_means():
    # SCROLLS: average ROUGE-1/2/L over the corpus first, then the geometric mean of the three
    perfect = m.scrolls_rouge("the cat sat on the mat", ["the cat sat on the mat"])
    partial = m.scrolls_rouge("mat the on sat cat", ["the cat sat on the mat"])
    assert perfect["geometric_mean"] == pytest.approx(1.0) and partial["rouge2"] == 0.0
    per_sample_mean = (perfect["geometric_mean"] + partial["geometric_mean"]) / 2
    corpus = m.scrolls_corpus_score(
        [perfect["rouge1"], partial["rouge1"]],
        [perfect["rouge2"], partial["rouge2"]],
        [perfect["rougeL"], partial["rougeL"]],
    )
    r1, r2, rl = (1 + partial["rouge1"]) / 2, 0.5, (1 + partial["rougeL"]) / 2
    assert per_sample_mean == pytest.approx(0.5)
    assert corpus == pytest.approx((r1 * r2 * rl) ** (1 / 3)) and corpus > 0.6


def test_chatqa2_passkey_parses_ascii_digits_like_infinitebench():
    from longkit.eval.tasks.base import Sample
    from longkit.eval.tasks.niah import NIAHConfig, PasskeyTask

    task = PasskeyTask(NIAHConfig(lengths=[1024], depths=[50.0]))
    s = Sample(id="x", references=["71432"], prompt="p")
    assert task.score("The pass key is 71432.", s)["score"] == 1.0
    # '\d' would read the Arabic-Indic digits first; InfiniteBench's [^0-9] split skips them
    assert task.score("\u0661\u0662 then 71432", s)["score"] == 1.0
    assert task.score("\uff17\uff11\uff14\uff13\uff12", s)["score"] == 0.0
