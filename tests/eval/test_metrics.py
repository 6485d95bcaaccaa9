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
