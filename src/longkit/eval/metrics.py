"""Answer-scoring metrics, each following its benchmark's official definition."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _f1_tokens(pred: list[str], ref: list[str]) -> float:
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred)
    recall = same / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD token F1 between normalised prediction and each reference; the max over references."""
    pred = normalize_answer(prediction).split()
    scores = []
    for ref in references:
        ref_toks = normalize_answer(ref).split()
        if not pred and not ref_toks:
            scores.append(1.0)
        elif not pred or not ref_toks:
            scores.append(0.0)
        else:
            scores.append(_f1_tokens(pred, ref_toks))
    return max(scores, default=0.0)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """SQuAD exact match after normalisation; 1.0 if any reference matches."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(r) for r in references))


def substring_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 if any reference occurs in the prediction (case-insensitive)."""
    low = prediction.lower()
    return float(any(r.lower() in low for r in references))


_STOPWORDS = frozenset(
    "a an the and or but of in on at to for with by from is are was were be been being it its this that "
    "these those as do does did".split()
)


def keywords(text: str) -> list[str]:
    """Content words of an answer: normalised tokens without stop words (all tokens if none remain)."""
    toks = normalize_answer(text).split()
    kept = [t for t in toks if t not in _STOPWORDS]
    return kept or toks


def keyword_recall(prediction: str, references: Sequence[str]) -> float:
    """Fraction of the references' keywords that occur in the normalised prediction (all references pooled)."""
    pred = set(normalize_answer(prediction).split())
    kws = [k for ref in references for k in keywords(ref)]
    if not kws:
        return 0.0
    return sum(k in pred for k in kws) / len(kws)
