"""HELMET in-context learning (Yen et al., ICLR 2025, arXiv:2410.02694): many-shot intent and question
classification, five tasks, each at the input lengths HELMET runs (8K-128K), built and scored as princeton-nlp/HELMET
builds and scores them.

Official code (princeton-nlp/HELMET at 4526dfbdc512bd9ff721da336bff4e3e75ecfd27):
- data.py `load_icl`: the data (TREC coarse/fine: `CogComp/trec` train -> test; BANKING77: `PolyAI/banking77` train ->
  test; CLINC150: `clinc_oos` "plus" train -> validation, 151 labels with out-of-scope; NLU: the single
  `xingkunliuxtracta/nlu_evaluation_data` train split cut by `train_test_split(test_size=0.1, seed=seed)`), the
  number of labels (6, 50, 77, 151, 68), the test selection (more test rows than max_test_samples: `shuffle(seed)`,
  then `balance_labels(test, max_test_samples, seed)`), and per test row: local_seed = (sha256(text) + seed) % 2**31,
  the demonstrations `balance_labels(train, shots, local_seed)` (labels in order of first appearance, rounds of one
  row per label drawn with `random.Random(local_seed).sample` -- with its quirk of drawing `rounds % len(rows)`
  first and topping up --, each round shuffled, flattened, cut to `shots`), the labels remapped to
  `random.seed(local_seed); random.shuffle(list(range(num_labels)))` (all configs use numbers, not names), the
  demonstrations as `"{text}\\nlabel: {label}"` joined by blank lines, and `prompt_template` = user_template + "\\n"
  + "label:" (verbatim below); post_process: `parse_output(output, "label:")` then `calculate_metrics`.
- utils.py: `parse_output` (the text after the first "label:", else the first line, stripped, a repeated prefix
  dropped) and `normalize_answer` / `drqa_exact_match_score` (exact_match).
- configs/icl_short.yaml (8K-64K) and configs/icl.yaml (128K): the shots per length (dataset names
  `icl_<task>_<shots>shot_balance`), generation_max_length 20, use_chat_template false, max_test_samples 500,
  stop_new_line true; arguments.py: seed 42. scripts/collect_results.py: the ICL score is exact_match (x100, eval.py's
  mean x 100) and the ICL category averages the five.
- model_utils.py `tokenize`: without the chat template the prompt is `prompt_template.format(**sample)` tokenized
  with special tokens; a prompt over input_max_length - generation_max_length tokens loses the tail of its context
  (the last demonstrations).

Data, fetched by name from the Hub's Parquet copies of these (script-based) datasets, the rows `datasets` loads:
`CogComp/trec` refs/convert/parquet @65752bf53af25bc935a0dce92fb5b6c930728450, `default/train/0000.parquet` and
`default/test/0000.parquet` ({"text", "coarse_label", "fine_label"}); `PolyAI/banking77` refs/convert/parquet,
`default/{train,test}/0000.parquet` ({"text", "label"}); `clinc/clinc_oos` (what `clinc_oos` redirects to),
`plus/{train,validation}-00000-of-00001.parquet` ({"text", "intent"}); `xingkunliuxtracta/nlu_evaluation_data`
refs/convert/parquet, `default/train/0000.parquet` ({"text", "label", ...}). A local copy (`data.helmet_icl` or the
task's `path`) is a directory holding the same relative paths, or `train.parquet`/`train.jsonl` and
`test.parquet`/`test.jsonl`. A suite length is one of HELMET's (8192 ... 131072, with the shots its configs set);
option `shots` sets one count for other lengths.

Differences, deliberately: a prompt longer than the model's window (below HELMET's input length) loses the tail of
its context to fit the window; the cut is at a token boundary of the context's own encoding (HELMET cuts at the
character offset of that token); `datasets`' shuffle and train_test_split are reproduced with numpy's
default_rng(seed).permutation, as `datasets` computes them (tests check this against `datasets`); `chat: true`
sends user_template as the user turn (HELMET's use_chat_template, with no system message).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.metrics import normalize_answer  # SQuAD normalisation, as HELMET utils.py normalize_answer
from longkit.eval.tasks.base import Sample, Task
from longkit.eval.tasks.helmet import parse_output, shuffled
from longkit.eval.tasks.spec import X100, DataSource, Metric, OfficialCode, TaskSpec

_CODE = OfficialCode("princeton-nlp/HELMET", "data.py", "4526dfbdc512bd9ff721da336bff4e3e75ecfd27")

# data.py load_icl, verbatim
ITEM_TEMPLATE = "{text}\nlabel: {label}"
USER_TEMPLATE = 'Use the provided mapping from the text to label to assign a label to the text. Only output "label: {{label}}" and nothing else. \n\n{context}\n\n{question}'
SYSTEM_TEMPLATE = "label:"
PROMPT_TEMPLATE = USER_TEMPLATE + "\n" + SYSTEM_TEMPLATE
GENERATION_MAX_LENGTH = 20  # configs/icl*.yaml
MAX_TEST_SAMPLES = 500
SEED = 42  # arguments.py
STOP = ["\n"]  # stop_new_line: true

_PARQUET = "refs/convert/parquet"
_TREC_PARQUET = "65752bf53af25bc935a0dce92fb5b6c930728450"


@dataclass(frozen=True)
class IclData:
    """One ICL task's data as load_icl reads it."""

    title: str
    repo: str
    train: str
    test: str | None  # None: load_icl cuts the test rows off the train file (NLU)
    label_field: str
    num_labels: int
    shots: dict[int, int]  # input length -> shots (configs/icl_short.yaml, configs/icl.yaml)
    revision: str | None = None


LENGTHS = (8192, 16384, 32768, 65536, 131072)

DATA: dict[str, IclData] = {
    "icl_trec_coarse": IclData(
        "TREC coarse question types (6 labels)",
        "CogComp/trec",
        "default/train/0000.parquet",
        "default/test/0000.parquet",
        "coarse_label",
        6,
        dict(zip(LENGTHS, (400, 800, 1600, 3300, 6600), strict=True)),
        _TREC_PARQUET,
    ),
    "icl_trec_fine": IclData(
        "TREC fine question types (50 labels)",
        "CogComp/trec",
        "default/train/0000.parquet",
        "default/test/0000.parquet",
        "fine_label",
        50,
        dict(zip(LENGTHS, (400, 800, 1600, 3200, 6400), strict=True)),
        _TREC_PARQUET,
    ),
    "icl_banking77": IclData(
        "BANKING77 intents (77 labels)",
        "PolyAI/banking77",
        "default/train/0000.parquet",
        "default/test/0000.parquet",
        "label",
        77,
        dict(zip(LENGTHS, (360, 720, 1450, 2900, 5900), strict=True)),
        _PARQUET,
    ),
    "icl_clinic150": IclData(
        "CLINC150 intents with out-of-scope (151 labels)",
        "clinc/clinc_oos",
        "plus/train-00000-of-00001.parquet",
        "plus/validation-00000-of-00001.parquet",
        "intent",
        151,
        dict(zip(LENGTHS, (440, 880, 1750, 3525, 7050), strict=True)),
    ),
    "icl_nlu": IclData(
        "NLU Evaluation Data intents (68 labels)",
        "xingkunliuxtracta/nlu_evaluation_data",
        "default/train/0000.parquet",
        None,
        "label",
        68,
        dict(zip(LENGTHS, (510, 1020, 2040, 4080, 8296), strict=True)),
        _PARQUET,
    ),
}


class IclOptions(BaseModel):
    """`options:` of the ICL tasks: load_icl's seed and max_test_samples, and shots for a length HELMET does not run."""

    model_config = ConfigDict(extra="forbid")

    seed: int = SEED
    max_test_samples: int | None = Field(MAX_TEST_SAMPLES, ge=1)
    shots: int | None = Field(None, ge=1)


# --- load_icl's sampling -------------------------------------------------------------------------------------------


def balance_labels(rows: list[dict[str, Any]], label_field: str, shots: int, seed: int) -> list[dict[str, Any]]:
    """data.py's balance_labels: rounds of one row per label (labels in order of first appearance), each round
    shuffled, flattened and cut to `shots`; every draw from one random.Random(seed)."""
    rand = random.Random(seed)
    by_label: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_label.setdefault(row[label_field], []).append(row)
    rounds = math.ceil(shots / len(by_label))
    table: list[list[dict[str, Any]]] = [[] for _ in range(rounds)]
    for samples in by_label.values():
        n = len(samples)
        indices = rand.sample(range(n), rounds % n)  # sic: the remainder first, then topped up below
        while len(indices) < rounds:
            indices += rand.sample(range(n), min(rounds - len(indices), n))
        for i, idx in enumerate(indices):
            table[i].append(samples[idx])
    for group in table:
        rand.shuffle(group)
    return [row for group in table for row in group][:shots]


def train_test_split(
    rows: list[dict[str, Any]], seed: int, test_size: float = 0.1
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`datasets`' train_test_split(test_size=0.1, seed=seed): the first ceil(0.1 n) of the permutation are the test."""
    n_test = math.ceil(test_size * len(rows))
    perm = shuffled(len(rows), seed)
    return [rows[i] for i in perm[n_test:]], [rows[i] for i in perm[:n_test]]


def select_test(rows: list[dict[str, Any]], label_field: str, max_test: int | None, seed: int) -> list[dict[str, Any]]:
    """load_icl's test rows: more than max_test_samples are shuffled, then balanced over labels to that many."""
    if max_test is not None and len(rows) > max_test:
        rows = [rows[i] for i in shuffled(len(rows), seed)]
        rows = balance_labels(rows, label_field, max_test, seed)
    return rows


def local_seed(text: str, seed: int) -> int:
    """preprocess's per-row seed."""
    return (int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) + seed) % 2**31


def label_mapping(num_labels: int, seed: int) -> list[int]:
    """preprocess's label -> number map (random.seed(local_seed); random.shuffle)."""
    mapping = list(range(num_labels))
    random.Random(seed).shuffle(mapping)
    return mapping


def make_example(
    row: dict[str, Any], train: list[dict[str, Any]], label_field: str, num_labels: int, shots: int, seed: int
) -> dict[str, str]:
    """preprocess: {"context", "question", "answer"} of one test row with `shots` balanced demonstrations."""
    s = local_seed(row["text"], seed)
    demos = balance_labels(train, label_field, shots, s)
    mapping = label_mapping(num_labels, s)
    context = "\n\n".join(ITEM_TEMPLATE.format(text=d["text"], label=str(mapping[int(d[label_field])])) for d in demos)
    return {"context": context, "question": row["text"], "answer": str(mapping[int(row[label_field])])}


# --- utils.py's scoring ----------------------------------------------------------------------------------------------


def exact_match(output: str, answer: str) -> float:
    """post_process's exact_match: the parsed output equals the answer after normalize_answer."""
    parsed = parse_output(output, SYSTEM_TEMPLATE)
    return float(parsed is not None and normalize_answer(parsed) == normalize_answer(answer))


# --- data files ------------------------------------------------------------------------------------------------------


def _check_row(row: Any, fields: tuple[str, ...], at: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise InputError(f"{at}: expected an object, got {type(row).__name__}")
    for f in fields:
        if f not in row:
            raise InputError(f"{at}: missing field '{f}'")
    if not isinstance(row["text"], str):
        raise InputError(f"{at}: field 'text': expected a string, got {type(row['text']).__name__}")
    label = row[fields[1]]
    if isinstance(label, bool) or not isinstance(label, int):
        raise InputError(f"{at}: field '{fields[1]}': expected an integer label, got {type(label).__name__}")
    return {"text": row["text"], fields[1]: label}


def read_rows(path: Path, label_field: str, num_labels: int) -> list[dict[str, Any]]:
    """The rows of a Parquet or JSONL file with `text` and the label field (an integer below num_labels)."""
    fields = ("text", label_field)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            items = pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 -- any unreadable file is one line naming it
            raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
        rows = [_check_row(r, fields, f"{path}: row {i}") for i, r in enumerate(items, start=1)]
    else:
        from longkit.io import iter_jsonl

        rows = [_check_row(r, fields, f"{path}:{lineno}") for lineno, r in iter_jsonl(path, fields)]
    if not rows:
        raise InputError(f"{path}: no rows")
    bad = next((i for i, r in enumerate(rows, start=1) if not 0 <= r[label_field] < num_labels), None)
    if bad is not None:
        raise InputError(f"{path}: row {bad}: field '{label_field}': label outside 0..{num_labels - 1}")
    return rows


def _source(name: str, file: str) -> DataSource:
    d = DATA[name]
    return DataSource(d.repo, file, setting="helmet_icl", revision=d.revision)


def _local(root: Path, name: str, split: str, file: str) -> Path:
    for cand in (file, f"{split}.parquet", f"{split}.jsonl"):
        if (root / cand).is_file():
            return root / cand
    raise InputError(f"HELMET {name}: none of {file}, {split}.parquet, {split}.jsonl found in {root}")


def data_files(name: str, settings: dict[str, Any]) -> tuple[Path, Path | None]:
    """(train file, test file or None for NLU): the local copy when one is given, else fetched by name."""
    d = DATA[name]
    given = settings.get("path") or settings.get("data", {}).get("helmet_icl")
    if given:
        root = Path(given)
        if not root.is_dir():
            raise InputError(f"HELMET {name}: {root} is not a directory")
        return _local(root, name, "train", d.train), _local(root, name, "test", d.test) if d.test else None
    from longkit.eval.fetch import fetch_source

    train = fetch_source(name, _source(name, d.train))
    return train, fetch_source(name, _source(name, d.test)) if d.test else None


# --- the task --------------------------------------------------------------------------------------------------------


def choose_lengths(name: str, settings: dict[str, Any], options: IclOptions) -> dict[int, int]:
    """Suite length -> shots: HELMET's own for its lengths; any other length needs the `shots` option."""
    table = DATA[name].shots
    out: dict[int, int] = {}
    for n in settings.get("lengths") or [LENGTHS[0]]:
        n = int(n)
        if options.shots is not None:
            out[n] = options.shots
        elif n in table:
            out[n] = table[n]
        else:
            known = ", ".join(f"{k} ({v} shots)" for k, v in table.items())
            raise ConfigError(f"{name}: HELMET runs it at {known}; length {n} is none of them (or set options: shots)")
    return out


class HelmetIclTask(Task):
    """One ICL task at one or more input lengths; each test row gets its own balanced demonstrations."""

    group_by = ("length",)

    def __init__(
        self,
        name: str,
        train_path: Path,
        test_path: Path | None,
        shots: dict[int, int],
        options: IclOptions | None = None,
        limit: int | None = None,
        chat: bool | None = None,
    ):
        self.name = name
        self.data = DATA[name]
        self.train_path = train_path
        self.test_path = test_path
        self.shots = shots
        self.options = options or IclOptions()
        self.limit = limit
        self.chat = bool(chat)  # use_chat_template: false unless the suite says otherwise
        self._loaded: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None

    def loaded(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(train rows, selected test rows) as load_icl has them."""
        if self._loaded is None:
            d, seed = self.data, self.options.seed
            train = read_rows(self.train_path, d.label_field, d.num_labels)
            if self.test_path is None:
                train, test = train_test_split(train, seed)
            else:
                test = read_rows(self.test_path, d.label_field, d.num_labels)
            test = select_test(test, d.label_field, self.options.max_test_samples, seed)
            self._loaded = (train, test[: self.limit] if self.limit is not None else test)
        return self._loaded

    def plan(self) -> list[dict[str, Any]]:
        """One spec per length and selected test row."""
        test = self.loaded()[1]
        return [{"id": f"{n}-{i}", "length": n, "row": i} for n in self.shots for i in range(len(test))]

    def example(self, length: int, row: int) -> dict[str, str]:
        """preprocess's context, question and answer of one spec."""
        train, test = self.loaded()
        d = self.data
        return make_example(test[row], train, d.label_field, d.num_labels, self.shots[length], self.options.seed)

    def render(self, ex: dict[str, str]) -> str:
        """prompt_template (no chat) or user_template (chat), formatted with the example."""
        return (USER_TEMPLATE if self.chat else PROMPT_TEMPLATE).format(**ex)

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """The prompt; over HELMET's input length (or the window) the context loses its tail, as tokenize() cuts."""
        length = int(spec["length"])
        ex = self.example(length, int(spec["row"]))
        overhead = tokenizer.count(tokenizer.render_messages([{"role": "user", "content": ""}])) if self.chat else 1
        limit = min(length, max_context) - GENERATION_MAX_LENGTH - overhead
        text = self.render(ex)
        full = tokenizer.count(text) + overhead
        truncated = False
        excess = tokenizer.count(text) - limit
        if excess > 0:
            ids = tokenizer.encode(ex["context"])
            for _ in range(4):  # re-tokenising at the cut can merge or split a token
                ex = {**ex, "context": tokenizer.decode(ids[: max(len(ids) - excess, 0)])}
                text = self.render(ex)
                if tokenizer.count(text) <= limit:
                    break
                excess += 8
            truncated = True
        meta = {
            "length": length,
            "shots": self.shots[length],
            "input_tokens": full,
            "truncated_by_task": truncated,
        }
        kwargs: dict[str, Any] = {"messages": [{"role": "user", "content": text}]} if self.chat else {"prompt": text}
        return Sample(
            id=spec["id"],
            references=[ex["answer"]],
            meta=meta,
            max_new_tokens=GENERATION_MAX_LENGTH,
            stop=list(STOP),
            **kwargs,
        )

    def score(self, prediction: str, sample: Sample) -> dict[str, float]:
        """post_process: exact_match of parse_output(prediction, "label:")."""
        return {"score": exact_match(prediction, sample.references[0])}

    def fingerprint(self) -> dict[str, Any]:
        """Files, lengths with their shots, options and chat."""
        return {
            "name": self.name,
            "train": str(self.train_path),
            "test": str(self.test_path) if self.test_path else None,
            "shots": {str(k): v for k, v in self.shots.items()},
            "chat": self.chat,
            "limit": self.limit,
            **self.options.model_dump(),
        }

    def describe(self) -> str:
        """Said only where the run leaves HELMET's setup."""
        notes = []
        if self.chat:
            notes.append("chat template on (HELMET's ICL configs: use_chat_template false)")
        if self.options.shots is not None:
            notes.append(f"{self.options.shots} shots at every length (HELMET's configs: per length)")
        return "; ".join(notes)


def _factory(spec: TaskSpec, settings: dict[str, Any]) -> Task:
    options = IclOptions(**settings.get("options", {}))
    shots = choose_lengths(spec.name, settings, options)
    train, test = data_files(spec.name, settings)
    return HelmetIclTask(spec.name, train, test, shots, options, settings.get("samples"), settings.get("chat"))


def declare() -> list[TaskSpec]:
    """The five ICL tasks; HELMET's ICL category averages them."""
    specs = []
    for name, d in DATA.items():
        shots = ", ".join(f"{n // 1024}K:{s}" for n, s in d.shots.items())
        specs.append(
            TaskSpec(
                name,
                "HELMET",
                f"{d.title}, many-shot ICL with labels mapped to numbers ({shots} shots)",
                Metric("exact_match", **X100),
                False,
                _factory,
                _CODE,
                data=_source(name, d.train),
                options=IclOptions,
                answer_budget=GENERATION_MAX_LENGTH,
                average_group="HELMET ICL",
            )
        )
    return specs
