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


# ---------------------------------------------------------------------------------------------------
# RULER (scripts/eval/synthetic/constants.py): case-insensitive substring matches, per sample in [0, 1]
# ---------------------------------------------------------------------------------------------------


def string_match_all(prediction: str, references: Sequence[str]) -> float:
    """RULER's string_match_all: the fraction of references found (case-insensitive) in the prediction."""
    if not references:
        return 0.0
    low = prediction.lower()
    return sum(1.0 for r in references if r.lower() in low) / len(references)


def string_match_part(prediction: str, references: Sequence[str]) -> float:
    """RULER's string_match_part (QA tasks): 1 if any reference occurs (case-insensitive) in the prediction."""
    low = prediction.lower()
    return max((1.0 if r.lower() in low else 0.0 for r in references), default=0.0)


# ---------------------------------------------------------------------------------------------------
# ROUGE through Google's rouge_score package (what HF `evaluate` and the SCROLLS metric call)
# ---------------------------------------------------------------------------------------------------

_SCORERS: dict[tuple[tuple[str, ...], bool], object] = {}


def _scorer(types: tuple[str, ...], stemmer: bool):  # noqa: ANN202
    key = (types, stemmer)
    if key not in _SCORERS:
        from rouge_score import rouge_scorer

        _SCORERS[key] = rouge_scorer.RougeScorer(list(types), use_stemmer=stemmer)
    return _SCORERS[key]


def rouge(prediction: str, reference: str, types: Sequence[str] = ("rouge1", "rouge2", "rougeL", "rougeLsum"),
          use_stemmer: bool = False) -> dict[str, float]:
    """ROUGE F-measures (0-1) of one prediction against one reference, as rouge_score computes them."""
    scores = _scorer(tuple(types), use_stemmer).score(reference, prediction)  # type: ignore[attr-defined]
    return {k: float(v.fmeasure) for k, v in scores.items()}


def rouge_lsum(prediction: str, references: Sequence[str]) -> float:
    """InfiniteBench En.Sum: ROUGE-Lsum F-measure (evaluate's 'rouge', no stemmer), max over references."""
    return max((rouge(prediction, r, ("rougeLsum",))["rougeLsum"] for r in references), default=0.0)


_SENT_END = re.compile(r"(?<=[.!?])\s+")


def _sentence_lines(text: str) -> str:
    # SCROLLS joins nltk sentences with newlines before scoring; only ROUGE-Lsum depends on it.
    return "\n".join(s for s in _SENT_END.split(text.strip()) if s)


def scrolls_rouge(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """SCROLLS summarisation score (QMSum, GovReport): ROUGE-1/2/L/Lsum, each the max over references, and
    their 'geometric_mean' of ROUGE-1, ROUGE-2 and ROUGE-L (no stemmer, sentences split to lines)."""
    types = ("rouge1", "rouge2", "rougeL", "rougeLsum")
    best = dict.fromkeys(types, 0.0)
    pred = _sentence_lines(prediction)
    for ref in references:
        s = rouge(pred, _sentence_lines(ref), types)
        for k in types:
            best[k] = max(best[k], s[k])
    g = best["rouge1"] * best["rouge2"] * best["rougeL"]
    best["geometric_mean"] = g ** (1.0 / 3.0) if g > 0 else 0.0
    return best


# ---------------------------------------------------------------------------------------------------
# InfiniteBench answer parsers (src/compute_scores.py)
# ---------------------------------------------------------------------------------------------------


def first_int(prediction: str) -> str:
    """The first run of digits in a prediction ('' if none): InfiniteBench's passkey/number_string parse."""
    for item in re.split(r"[^0-9]", prediction):
        if item:
            return item
    return ""


def _split_words(prediction: str, chars: str = "\n:\"'.,?!{}") -> list[str]:
    for c in chars:
        prediction = prediction.replace(c, " ")
    return prediction.split()


def kv_retrieval_match(prediction: str, label: str) -> float:
    """InfiniteBench kv_retrieval: 1 if the value appears as a word once punctuation is blanked out."""
    return float(label in _split_words(prediction))


def dialogue_name_match(prediction: str, labels: Sequence[str]) -> float:
    """InfiniteBench En.Dia: 1 if the first label (a character name, upper case) is a word of the prediction."""
    if not labels:
        return 0.0
    return float(labels[0] in [w.upper() for w in _split_words(prediction)])


def choice_match(prediction: str, labels: Sequence[str]) -> float:
    """InfiniteBench En.MC: labels hold the option text and its letter; the answer is read from the
    first character, then 'answer is:'-style prefixes, then the first standalone A-D word."""
    if prediction and prediction[0] in "ABCD":
        return float(prediction[0] in labels)
    for c in "\n\"'.,?!{}":
        prediction = prediction.replace(c, " ")
    while "  " in prediction:
        prediction = prediction.replace("  ", " ")
    for prefix in ("answer is:", "answer:", "answer is", "option is"):
        idx = prediction.find(prefix)
        if idx == -1:
            continue
        if len(prediction) < idx + len(prefix) + 1:
            return 0.0
        after = prediction[idx + len(prefix) + 1:]
        return float(any(after.startswith(s) for s in labels))
    for word in prediction.split():
        if word in "ABCD":  # a substring test, as in the official scorer
            return float(word in labels)
    return 0.0


# ---------------------------------------------------------------------------------------------------
# LV-Eval (metrics.py): keyword-recall-gated F1 with a blacklist of function words
# ---------------------------------------------------------------------------------------------------

LVEVAL_BLACKLIST_EN = frozenset(
    "and to of in her was with for it from is that his he by she they or at because be on are their what as "
    "had were about being this who but have has when which does".split()
)


def lveval_f1(prediction: str, answer: str, keywords: str | None = None) -> float:
    """LV-Eval's qa_f1_score_with_gold_ans: 0 when fewer than 20% of the answer keywords (blacklisted words
    not counted as hits) are in the prediction, else SQuAD token F1 against the answer."""
    pred = normalize_answer(prediction).split()
    ref = normalize_answer(answer).split()
    if keywords:
        kw = normalize_answer(keywords).split()
        common = Counter(pred) & Counter(kw)
        hits = sum(v for k, v in common.items() if k not in LVEVAL_BLACKLIST_EN)
        if not kw or hits / len(kw) < 0.2:
            return 0.0
    if not pred or not ref:
        return 0.0
    return _f1_tokens(pred, ref)


# ---------------------------------------------------------------------------------------------------
# ChatRAG Bench (ChatQA evaluation_utils.py / get_scores.py)
# ---------------------------------------------------------------------------------------------------

CHATRAG_NO_ANSWER = "Sorry. I cannot find the answer based on the context."
CHATRAG_UNANSWERABLE_PHRASES = (
    "cannot find", "can't find", "not able to", "unable to", "does not provide", "cannot provide", "cannot answer",
    "couldnot answer", "can't answer", "couldn't answer", "cannot be found", "cannot be determined", "do not have",
    "couldn't find", "no information", "does not mention", "doesn't mention", "not explicitly mentioned",
    "not explicitly explain", "can not find", "could not find", "does not specify", "doesn't provide",
    "doesn't specify", "there is no", "not mentioned", "don't have", "don't know", "does not include",
    "doesn't include", "does not contain", "doesn't contain", "not provided", "does not indicate",
    "doesn't indicate", "does not disclose", "doesn't disclose",
)
_CR_ART = re.compile(r"\b(a|an|the)\b")
_CR_PUNC = re.compile(r"[!\"#$%&()*+,-./:;<=>?@\[\]\\^`{|}~_']")


def chatrag_normalize(text: str) -> str:
    """ChatRAG Bench (ParlAI) normalisation: lowercase, punctuation becomes a space, drop articles."""
    text = _CR_PUNC.sub(" ", text.lower())
    text = _CR_ART.sub(" ", text)
    return " ".join(text.split())


def chatrag_f1(prediction: str, answers: Sequence[str], dataset: str = "") -> float | None:
    """ChatRAG Bench F1 for one turn: max token F1 over non-empty answers (None when there are none).

    QuAC and DoQA map any prediction containing an 'unanswerable' phrase to the benchmark's no-answer
    sentence, so a refusal scores 1 on unanswerable turns; INSCIT drops that sentence from its answers."""
    pred = prediction.strip().replace("</s>", "")
    name = dataset.lower()
    if name.startswith(("quac", "doqa")):
        low = pred.lower()
        if any(p in low for p in CHATRAG_UNANSWERABLE_PHRASES):
            pred = CHATRAG_NO_ANSWER
        else:
            pred = low
    refs = [a.strip() for a in answers if a.strip()]
    if name.startswith("inscit"):
        refs = [a for a in refs if a != CHATRAG_NO_ANSWER] or refs
    if not refs:
        return None
    if not pred:
        return 0.0
    p = chatrag_normalize(pred).split()
    scores = []
    for r in refs:
        rt = chatrag_normalize(r).split()
        scores.append(_f1_tokens(p, rt) if p and rt else 0.0)
    return max(scores)


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def convfinqa_match(prediction: str, answer: str, formula: str = "", question: str = "") -> float:
    """ChatRAG Bench ConvFinQA accuracy: the gold number (or formula, rounded or as a percent) in the prediction."""
    pred = prediction.replace(",", "").replace("$", "").replace("million", "").replace("billion", "")
    pred = " ".join(re.sub(r"\((\b\w+\b)\)", "", pred).split())
    gold = str(answer)
    if gold in pred or (formula and formula in pred):
        return 1.0
    if _is_float(gold):
        g = float(gold)
        if str(round(g, 3)) in pred or str(round(g, 2)) in pred:
            return 1.0
        if "percent" in question and any(s in pred for s in (str(g * 100), str(round(g * 100, 1)), str(round(g * 100, 2)))):
            return 1.0
        if gold.endswith(".0") and str(int(g)) in pred:
            return 1.0
        if "decrease" in pred and g < 0 and str(-1 * g) in pred:
            return 1.0
    return 0.0
