"""NoLiMa (Modarressi et al., ICML 2025, arXiv:2502.05167): needle-in-a-haystack without literal matches. A needle
names a character beside a keyword ("Actually, {CHAR} lives next to the Semper Opera House."); the question asks
for the character through an associated keyword it does not share ("Which character has been to Dresden?", one
hop; "... to the state of Saxony?", two hops). One task per question type of the needle set: `nolima_onehop` and
`nolima_twohop` (the needle set's `questions` keys "onehop" and "twohop"), generated at any length the suite asks.

Official code (adobe-research/NoLiMa at 7532e4eebf095c5540dc256900a63968da58a9d0; every file below last changed at
79781cbddd3ee7fa5693ffc13b2d13490f077082):
- evaluation/run_tests.py: DEFAULT_TASK_TEMPLATE (verbatim, with its "\\n\\n Return only" space), used unless a
  needle-set row carries its own `task_template`; one test per (row, question type, test): the needle with the
  test's `input_args` put in for {1}, {2}, ... in turn; the question with only the last placeholder it holds put
  in (the loop replaces from the unfilled question each time: kept); the seed base_seed (42) + int(id[:4]) + the
  haystack's number (the suite's `seed`, 42 by default, is base_seed; `samples` keeps the first examples).
- evaluation/async_evaluate.py: per test and haystack, np.random.seed(seed), then for each depth of
  np.linspace(0, 100, 26) a character drawn with np.random.choice(character_set) and put in for {CHAR} in needle
  and question; the gold answer is that character; `_evaluate_response` with metric "contains" (every published
  run config): 1 if a gold answer occurs in the raw response (case-sensitive, not stripped).
- data/book_haystack.py `_generate_w_needle_placement` (shift 0, no static depth, no distractor): the book encoded
  once; placement positions are token 0 and every token whose decoded text holds "\\n"; the position is the first
  p with p / (length + 1) >= depth; the haystack is the `length` tokens from p - round(length * depth); the text
  before the needle is decoded up to and including token p and cut at its last "\\n"; the needle follows after a
  space and before a "\\n", then the rest of the window. `length` counts the haystack's tokens, not the prompt's.
- evaluation/async_api_connector.py: the system turn "You are a helpful assistant" (every provider but Bedrock, with
  use_default_system_prompt: true in every run config), the user turn the filled template; encode without special
  tokens; evaluation/model_configs/*.json: max_tokens 192, temperature 0.
- evaluation/run_config/multi_test_config_book_*.yaml: lengths 250, 500, 1000, 2000, 4000, 8000, 16000, 32000;
  26 depths; metric contains; needlesets/needle_set.json; haystack/rand_shuffle.
- The paper, section 4.3: accuracy is the share of tests answered; the base score averages each question-needle
  example over the 5 haystacks, takes its maximum over 250, 500 and 1K, and averages that over examples; the
  effective length is the longest tested length whose score is at least 85% of the base score (the README's
  "maintains at least 85%"; the paper says "exceeds"). `base_score` and `effective_length` below compute them;
  `nolima_summary` reads them off a run's records; it is the tasks' declared `summarize`, so suite.json and the
  report show it beside RULER's fixed-threshold effective length.

Data, fetched by name: `amodaresi/NoLiMa` (the repository data/download_NoLiMa_data.sh downloads from), files
`needlesets/needle_set.json` (option `needle_set`: also `needle_set_hard`, NoLiMa-Hard's 10 pairs) and
`haystack/rand_shuffle/rand_book_1.txt` .. `rand_book_5.txt`. A needle-set row: {"id", "needle", "questions":
{"onehop", "twohop"}, "tests": {test id: {"input_args": [...]}}, "character_set", "system_prompt"} and optionally
"task_template"; a missing field is one line naming the file, row and field. A local copy (`data.nolima`) is a
directory in the same layout.

Differences, deliberately: the haystacks are numbered in file order (rand_book_1 is haystack 0); the official
script numbers them in os.listdir order, which the file system decides, so the characters drawn may differ from a
given official run; a tokenizer without a chat template gets the user text alone; a window longer than the book is
refused in one line (the official code asserts).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.spec import X100, DataSource, Metric, OfficialCode, TaskSpec

_COMMIT = "79781cbddd3ee7fa5693ffc13b2d13490f077082"
_CODE = OfficialCode("adobe-research/NoLiMa", "evaluation/async_evaluate.py", _COMMIT)

# evaluation/run_tests.py
DEFAULT_TASK_TEMPLATE = "You will answer a question based on the following book snippet:\n\n{haystack}\n\nUse the information provided in the book snippet to answer the question. Your answer should be short and based on either explicitly stated facts or strong, logical inferences.\n\nQuestion: {question}\n\n Return only the final answer with no additional explanation or reasoning."
# evaluation/async_api_connector.py's SYSTEM_PROMPT (openai, azure-openai, vllm, gemini)
SYSTEM_PROMPT = "You are a helpful assistant"
MAX_TOKENS = 192  # evaluation/model_configs/*.json
BASE_SEED = 42  # run_tests.py --base_seed
DEPTH_INTERVALS = 26  # run_config/*.yaml document_depth_percent_intervals
LENGTHS = (250, 500, 1000, 2000, 4000, 8000, 16000, 32000)  # run_config/*.yaml context_length
BASE_LENGTHS = (250, 500, 1000)  # the paper's base score lengths
THRESHOLD_RATIO = 0.85
METRICS = ("EM", "contains", "lastline_EM", "lastline_contains")
QUESTION_TYPES = ("onehop", "twohop")

REPO = "amodaresi/NoLiMa"
BOOKS = (1, 2, 3, 4, 5)
REQUIRED = ("id", "needle", "questions", "tests", "system_prompt")


def needle_source(needle_set: str = "needle_set") -> DataSource:
    """The needle set's file on the Hub."""
    return DataSource(REPO, f"needlesets/{needle_set}.json", setting="nolima")


def book_source(book: int) -> DataSource:
    """One haystack book's file on the Hub."""
    return DataSource(REPO, f"haystack/rand_shuffle/rand_book_{book}.txt", setting="nolima")


# --- scoring -------------------------------------------------------------------------------------------------------


def evaluate_response(response: str, gold_answers: Sequence[str], metric: str = "contains") -> int:
    """async_evaluate.py's _evaluate_response: 1 or 0."""
    if metric == "EM":
        return int(response.strip() in gold_answers)
    if metric == "contains":
        return int(any(gold in response for gold in gold_answers))
    last = response.strip().split("\n")[-1]
    if metric == "lastline_EM":
        return int(last in gold_answers)
    if metric == "lastline_contains":
        return int(any(gold in last for gold in gold_answers))
    raise ConfigError(f"metric: expected one of {', '.join(METRICS)}, got '{metric}'")


# --- the needle set ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeedleTest:
    """One question-needle example of a question type: the needle and question before {CHAR} is put in."""

    example: str  # run_tests.py's test name without the question type: <id>_<test id>
    row_id: str
    needle: str
    question: str
    character_set: tuple[str, ...]
    gold_answers: tuple[str, ...]
    task_template: str
    system_prompt: str  # the row's, sent only where the provider has no default (not here; kept for the record)

    def seed(self, haystack_no: int, base_seed: int = BASE_SEED) -> int:
        """run_tests.py's seed: base_seed + int(id[:4]) + the haystack's number."""
        return base_seed + int(self.row_id[:4]) + haystack_no


def fill_test(row: dict[str, Any], question: str, input_args: Sequence[str]) -> tuple[str, str]:
    """run_tests.py's placeholders: {1}, {2}, ... in the needle in turn; in the question only the last one it holds
    (each replacement starts again from the unfilled question)."""
    needle, filled = str(row["needle"]), question
    for n, arg in enumerate(input_args, start=1):
        placeholder = "{" + str(n) + "}"
        if placeholder in question:
            filled = question.replace(placeholder, arg)
        if placeholder in needle:
            needle = needle.replace(placeholder, arg)
    return needle, filled


def read_needle_set(path: Path, question_type: str) -> list[NeedleTest]:
    """The examples of one question type, in file order; a malformed row is one line naming file, row and field."""
    from longkit.io import read_text

    try:
        rows = json.loads(read_text(path, "NoLiMa needle set"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(rows, list):
        raise InputError(f"{path}: expected a JSON array of needle-set rows, got {type(rows).__name__}")
    tests: list[NeedleTest] = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise InputError(f"{path}: row {i}: expected an object, got {type(row).__name__}")
        missing = next((f for f in REQUIRED if f not in row), None)
        if missing:
            raise InputError(f"{path}: row {i}: missing field '{missing}'")
        where = f"{path}: row {i} (id {row['id']})"
        if not isinstance(row["questions"], dict) or not isinstance(row["tests"], dict):
            raise InputError(f"{where}: fields 'questions' and 'tests' must be objects")
        if question_type not in row["questions"]:
            continue
        if not str(row["id"])[:4].isdigit():
            raise InputError(f"{where}: field 'id' must start with 4 digits (the seed reads them)")
        chars = row.get("character_set", "")
        if "{CHAR}" in row["needle"] and not (isinstance(chars, list) and chars):
            raise InputError(f"{where}: missing field 'character_set' (the needle names {{CHAR}})")
        for test_id, test in row["tests"].items():
            if not isinstance(test, dict) or "input_args" not in test:
                raise InputError(f"{where}: test {test_id}: missing field 'input_args'")
            needle, question = fill_test(row, str(row["questions"][question_type]), list(test["input_args"]))
            gold = test.get("gold_answers", "")
            tests.append(
                NeedleTest(
                    example=f"{row['id']}_{test_id}",
                    row_id=str(row["id"]),
                    needle=needle,
                    question=question,
                    character_set=tuple(str(c) for c in chars) if isinstance(chars, list) else (),
                    # a string of gold answers is iterated by character in _evaluate_response: kept
                    gold_answers=tuple(gold) if isinstance(gold, str) else tuple(str(g) for g in gold),
                    task_template=str(row.get("task_template", DEFAULT_TASK_TEMPLATE)),
                    system_prompt=str(row["system_prompt"]),
                )
            )
    if not tests:
        raise InputError(f"{path}: no row has a '{question_type}' question")
    return tests


def depths(intervals: int = DEPTH_INTERVALS) -> list[float]:
    """Needle depths in percent: np.linspace(0, 100, intervals), as async_evaluate.py sweeps them."""
    return [float(d) for d in np.linspace(0, 100, intervals)]


def characters(test: NeedleTest, seed: int, n: int) -> list[str]:
    """The characters drawn for the n depths of one test on one haystack (np.random.seed, then np.random.choice per
    depth; none drawn when the needle names no {CHAR})."""
    if "{CHAR}" not in test.needle:
        return [""] * n
    rng = np.random.RandomState(seed)  # the legacy global generator np.random.seed seeds
    return [str(rng.choice(list(test.character_set))) for _ in range(n)]


# --- the haystack --------------------------------------------------------------------------------------------------


class Book:
    """A haystack book encoded once, with book_haystack.py's placement positions (token 0 and every token whose text
    holds a newline)."""

    def __init__(self, text: str, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str]):
        self.ids = np.asarray(encode(text), dtype=np.int64)
        self.decode = decode
        if self.ids.size == 0:
            raise InputError("NoLiMa haystack book is empty after tokenisation")
        newline = [int(t) for t in np.unique(self.ids) if "\n" in decode([int(t)])]
        hits = np.flatnonzero(np.isin(self.ids, np.asarray(newline, dtype=np.int64)))
        self.positions = np.concatenate([[0], hits]).astype(np.int64)

    def place(self, needle: str, length: int, depth: float) -> dict[str, Any]:
        """book_haystack.py's _generate_w_needle_placement (shift 0): the haystack text with the needle, the token
        position it was placed after and the window."""
        ratio = self.positions / (length + 1) - depth
        ratio[ratio < 0] = np.inf
        arg = int(np.argmin(ratio))
        pos = int(self.positions[arg])
        token_depth = int(np.round(length * depth))
        start, end = pos - token_depth, pos - token_depth + length
        if not np.isfinite(ratio[arg]) or start < 0 or end > self.ids.size:
            raise ConfigError(
                f"length {length} at depth {100 * depth:g}% does not fit in the book ({self.ids.size} tokens)"
            )
        pre = self.decode(self.ids[start : pos + 1].tolist())
        pre = pre[: max(pre.rfind("\n"), 0)]
        post = self.decode(self.ids[pos + 1 : end].tolist())
        return {"text": pre + " " + needle + "\n" + post, "position": pos, "start": start, "token_depth": token_depth}


# --- the task ------------------------------------------------------------------------------------------------------


class NolimaTask(Task):
    """One question type of a NoLiMa needle set over lengths x depths x haystacks."""

    group_by = ("length", "depth")

    def __init__(
        self,
        name: str,
        question_type: str,
        lengths: list[int],
        needle_set: Path,
        books: list[tuple[int, Path]],
        *,
        intervals: int = DEPTH_INTERVALS,
        samples: int | None = None,
        seed: int = BASE_SEED,
        metric: str = "contains",
        chat: bool | None = None,
        needle_set_name: str = "needle_set",
    ):
        if not lengths or any(n <= 0 for n in lengths):
            raise ConfigError("lengths must be positive token counts")
        self.name = name
        self.question_type = question_type
        self.lengths = list(lengths)
        self.needle_set = needle_set
        self.needle_set_name = needle_set_name
        self.books = books
        self.intervals = intervals
        self.samples = samples
        self.seed = seed
        self.metric = metric
        self.chat = chat
        self._tests: list[NeedleTest] | None = None
        self._books: dict[tuple[int, int], Book] = {}

    def tests(self) -> list[NeedleTest]:
        """The examples of this question type (the first `samples` when set)."""
        if self._tests is None:
            tests = read_needle_set(self.needle_set, self.question_type)
            self._tests = tests[: self.samples] if self.samples is not None else tests
        return self._tests

    def plan(self) -> list[dict[str, Any]]:
        """One spec per (length, haystack, example, depth), in the official order within a length."""
        grid = depths(self.intervals)
        specs = []
        for length in self.lengths:
            for haystack_no, (book, _) in enumerate(self.books):
                for t, test in enumerate(self.tests()):
                    chars = characters(test, test.seed(haystack_no, self.seed), len(grid))
                    for k, depth in enumerate(grid):
                        specs.append(
                            {
                                "id": f"L{length}-B{book}-{test.example}-D{k}",
                                "length": length,
                                "book": book,
                                "haystack_no": haystack_no,
                                "test": t,
                                "depth": round(depth, 6),
                                "depth_fraction": depth / 100,
                                "character": chars[k],
                            }
                        )
        return specs

    def book(self, haystack_no: int, tokenizer: TextTokenizer) -> Book:
        """One haystack book, encoded with this tokenizer (cached)."""
        key = (haystack_no, id(tokenizer))
        if key not in self._books:
            from longkit.io import read_text

            text = read_text(self.books[haystack_no][1], "NoLiMa haystack")
            self._books = {k: v for k, v in self._books.items() if k[1] == id(tokenizer)}
            self._books[key] = Book(text, tokenizer.encode, tokenizer.decode)
        return self._books[key]

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """The needle at one depth of one book window, asked with the official template and system turn."""
        test = self.tests()[int(spec["test"])]
        char = str(spec["character"])
        needle = test.needle.replace("{CHAR}", char) if "{CHAR}" in test.needle else test.needle
        question = test.question.replace("{CHAR}", char) if "{CHAR}" in test.question else test.question
        placed = self.book(int(spec["haystack_no"]), tokenizer).place(
            needle, int(spec["length"]), float(spec["depth_fraction"])
        )
        user = test.task_template.format(haystack=placed["text"], question=question)
        gold = [char] if "{CHAR}" in test.needle else list(test.gold_answers)
        chat = tokenizer.has_chat_template if self.chat is None else self.chat
        kwargs: dict[str, Any] = (
            {"messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]}
            if chat
            else {"prompt": user}
        )
        meta = {
            "length": int(spec["length"]),
            "depth": float(spec["depth"]),
            "example": test.example,
            "book": int(spec["book"]),
            "character": char,
            "needle": needle,
            "question": question,
            "needle_token": placed["position"] - placed["start"],
            "token_depth": placed["token_depth"],
        }
        return Sample(id=spec["id"], references=gold, meta=meta, max_new_tokens=MAX_TOKENS, **kwargs)

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """_evaluate_response with the run's metric (contains, as every published run) against the gold answers."""
        hit = float(evaluate_response(prediction, sample.references, self.metric))
        return {"score": hit, self.metric: hit}

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the prompts and the scores."""
        return {
            "name": self.name,
            "needle_set": str(self.needle_set),
            "books": [str(p) for _, p in self.books],
            "intervals": self.intervals,
            "samples": self.samples,
            "seed": self.seed,
            "metric": self.metric,
            "chat": self.chat,
        }

    def describe(self) -> str:
        """Report header: the protocol, what a length counts and where the effective length comes from."""
        return (
            f"NoLiMa {self.question_type} ({self.needle_set_name}, {len(self.books)} haystacks x "
            f"{self.intervals} depths per example): length counts the haystack's tokens (book_haystack.py), not the "
            "prompt's; scored by containment of the character's name. NoLiMa's effective length (85% of the base "
            "score at 250/500/1K) is `longkit.eval.tasks.nolima.nolima_summary` of the run's records."
        )


# --- NoLiMa's base score and effective length ----------------------------------------------------------------------


def base_score(per_example: dict[str, dict[int, float]], base_lengths: Iterable[int] = BASE_LENGTHS) -> float | None:
    """The paper's base score: each example's (haystack-averaged) score maximised over the base lengths it was run
    at, averaged over examples; None when no example ran at a base length."""
    wanted = set(base_lengths)
    best = [max(v for n, v in by_len.items() if n in wanted) for by_len in per_example.values() if wanted & set(by_len)]
    return sum(best) / len(best) if best else None


def effective_length(
    scores: dict[int, float],
    base: float,
    ratio: float = THRESHOLD_RATIO,
    base_lengths: Iterable[int] = BASE_LENGTHS,
) -> int | None:
    """NoLiMa's effective length: the longest tested length, from the longest base length on, whose score is at least
    ratio x base; None when none is (the README's "<1K")."""
    floor = max(base_lengths)
    passing = [n for n, s in scores.items() if n >= floor and s >= ratio * base - 1e-12]
    return max(passing) if passing else None


def nolima_summary(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Base score, threshold, scores by length and effective length from a run's records (results.jsonl lines:
    meta 'length' and 'example', scores 'score'). Without 250/500/1000 among the lengths the shortest length run
    stands for the base (said in 'base_lengths')."""
    cells: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_length: dict[int, list[float]] = defaultdict(list)
    for r in records:
        n, s = int(r["meta"]["length"]), float(r["scores"]["score"])
        cells[str(r["meta"]["example"])][n].append(s)
        by_length[n].append(s)
    if not by_length:
        raise InputError("NoLiMa summary: no records")
    per_example = {ex: {n: sum(v) / len(v) for n, v in d.items()} for ex, d in cells.items()}
    lengths = sorted(by_length)
    base_lengths = [n for n in BASE_LENGTHS if n in by_length] or [lengths[0]]
    base = base_score(per_example, base_lengths)
    assert base is not None  # every example ran at every length of the run
    scores = {n: sum(v) / len(v) for n, v in sorted(by_length.items())}
    return {
        "base_score": base,
        "base_lengths": base_lengths,
        "threshold": THRESHOLD_RATIO * base,
        "by_length": scores,
        "effective_length": effective_length(scores, base, base_lengths=base_lengths),
    }


# --- declarations ----------------------------------------------------------------------------------------------------


class NolimaOptions(BaseModel):
    """`options:` of the NoLiMa tasks (lengths, samples, seed and chat come from the suite)."""

    model_config = ConfigDict(extra="forbid")

    needle_set: Literal["needle_set", "needle_set_hard"] = "needle_set"
    depth_intervals: int = Field(DEPTH_INTERVALS, ge=1)
    books: list[Literal[1, 2, 3, 4, 5]] | None = None
    metric: Literal["EM", "contains", "lastline_EM", "lastline_contains"] = "contains"


def data_files(task: str, settings: dict[str, Any], options: NolimaOptions) -> tuple[Path, list[tuple[int, Path]]]:
    """The needle set and the books: from the local copy (data.nolima, or the entry's path) when given, else by name."""
    books = list(options.books or BOOKS)
    given = settings.get("path") or settings.get("data", {}).get("nolima")
    sources = [(needle_source(options.needle_set), None)] + [(book_source(b), b) for b in books]
    if given:
        root = Path(given)
        missing = [src.file for src, _ in sources if not (root / src.file).is_file()]
        if missing:
            raise InputError(f"NoLiMa {task}: {missing[0]} not found in {root} (data.nolima: the Hub's layout)")
        return root / sources[0][0].file, [(b, root / src.file) for src, b in sources[1:] if b is not None]
    from longkit.eval import fetch as hub

    paths = [hub.fetch_source(task, src) for src, _ in sources]
    return paths[0], list(zip(books, paths[1:]))


def _factory(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    options = NolimaOptions(**settings.get("options", {}))
    needle_set, books = data_files(spec.name, settings, options)
    samples = settings.get("samples")
    return NolimaTask(
        spec.name,
        str(spec.extra["question_type"]),
        [int(n) for n in settings.get("lengths") or LENGTHS],
        needle_set,
        books,
        intervals=options.depth_intervals,
        samples=int(samples) if samples is not None else None,
        seed=int(settings.get("seed", BASE_SEED)),
        metric=options.metric,
        chat=settings.get("chat"),
        needle_set_name=options.needle_set,
    )


def declare() -> list[TaskSpec]:
    """nolima_onehop and nolima_twohop, each over lengths x 26 depths x 5 haystacks."""
    what = {"onehop": "one-hop", "twohop": "two-hop"}
    return [
        TaskSpec(
            f"nolima_{kind}",
            "NoLiMa",
            f"character named beside a {what[kind]} association of the question's keyword, in book text",
            Metric("accuracy", **X100),
            True,
            _factory,
            _CODE,
            data=needle_source(),
            options=NolimaOptions,
            answer_budget=MAX_TOKENS,
            extra={"question_type": kind},
            summarize=nolima_summary,
        )
        for kind in QUESTION_TYPES
    ]
