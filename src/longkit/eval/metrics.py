"""Answer-scoring metrics, each following its benchmark's official definition."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

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
    """QA token F1 of the normalised prediction, the max over references (LongBench/InfiniteBench/SCROLLS/LV-Eval).

    No shared token scores 0, so a prediction and a reference that both normalise to nothing ('the' vs 'the')
    score 0 as in every long-context benchmark's f1_score (`if num_same == 0: return 0`): THUDM/LongBench
    metrics.py@f6227eb7a25cacbd96310aea2c59af003f8d8925, OpenBMB/InfiniteBench
    src/compute_scores.py@88b3daa6989da2fbe0077170d7a3c84c25d5ae58. (SQuAD v2's own script would give 1.)"""
    pred = normalize_answer(prediction).split()
    return max((_f1_tokens(pred, normalize_answer(ref).split()) for ref in references), default=0.0)


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
# RULER (NVIDIA/RULER scripts/eval/synthetic/constants.py and scripts/eval/evaluate.py, main): the prediction
# goes through postprocess_pred, then case-insensitive substring matches, per sample in [0, 1]
# ---------------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f]")


def ruler_postprocess(prediction: str) -> str:
    """RULER's postprocess_pred: strip, every ASCII control character becomes a newline, strip again."""
    return _CONTROL.sub("\n", prediction.strip()).strip()


def string_match_all(prediction: str, references: Sequence[str]) -> float:
    """RULER's string_match_all: the fraction of references found (case-insensitive) in the prediction."""
    if not references:
        return 0.0
    low = ruler_postprocess(prediction).lower()
    return sum(1.0 for r in references if r.lower() in low) / len(references)


def string_match_part(prediction: str, references: Sequence[str]) -> float:
    """RULER's string_match_part (QA tasks): 1 if any reference occurs (case-insensitive) in the prediction."""
    low = ruler_postprocess(prediction).lower()
    return max((1.0 if r.lower() in low else 0.0 for r in references), default=0.0)


# ---------------------------------------------------------------------------------------------------
# ROUGE through Google's rouge_score package (what HF `evaluate` and the SCROLLS metric call)
# ---------------------------------------------------------------------------------------------------

_SCORERS: dict[tuple[tuple[str, ...], bool], Any] = {}


def _scorer(types: tuple[str, ...], stemmer: bool) -> Any:  # a rouge_score RougeScorer (the package is untyped)
    key = (types, stemmer)
    if key not in _SCORERS:
        from rouge_score import rouge_scorer

        _SCORERS[key] = rouge_scorer.RougeScorer(list(types), use_stemmer=stemmer)
    return _SCORERS[key]


def rouge(
    prediction: str,
    reference: str,
    types: Sequence[str] = ("rouge1", "rouge2", "rougeL", "rougeLsum"),
    use_stemmer: bool = False,
) -> dict[str, float]:
    """ROUGE F-measures (0-1) of one prediction against one reference, as rouge_score computes them."""
    scores = _scorer(tuple(types), use_stemmer).score(reference, prediction)
    return {k: float(v.fmeasure) for k, v in scores.items()}


def rouge_lsum(prediction: str, references: Sequence[str]) -> float:
    """InfiniteBench En.Sum: ROUGE-Lsum F-measure (evaluate's 'rouge', no stemmer), max over references."""
    return max((rouge(prediction, r, ("rougeLsum",))["rougeLsum"] for r in references), default=0.0)


def longbench_rouge_l(prediction: str, reference: str) -> float:
    """LongBench's rouge_score (gov_report, qmsum): the `rouge` package's rouge-l F-measure, 0 when it raises.

    THUDM/LongBench metrics.py@f6227eb7a25cacbd96310aea2c59af003f8d8925: `Rouge().get_scores([pred], [gt],
    avg=True)["rouge-l"]["f"]` in a bare try/except returning 0.0. That package is case-sensitive and splits on
    whitespace after its own cleaning, so 'Paris is nice' vs 'paris is nice' is 2/3 (Google's rouge_score
    would give 1); an empty prediction raises 'Hypothesis is empty' and scores 0."""
    from rouge import Rouge

    try:
        scores = Rouge().get_scores([prediction], [reference], avg=True)
    except Exception:  # noqa: BLE001 -- the official scorer's bare except: any failure scores 0
        return 0.0
    return float(scores["rouge-l"]["f"])


_SENT_END = re.compile(r"(?<=[.!?])\s+")


def _sentence_lines(text: str) -> str:
    # SCROLLS joins nltk sentences with newlines before scoring; only ROUGE-Lsum depends on it.
    return "\n".join(s for s in _SENT_END.split(text.strip()) if s)


def scrolls_rouge(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """SCROLLS summarisation scores of one sample (QMSum, GovReport): ROUGE-1/2/L/Lsum, each the max over
    references, and this sample's 'geometric_mean' of ROUGE-1, ROUGE-2 and ROUGE-L (no stemmer, sentences split
    to lines). The benchmark's reported score is not the mean of these per-sample geometric means but
    `scrolls_corpus_score` of the corpus-averaged ROUGE-1/2/L."""
    types = ("rouge1", "rouge2", "rougeL", "rougeLsum")
    best = dict.fromkeys(types, 0.0)
    pred = _sentence_lines(prediction)
    for ref in references:
        s = rouge(pred, _sentence_lines(ref), types)
        for k in types:
            best[k] = max(best[k], s[k])
    best["geometric_mean"] = geometric_mean([best["rouge1"], best["rouge2"], best["rougeL"]])
    return best


def geometric_mean(values: Sequence[float]) -> float:
    """The geometric mean (0 when any value is 0)."""
    prod = 1.0
    for v in values:
        if v <= 0:
            return 0.0
        prod *= v
    return prod ** (1.0 / len(values)) if values else 0.0


def scrolls_corpus_score(rouge1: Sequence[float], rouge2: Sequence[float], rougeL: Sequence[float]) -> float:
    """SCROLLS's reported QMSum/GovReport score: the geometric mean of the corpus-averaged ROUGE-1, ROUGE-2 and
    ROUGE-L (tau/scrolls metrics/scrolls.py on the Hub and tau-nlp/scrolls
    evaluator/dataset_evaluator.py@c672c8b457ad8003659ddf6b7985ddc7c46a277e: the rouge metric averages over
    samples first; the score is then (R1 * R2 * RL) ** (1/3))."""
    if not rouge1:
        return 0.0
    n = len(rouge1)
    return geometric_mean([sum(rouge1) / n, sum(rouge2) / n, sum(rougeL) / n])


def mean_of_scores(scores: Sequence[dict[str, float]]) -> float:
    """The mean of per-sample 'score' values (0 for no samples): how most benchmarks aggregate."""
    return sum(x.get("score", 0.0) for x in scores) / len(scores) if scores else 0.0


def mean_of_judged(scores: Sequence[dict[str, float]]) -> float:
    """The mean 'score' of the samples an LLM judge scored (HELMET's GPT-4 scripts leave out a sample whose judge
    reply has no usable JSON): samples with judged_ok 0 are left out; without judged_ok at all (no judge ran), the
    plain mean; NaN when the judge scored none."""
    if not any("judged_ok" in x for x in scores):
        return mean_of_scores(scores)
    kept = [x.get("score", 0.0) for x in scores if x.get("judged_ok")]
    return sum(kept) / len(kept) if kept else float("nan")


def helmet_cite(scores: Sequence[dict[str, float]]) -> float:
    """One ALCE task's share of HELMET's Cite average (scripts/collect_results.py): the mean of its correctness column
    ('str_em' or 'qampari_rec_top5', over every sample) and eval_alce.py's citation recall and precision (over the
    samples that had a sentence to check, 'cited' 1; 0 when none had); NaN when no NLI judge ran ('cited' absent)."""
    if not any("cited" in x for x in scores):
        return float("nan")
    correct = [x.get("str_em", x.get("qampari_rec_top5", 0.0)) for x in scores]
    kept = [x for x in scores if x.get("cited")]
    rec = sum(x.get("citation_rec", 0.0) for x in kept) / len(kept) if kept else 0.0
    prec = sum(x.get("citation_prec", 0.0) for x in kept) / len(kept) if kept else 0.0
    return (sum(correct) / len(correct) + rec + prec) / 3


def corpus_rouge_geomean(scores: Sequence[dict[str, float]]) -> float:
    """scrolls_corpus_score of per-sample ROUGE-1/2/L scores (their 'rouge1', 'rouge2', 'rougeL' keys)."""
    return scrolls_corpus_score(
        [x.get("rouge1", 0.0) for x in scores],
        [x.get("rouge2", 0.0) for x in scores],
        [x.get("rougeL", 0.0) for x in scores],
    )


def corpus_perplexity(scores: Sequence[dict[str, float]]) -> float:
    """exp(summed negative log-likelihood / scored tokens) over windows with 'nll' and 'tokens' (a corpus's
    perplexity: every token weighs the same, however the windows divide them)."""
    tokens = sum(x.get("tokens", 0.0) for x in scores)
    return math.exp(math.fsum(x.get("nll", 0.0) for x in scores) / tokens) if tokens else float("nan")


# How a task's per-sample scores become its number, by the name a task declares (`spec.Metric.aggregation`):
# the function and how reports describe it.
AGGREGATIONS: dict[str, tuple[Callable[[Sequence[dict[str, float]]], float], str]] = {
    "mean": (mean_of_scores, "mean of per-sample scores"),
    "mean_judged": (mean_of_judged, "mean of the per-sample scores the judge could give"),
    "helmet_cite": (helmet_cite, "mean of the correctness column and the judged citation recall and precision"),
    "corpus_rouge_geomean": (corpus_rouge_geomean, "geometric mean of corpus-mean ROUGE-1/2/L"),
    "perplexity": (corpus_perplexity, "exp of the token-weighted mean loss"),
}


# ---------------------------------------------------------------------------------------------------
# InfiniteBench answer parsers (src/compute_scores.py)
# ---------------------------------------------------------------------------------------------------


def first_int(prediction: str) -> str:
    """The first run of ASCII digits in a prediction ('' if none): InfiniteBench's first_int_match
    (src/compute_scores.py@88b3daa6989da2fbe0077170d7a3c84c25d5ae58 splits on `[^0-9]`, so Arabic-Indic or
    fullwidth digits are not digits, unlike `\\d`)."""
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
    """InfiniteBench En.MC (get_score_one_longbook_choice_eng, OpenBMB/InfiniteBench
    src/compute_scores.py@88b3daa6989da2fbe0077170d7a3c84c25d5ae58): labels hold the option text and its letter.

    The stripped prediction is read from its first character (A-D), else accepted when it equals a label
    (the option text itself), else after an 'answer is:'-style prefix, else the first standalone A-D word."""
    prediction = prediction.strip()
    if not prediction:
        return 0.0
    if prediction[0] in "ABCD":
        return float(prediction[0] in labels)
    if prediction in labels:
        return 1.0
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
        after = prediction[idx + len(prefix) + 1 :]
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
    "cannot find",
    "can't find",
    "not able to",
    "unable to",
    "does not provide",
    "cannot provide",
    "cannot answer",
    "couldnot answer",
    "can't answer",
    "couldn't answer",
    "cannot be found",
    "cannot be determined",
    "do not have",
    "couldn't find",
    "no information",
    "does not mention",
    "doesn't mention",
    "not explicitly mentioned",
    "not explicitly explain",
    "can not find",
    "could not find",
    "does not specify",
    "doesn't provide",
    "doesn't specify",
    "there is no",
    "not mentioned",
    "don't have",
    "don't know",
    "does not include",
    "doesn't include",
    "does not contain",
    "doesn't contain",
    "not provided",
    "does not indicate",
    "doesn't indicate",
    "does not disclose",
    "doesn't disclose",
)
_CR_ART = re.compile(r"\b(a|an|the)\b")
_CR_PUNC = re.compile(r"[!\"#$%&()*+,-./:;<=>?@\[\]\\^`{|}~_']")


def chatrag_normalize(text: str) -> str:
    """ChatRAG Bench (ParlAI) normalisation: lowercase, punctuation becomes a space, drop articles."""
    text = _CR_PUNC.sub(" ", text.lower())
    text = _CR_ART.sub(" ", text)
    return " ".join(text.split())


def chatrag_prediction(prediction: str, dataset: str = "") -> str:
    """A prediction as ChatRAG Bench scores it: on one line (ChatQA writes one prediction per line, newlines
    as spaces, read back stripped); for QuAC and DoQA lowercased and, when it holds an 'unanswerable' phrase,
    replaced by the no-answer sentence; then stripped and `</s>` removed (compute_f1_score) -- in that order."""
    pred = prediction.strip().replace("\n", " ").strip()
    if dataset.lower().startswith(("quac", "doqa")):
        pred = pred.lower()
        if any(p in pred for p in CHATRAG_UNANSWERABLE_PHRASES):
            pred = CHATRAG_NO_ANSWER
    return pred.strip().replace("</s>", "")


def chatrag_f1(prediction: str, answers: Sequence[str], dataset: str = "") -> float | None:
    """ChatRAG Bench F1 for one turn: max token F1 over the non-empty answers; None when there are none, and
    the official mean leaves such turns out (F1Metric.compute_all_pairs only appends when an answer remains).

    Source: the ChatQA evaluation scripts (evaluation/get_scores.py, metrics.py and run_generation_vllm.py in
    the nvidia/Llama3-ChatQA-1.5-8B repository on the Hugging Face Hub). INSCIT drops the no-answer sentence
    that the benchmark added to its answer lists."""
    pred = chatrag_prediction(prediction, dataset)
    if dataset.lower().startswith("inscit"):
        answers = [a for a in answers if a != CHATRAG_NO_ANSWER]
    refs = [a.strip() for a in answers if a.strip()]
    if not refs:
        return None
    if not pred:
        return 0.0
    p = chatrag_normalize(pred).split()
    return max(_f1_tokens(p, chatrag_normalize(r).split()) for r in refs)


def _is_float(s: Any) -> bool:
    try:
        float(s)
        return True
    except (TypeError, ValueError):
        return False


def convfinqa_match(prediction: str, gold: Any, formula: str = "", question: str = "") -> float:
    """ChatRAG Bench ConvFinQA accuracy (get_scores.py evaluate_convfinqa): 1 when the cleaned prediction holds
    the executed answer `exe_answer` (as Python prints the JSON number), the formula `answers[0]`, the number
    rounded to 3 or 2 places, x100 for 'percent' questions, the integer of an 'N.0', or -gold after 'decrease'.

    `gold` keeps its JSON type (int or float), because the official test is `str(gold) in pred`. An empty
    formula is skipped (officially `"" in pred` would accept anything; the files always carry one)."""
    pred = prediction.replace(",", "").replace("$", "").replace("million", "").replace("billion", "")
    pred = " ".join(re.sub(r"\((\b\w+\b)\)", "", pred).split())
    if str(gold) in pred or (formula and str(formula) in pred):
        return 1.0
    if _is_float(gold) and (str(round(float(gold), 3)) in pred or str(round(float(gold), 2)) in pred):
        return 1.0
    if (
        "percent" in question
        and _is_float(gold)
        and any(
            s in pred
            for s in (str(float(gold) * 100), str(round(float(gold) * 100, 1)), str(round(float(gold) * 100, 2)))
        )
    ):
        return 1.0
    if str(gold).endswith(".0") and str(int(float(gold))) in pred:
        return 1.0
    if "decrease" in pred and _is_float(gold) and float(gold) < 0:
        neg = -1 * gold if isinstance(gold, (int, float)) else -1 * float(gold)
        if str(neg) in pred:
            return 1.0
    return 0.0
