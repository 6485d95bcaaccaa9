"""RULER's 13 synthetic tasks (Hsieh et al., 2024), generated for any tokenizer and any list of lengths.

Faithful to NVIDIA/RULER scripts/data/synthetic: the same templates and answer prefixes
(constants.py), the same task settings (synthetic.yaml), the same haystacks (RULER's noise sentence,
an essay corpus, distractor needles), the same needle format and key/value generators (wonderwords
adjective-noun keys, 7-digit numbers, UUIDs), the same VT/CWE/FWE constructions and the same QA
document sampling over SQuAD v2 / HotpotQA. Each sample is sized by binary search over its haystack
units so that prompt tokens + tokens_to_generate <= the target length, measured with the model's own
tokenizer (chat template included when one is used). Essays default to Python's own reference prose
(offline); pass a directory of .txt files (e.g. Paul Graham's essays) for the original haystack.
"""

from __future__ import annotations

import json
import math
import random
import re
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.haystack import NOISE_SENTENCE, load_haystack
from longkit.eval.metrics import string_match_all, string_match_part
from longkit.eval.tasks.base import Sample, Task

# constants.py (scripts/data/synthetic), verbatim, including RULER's own typo "assgined".
TEMPLATES: dict[str, dict[str, Any]] = {
    "niah": {
        "tokens_to_generate": 128,
        "template": ("Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. "
                     "I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic "
                     "{type_needle_v} for {query} mentioned in the provided text?"),
        "answer_prefix": " The special magic {type_needle_v} for {query} mentioned in the provided text are",
    },
    "variable_tracking": {
        "tokens_to_generate": 30,
        "template": ("Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\n"
                     "Question: Find all variables that are assigned the value {query} in the text above."),
        "answer_prefix": (" Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables "
                          "are assgined the value {query}, they are: "),
    },
    "common_words_extraction": {
        "tokens_to_generate": 120,
        "template": ("Below is a numbered list of words. In these words, some appear more often than others. Memorize the "
                     "ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?"),
        "answer_prefix": " Answer: The top 10 words that appear most often in the list are:",
    },
    "freq_words_extraction": {
        "tokens_to_generate": 50,
        "template": ("Read the following coded text and track the frequency of each coded word. Find the three most "
                     "frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore "
                     "the dots '....'. What are the three most frequently appeared words in the above coded text?"),
        "answer_prefix": " Answer: According to the coded text above, the three most frequently appeared words are:",
    },
    "qa": {
        "tokens_to_generate": 32,
        "template": ("Answer the question based on the given documents. Only give me the answer and do not output any "
                     "other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the "
                     "given documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}"),
        "answer_prefix": " Answer:",
    },
}

NEEDLE = "One of the special magic {type_needle_v} for {key} is: {value}."
DOCUMENT_PROMPT = "Document {i}:\n{document}"
DEPTHS = [round(x) for x in (100 * i / 39 for i in range(40))]  # np.linspace(0, 100, 40) rounded

# synthetic.yaml: the 13 tasks and their settings.
RULER_TASKS: dict[str, dict[str, Any]] = {
    "niah_single_1": {"task": "niah", "type_haystack": "noise", "type_needle_k": "words", "type_needle_v": "numbers"},
    "niah_single_2": {"task": "niah", "type_haystack": "essay", "type_needle_k": "words", "type_needle_v": "numbers"},
    "niah_single_3": {"task": "niah", "type_haystack": "essay", "type_needle_k": "words", "type_needle_v": "uuids"},
    "niah_multikey_1": {"task": "niah", "type_haystack": "essay", "type_needle_k": "words", "type_needle_v": "numbers",
                        "num_needle_k": 4},
    "niah_multikey_2": {"task": "niah", "type_haystack": "needle", "type_needle_k": "words", "type_needle_v": "numbers"},
    "niah_multikey_3": {"task": "niah", "type_haystack": "needle", "type_needle_k": "uuids", "type_needle_v": "uuids"},
    "niah_multivalue": {"task": "niah", "type_haystack": "essay", "type_needle_k": "words", "type_needle_v": "numbers",
                        "num_needle_v": 4},
    "niah_multiquery": {"task": "niah", "type_haystack": "essay", "type_needle_k": "words", "type_needle_v": "numbers",
                        "num_needle_k": 4, "num_needle_q": 4},
    "vt": {"task": "variable_tracking", "num_chains": 1, "num_hops": 4},
    "cwe": {"task": "common_words_extraction", "freq_cw": 30, "freq_ucw": 3, "num_cw": 10},
    "fwe": {"task": "freq_words_extraction", "alpha": 2.0},
    "qa_1": {"task": "qa", "dataset": "squad"},
    "qa_2": {"task": "qa", "dataset": "hotpotqa"},
}


@lru_cache(maxsize=1)
def word_lists() -> tuple[list[str], list[str], list[str]]:
    """wonderwords' noun, adjective and verb lists (RULER draws keys and CWE words from them)."""
    try:
        from wonderwords import random_word
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError("RULER needs the 'wonderwords' package (pip install wonderwords)") from exc
    nouns = list(random_word._get_words_from_text_file("nounlist.txt"))
    adjs = list(random_word._get_words_from_text_file("adjectivelist.txt"))
    verbs = list(random_word._get_words_from_text_file("verblist.txt"))
    return nouns, adjs, verbs


def random_value(kind: str, rng: random.Random) -> str:
    """A key or value of RULER's kinds: 'words' (adjective-noun), 'numbers' (7 digits) or 'uuids'."""
    if kind == "numbers":
        return str(rng.randint(1_000_000, 9_999_999))
    if kind == "words":
        nouns, adjs, _ = word_lists()
        return f"{rng.choice(adjs)}-{rng.choice(nouns)}"
    if kind == "uuids":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    raise ConfigError(f"unknown RULER needle type '{kind}' (words, numbers, uuids)")


_SENT = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences of text (a regex stand-in for nltk's sent_tokenize: split after . ! ? and whitespace)."""
    return [s for s in _SENT.split(text.strip()) if s]


@dataclass
class RulerConfig:
    """Settings shared by the RULER tasks: lengths, samples per length, seeds and data sources."""

    lengths: list[int]
    num_samples: int = 1
    seed: int = 42
    essay: str = "pydoc"  # 'pydoc' or a directory of .txt files (the original uses Paul Graham's essays)
    squad: str | None = None  # SQuAD v2 dev JSON (qa_1)
    hotpotqa: str | None = None  # HotpotQA dev distractor JSON (qa_2)
    chat: bool | None = None  # None: wrap in the tokenizer's chat template when it has one
    fewshot: bool = True  # the one-shot examples RULER prepends to vt and cwe
    overrides: dict[str, Any] = field(default_factory=dict)  # per-task setting overrides (e.g. num_hops)


class RulerTask(Task):
    """One of RULER's 13 tasks over a list of lengths; the prompt ends with the task's answer prefix."""

    group_by = ("length",)

    def __init__(self, name: str, config: RulerConfig):
        if name not in RULER_TASKS:
            raise ConfigError(f"unknown RULER task '{name}' (known: {', '.join(RULER_TASKS)})")
        if not config.lengths or any(n <= 0 for n in config.lengths):
            raise ConfigError("RULER lengths must be positive token counts")
        self.name = name
        self.config = config
        self.settings = {"num_needle_k": 1, "num_needle_v": 1, "num_needle_q": 1, **RULER_TASKS[name],
                         **config.overrides.get(name, {})}
        self.kind = self.settings["task"]
        self.tokens_to_generate = int(self.settings.get("tokens_to_generate", TEMPLATES[self.kind]["tokens_to_generate"]))
        if self.kind == "qa":
            self._qa_source()  # fail early on a missing source

    # -- Task interface ---------------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the prompts."""
        c = self.config
        return {"name": self.name, "settings": self.settings, "seed": c.seed, "essay": c.essay, "chat": c.chat,
                "fewshot": c.fewshot, "qa": self._qa_path() if self.kind == "qa" else None}

    def plan(self) -> list[dict[str, Any]]:
        """num_samples specs per length."""
        return [{"id": f"L{length}-{i}", "length": length, "index": i}
                for length in self.config.lengths for i in range(self.config.num_samples)]

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """Generate the sample for one (length, index), fitted to the length with tokenizer."""
        length = int(spec["length"])
        chat = tokenizer.has_chat_template if self.config.chat is None else self.config.chat
        seed = f"{self.config.seed}:{self.name}:{length}:{spec['index']}"
        make = self._maker(seed, tokenizer, length)

        def render(n: int) -> tuple[str, list[str], dict[str, Any]]:
            body, prefix, answers, meta = make(n)
            prompt = tokenizer.render_messages([{"role": "user", "content": body}]) + prefix if chat else body + prefix
            return prompt, answers, meta

        limit = length - self.tokens_to_generate
        n, (prompt, answers, meta) = fit_units(render, tokenizer, limit, start=self._start_units(length),
                                               lo=self._min_units(), hi=self._max_units())
        total = tokenizer.count(prompt) + self.tokens_to_generate
        meta = {"length": length, "actual_length": total, "units": n, **meta}
        return Sample(id=spec["id"], references=answers, prompt=prompt, meta=meta,
                      max_new_tokens=self.tokens_to_generate)

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """string_match_part for the QA tasks, string_match_all for the rest (RULER's metrics)."""
        if self.kind == "qa":
            return {"score": string_match_part(prediction, sample.references)}
        return {"score": string_match_all(prediction, sample.references)}

    # -- sizes ------------------------------------------------------------------------------------

    def _min_units(self) -> int:
        if self.kind == "niah":
            return self.settings["num_needle_k"] * self.settings["num_needle_v"]
        return {"variable_tracking": 5, "common_words_extraction": 11, "freq_words_extraction": 10, "qa": 1}[self.kind]

    def _max_units(self) -> int | None:
        if self.kind == "qa":
            return len(self._qa()[1])
        if self.kind == "common_words_extraction":
            nouns, adjs, verbs = word_lists()
            return len(set(nouns + adjs + verbs))
        return None

    def _start_units(self, length: int) -> int:
        per_unit = {"niah": {"noise": 20, "essay": 1.3, "needle": 25}.get(self.settings.get("type_haystack", ""), 10),
                    "variable_tracking": 20, "common_words_extraction": 4, "freq_words_extraction": 2.5, "qa": 150}
        return max(self._min_units(), int(length / per_unit[self.kind] / 2))

    # -- generators -------------------------------------------------------------------------------

    def _maker(self, seed: str, tokenizer: TextTokenizer, length: int
               ) -> Callable[[int], tuple[str, str, list[str], dict[str, Any]]]:
        """A function units -> (prompt body, answer prefix, answers, meta) with all random draws fixed by seed."""
        if self.kind == "niah":
            return self._niah(seed)
        if self.kind == "variable_tracking":
            return self._vt(seed, tokenizer)
        if self.kind == "common_words_extraction":
            return self._cwe(seed, length)
        if self.kind == "freq_words_extraction":
            return self._fwe(seed, length)
        return self._qa_maker(seed)

    def _niah(self, seed: str) -> Callable[[int], tuple[str, str, list[str], dict[str, Any]]]:
        s = self.settings
        rng = random.Random(seed)
        kind_k, kind_v = s["type_needle_k"], s["type_needle_v"]
        keys, values, needles = [], [], []
        for _ in range(s["num_needle_k"]):
            keys.append(random_value(kind_k, rng))
            vals = []
            for _ in range(s["num_needle_v"]):
                vals.append(random_value(kind_v, rng))
                needles.append(NEEDLE.format(type_needle_v=kind_v, key=keys[-1], value=vals[-1]))
            values.append(vals)
        rng.shuffle(needles)
        q_idx = rng.sample(range(s["num_needle_k"]), s["num_needle_q"])
        queries = [keys[i] for i in q_idx]
        answers = [a for i in q_idx for a in values[i]]
        query = ", ".join(queries[:-1]) + ", and " + queries[-1] if len(queries) > 1 else queries[0]
        template = TEMPLATES["niah"]["template"]
        prefix = TEMPLATES["niah"]["answer_prefix"]
        type_v = kind_v
        if s["num_needle_q"] * s["num_needle_v"] == 1:  # RULER's singular rewrite
            def singular(t: str) -> str:
                return t.replace("Some", "A").replace("are all", "is").replace("are", "is").replace("answers", "answer")
            template, prefix, type_v = singular(template), singular(prefix), kind_v[:-1]
        depths = sorted(rng.sample(DEPTHS, len(needles)))
        hay = s["type_haystack"]
        words = self._essay_words() if hay == "essay" else []
        distractor_seed = rng.random()

        def make(n: int) -> tuple[str, str, list[str], dict[str, Any]]:
            meta: dict[str, Any] = {"needles": needles, "queries": queries}
            if hay == "essay":
                reps = -(-n // len(words))
                text = " ".join((words * reps)[:n])
                sents = split_sentences(text)
                positions = [0] + [int(len(sents) * d / 100) for d in depths] + [len(sents)]
                parts = []
                for i in range(1, len(positions)):
                    parts.append(" ".join(sents[positions[i - 1]:positions[i]]))
                    if i - 1 < len(needles):
                        parts.append(needles[i - 1])
                context = " ".join(p for p in parts if p)
                meta["depths"] = depths
            else:
                if hay == "noise":
                    units = [NOISE_SENTENCE] * n
                else:  # distractor needles with fresh random keys and values
                    drng = random.Random(distractor_seed)
                    units = [NEEDLE.format(type_needle_v=kind_v, key=random_value(kind_k, drng),
                                           value=random_value(kind_v, drng)) for _ in range(n)]
                    units = [u for u in units if not any(f" {k} is:" in u for k in keys)]
                idx = sorted(random.Random(seed + ":pos").sample(range(len(units) + 1), len(needles)), reverse=True)
                for pos, needle in zip(idx, needles):
                    units.insert(pos, needle)
                context = "\n".join(units)
                meta["needle_lines"] = sorted(i for i, u in enumerate(units) if u in needles)
            body = template.format(type_needle_v=type_v, context=context, query=query)
            return body, prefix.format(type_needle_v=type_v, query=query), answers, meta

        return make

    def _essay_words(self) -> list[str]:
        if not hasattr(self, "_words"):
            text = load_haystack(self.config.essay)
            self._words = re.sub(r"\s+", " ", text).split(" ")
        return self._words

    def _vt(self, seed: str, tokenizer: TextTokenizer) -> Callable[[int], tuple[str, str, list[str], dict[str, Any]]]:
        s = self.settings
        num_chains, num_hops = int(s["num_chains"]), int(s["num_hops"])
        t, p = TEMPLATES["variable_tracking"]["template"], TEMPLATES["variable_tracking"]["answer_prefix"]

        def chains(rng: random.Random, icl: bool) -> tuple[list[list[str]], list[list[str]]]:
            k = 3 if icl else 5
            hops = min(10, num_hops) if icl else num_hops
            names: list[str] = []
            while len(names) < num_chains * (hops + 1):
                v = "".join(rng.choices(string.ascii_uppercase, k=k))
                if v not in names:
                    names.append(v)
            vs, cs = [], []
            for i in range(0, len(names), hops + 1):
                these = names[i:i + hops + 1]
                vs.append(these)
                value = "12345" if icl else str(rng.randint(10000, 99998))
                chain = [f"VAR {these[0]} = {value}"] + [f"VAR {these[j + 1]} = VAR {these[j]} " for j in range(hops)]
                cs.append(chain)
            return vs, cs

        def sample(rng_seed: str, n: int, icl: bool) -> tuple[str, list[str], str]:
            rng = random.Random(rng_seed)
            names, cs = chains(rng, icl)
            noise = NOISE_SENTENCE + "\n"
            sentences = [noise] * n
            pos_rng = random.Random(rng_seed + ":pos")
            for chain in cs:
                positions = sorted(pos_rng.sample(range(len(sentences) + 1), len(chain)))
                for j, (pos, stmt) in enumerate(zip(positions, chain)):
                    sentences.insert(pos + j, stmt)
            context = " ".join(sentences).replace(". \n", ".\n")
            value = cs[0][0].split("=")[-1].strip()
            hops = len(cs[0]) - 1
            body = t.format(context=context, query=value)
            return body, names[0], p.format(num_v=hops + 1, query=value)

        example = ""
        if self.config.fewshot:
            # RULER's one-shot example: the task at 500 tokens with 3-letter names and value 12345
            def icl(n: int) -> tuple[str, list[str], dict[str, Any]]:
                body, names, prefix = sample(seed + ":icl", n, True)
                return body + prefix + " " + " ".join(names), names, {}
            _, (example, _, _) = fit_units(icl, tokenizer, 500 - self.tokens_to_generate, start=5, lo=5)
            example += "\n\n"

        def make(n: int) -> tuple[str, str, list[str], dict[str, Any]]:
            body, names, prefix = sample(seed, n, False)
            return example + body, prefix, names, {}

        return make

    def _cwe(self, seed: str, length: int) -> Callable[[int], tuple[str, str, list[str], dict[str, Any]]]:
        s = self.settings
        nouns, adjs, verbs = word_lists()
        vocab = sorted(set(nouns + adjs + verbs))
        num_cw = int(s["num_cw"])
        t, p = TEMPLATES["common_words_extraction"]["template"], TEMPLATES["common_words_extraction"]["answer_prefix"]
        short = length < 4096  # RULER's settings below 4K: 6 and 1 repeats, a 20-word example

        def example(rng: random.Random, n: int, common_rep: int, uncommon_rep: int) -> tuple[str, list[str]]:
            chosen = rng.sample(vocab, n)
            common, uncommon = chosen[:num_cw], chosen[num_cw:]
            lst = common * common_rep + uncommon * uncommon_rep
            random.Random(seed + ":shuffle").shuffle(lst)
            return " ".join(f"{i + 1}. {w}" for i, w in enumerate(lst)), common

        def make(n: int) -> tuple[str, str, list[str], dict[str, Any]]:
            rng = random.Random(seed)
            shots = ""
            if self.config.fewshot:
                ctx, ans = example(rng, 20, 3, 1) if short else example(rng, 40, 10, 3)
                shots = t.format(context=ctx) + p + " " + " ".join(f"{i + 1}. {w}" for i, w in enumerate(ans)) + "\n"
            if short:
                ctx, ans = example(rng, n, 6, 1)
            else:
                ctx, ans = example(rng, n, int(s["freq_cw"]), int(s["freq_ucw"]))
            return shots + t.format(context=ctx), p, ans, {"num_words": n}

        return make

    def _fwe(self, seed: str, length: int) -> Callable[[int], tuple[str, str, list[str], dict[str, Any]]]:
        s = self.settings
        alpha = float(s.get("alpha", 2.0))
        wordlen = int(s.get("coded_wordlen", 6))
        vocab_size = int(s.get("vocab_size", -1))
        vocab_size = length // 50 if vocab_size == -1 else vocab_size
        rng = random.Random(seed)
        vocab: set[str] = set()
        while len(vocab) < vocab_size:
            vocab.add("".join(rng.choices(string.ascii_lowercase, k=wordlen)))
        words = sorted(vocab)
        random.Random(seed).shuffle(words)
        words[0] = "..."  # RULER: the top-ranked word is noise, to be ignored
        z = zeta(alpha)
        t, p = TEMPLATES["freq_words_extraction"]["template"], TEMPLATES["freq_words_extraction"]["answer_prefix"]

        def make(n: int) -> tuple[str, str, list[str], dict[str, Any]]:
            counts = [int(n * (k ** -alpha) / z) for k in range(1, len(words) + 1)]
            sampled = [w for w, c in zip(words, counts) for _ in range(c)]
            random.Random(seed).shuffle(sampled)
            return t.format(context=" ".join(sampled)), p, words[1:4], {"num_words": n}

        return make

    # -- QA ---------------------------------------------------------------------------------------

    def _qa_path(self) -> str:
        ds = self.settings["dataset"]
        path = self.config.squad if ds == "squad" else self.config.hotpotqa
        if not path:
            what = ("SQuAD v2 (dev-v2.0.json from rajpurkar.github.io/SQuAD-explorer)" if ds == "squad"
                    else "HotpotQA (hotpot_dev_distractor_v1.json from hotpotqa.github.io)")
            key = "squad" if ds == "squad" else "hotpotqa"
            raise ConfigError(f"RULER {self.name} needs {what}: set data.{key} to the file's path")
        return str(path)

    def _qa_source(self) -> None:
        self._qa()

    def _qa(self) -> tuple[list[dict[str, Any]], list[str]]:
        if not hasattr(self, "_qa_cache"):
            path = self._qa_path()
            ds = self.settings["dataset"]
            self._qa_cache = read_squad(path) if ds == "squad" else read_hotpotqa(path)
        return self._qa_cache

    def _qa_maker(self, seed: str) -> Callable[[int], tuple[str, str, list[str], dict[str, Any]]]:
        qas, docs = self._qa()
        index = int(seed.rsplit(":", 1)[1])
        rng = random.Random(seed)
        item = qas[(index + rng.randrange(len(qas))) % len(qas)] if len(qas) > 1 else qas[0]
        t, p = TEMPLATES["qa"]["template"], TEMPLATES["qa"]["answer_prefix"]
        gold, more = list(item["context"]), list(item.get("more_context", []))
        others = [i for i in range(len(docs)) if i not in gold and i not in more]
        order_more = random.Random(seed + ":more").sample(more, len(more))
        order_other = random.Random(seed + ":other").sample(others, len(others))

        def make(n: int) -> tuple[str, str, list[str], dict[str, Any]]:
            extra = max(0, n - len(gold))
            if extra <= len(order_more):
                chosen = gold + order_more[:extra]
            else:
                chosen = gold + order_more + order_other[:extra - len(order_more)]
            texts = [docs[i] for i in chosen]
            random.Random(seed + ":shuffle").shuffle(texts)
            context = "\n\n".join(DOCUMENT_PROMPT.format(i=i + 1, document=d) for i, d in enumerate(texts))
            gold_at = sorted(texts.index(docs[g]) + 1 for g in gold)
            return t.format(context=context, query=item["query"]), p, list(item["outputs"]), {
                "question": item["query"], "gold_documents": gold_at, "num_docs": len(texts)}

        return make


def zeta(alpha: float, terms: int = 100_000) -> float:
    """Riemann zeta(alpha) for alpha > 1 (partial sum plus the Euler-Maclaurin tail), as scipy computes it."""
    if alpha <= 1:
        raise ConfigError("fwe alpha must be > 1")
    head = math.fsum(k ** -alpha for k in range(1, terms))
    n = float(terms)
    return head + n ** (1 - alpha) / (alpha - 1) + 0.5 * n ** -alpha


def fit_units(render: Callable[[int], tuple[str, Any, Any]], tokenizer: TextTokenizer, limit: int, start: int,
              lo: int = 1, hi: int | None = None) -> tuple[int, tuple[str, Any, Any]]:
    """The largest unit count n in [lo, hi] whose rendered prompt has at most `limit` tokens (binary search)."""
    def fits(n: int) -> tuple[bool, tuple[str, Any, Any]]:
        out = render(n)
        return tokenizer.count(out[0]) <= limit, out

    ok, best = fits(lo)
    if not ok:
        raise ConfigError(f"the length is too short for this task's template and needles "
                          f"({tokenizer.count(best[0])} tokens > {limit})")
    good = lo
    probe = max(lo + 1, start)
    if hi is not None:
        probe = min(probe, hi)
    bad: int | None = None
    while bad is None:  # grow until a probe does not fit (or the source runs out)
        if hi is not None and good >= hi:
            return good, best
        ok, out = fits(probe)
        if ok:
            good, best = probe, out
            probe = probe * 2 if hi is None else min(probe * 2, hi)
        else:
            bad = probe
    while bad - good > 1:
        mid = (good + bad) // 2
        ok, out = fits(mid)
        if ok:
            good, best = mid, out
        else:
            bad = mid
    return good, best


def read_squad(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """RULER's read_squad: answerable questions of a SQuAD v2 file and its deduplicated paragraphs."""
    data = _load_json(path)
    if not isinstance(data, dict) or "data" not in data:
        raise InputError(f"{path}: not a SQuAD v2 file (expected a JSON object with 'data')")
    docs = sorted({p["context"] for d in data["data"] for p in _field(d, "paragraphs", path)})
    index = {c: i for i, c in enumerate(docs)}
    qas = []
    for d in data["data"]:
        more = [index[p["context"]] for p in d["paragraphs"]]
        for p in d["paragraphs"]:
            for qa in _field(p, "qas", path):
                for f in ("question", "answers"):
                    _field(qa, f, path)
                if qa.get("is_impossible", False):
                    continue
                qas.append({"query": qa["question"], "outputs": [a["text"] for a in qa["answers"]],
                            "context": [index[p["context"]]],
                            "more_context": [i for i in more if i != index[p["context"]]]})
    if not qas:
        raise InputError(f"{path}: no answerable SQuAD questions")
    return qas, docs


def read_hotpotqa(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """RULER's read_hotpotqa: questions with their gold + distractor paragraphs ('title\\ntext')."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: not a HotpotQA file (expected a JSON list of questions)")
    for i, d in enumerate(data):
        for f in ("question", "answer", "context"):
            if f not in d:
                raise InputError(f"{path}: item {i}: missing field '{f}'")
    docs = sorted({f"{t}\n{''.join(p)}" for d in data for t, p in d["context"]})
    index = {c: i for i, c in enumerate(docs)}
    qas = [{"query": d["question"], "outputs": [d["answer"]],
            "context": [index[f"{t}\n{''.join(p)}"] for t, p in d["context"]]} for d in data]
    return qas, docs


def _load_json(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def _field(obj: dict[str, Any], name: str, path: str | Path) -> Any:
    if name not in obj:
        raise InputError(f"{path}: an item lacks the field '{name}'")
    return obj[name]
