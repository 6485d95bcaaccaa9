"""InfiniteBench's generated retrieval tasks pinned to the official generator, OpenBMB/InfiniteBench
data/construct_synthetic_dataset.py@220fd2e0dad86a9e5839ab2793ceea5b20f52d61 (build_passkey, build_number_string,
build_kv_retrieval), and the GPT-4 templates of src/prompt.py."""

from __future__ import annotations

import json
import random
import re

import pytest

from longkit.backends.base import TextTokenizer
from longkit.eval.haystack import NOISE_SENTENCE
from longkit.eval.tasks.infinitebench import (
    KV_INPUT,
    MAX_NEW_TOKENS,
    NUMBER_NEEDLE,
    PASSKEY_NEEDLE,
    TEMPLATES,
    InfiniteRetrievalTask,
    RetrievalConfig,
    number_string_key,
    passkey_key,
)


@pytest.fixture(scope="module")
def tok(trained_tokenizer):
    return TextTokenizer(trained_tokenizer)


def _adjacent_repeats(key: str) -> int:
    return sum(a == b for a, b in zip(key, key[1:]))


def test_generator_strings_and_budgets():
    """The generator's needle sentences and questions, the GPT-4 templates (src/prompt.py) and the answer budgets
    (src/eval_utils.py DATA_NAME_TO_MAX_NEW_TOKENS)."""
    assert PASSKEY_NEEDLE == "The pass key is {key}. Remember it. {key} is the pass key."
    assert NUMBER_NEEDLE == "The sequence of digits is {key}. Remember it. {key} is the sequence of digits."
    assert TEMPLATES["passkey"] == (
        "There is an important info hidden inside a lot of irrelevant text. Find it and "
        "memorize them. I will quiz you about the important information there.\n\n"
        "{context}\n\n{input}"
    )
    assert TEMPLATES["number_string"] == (
        "There is an important info hidden inside a lot of irrelevant text. Find it. "
        "I will quiz you about the important information there.\n\n{context}\n\n{input}"
    )
    assert TEMPLATES["kv_retrieval"] == (
        "Extract the value corresponding to the specified key in the JSON object below.\n\n{context}\n\n{input}"
    )
    assert {k: MAX_NEW_TOKENS[k] for k in ("passkey", "number_string", "kv_retrieval")} == {
        "passkey": 6,
        "number_string": 12,
        "kv_retrieval": 50,
    }


def test_passkeys_are_five_free_digits_and_may_start_with_zero():
    rng = random.Random(0)
    keys = [passkey_key(rng) for _ in range(2000)]
    assert all(re.fullmatch(r"\d{5}", k) for k in keys)
    leading = sum(k[0] == "0" for k in keys) / len(keys)
    assert 0.06 < leading < 0.14  # one in ten, as random.randint(0, 9) per digit gives


def test_number_string_keys_double_five_digits_in_place():
    """Five digits, then five times keys.insert(pos, keys[pos]): ten digits with at least five adjacent repeats
    (an inserted copy sits next to its original and later inserts never separate a pair)."""
    rng = random.Random(1)
    keys = [number_string_key(rng) for _ in range(2000)]
    assert all(re.fullmatch(r"\d{10}", k) for k in keys)
    assert min(_adjacent_repeats(k) for k in keys) >= 5
    assert any(k[0] == "0" for k in keys)
    # ten uniform digits (longkit's old draw) almost never have five adjacent repeats
    uniform = [str(random.Random(i).randint(10**9, 10**10 - 1)) for i in range(2000)]
    assert sum(_adjacent_repeats(k) >= 5 for k in uniform) < 20


@pytest.mark.parametrize("kind", ["passkey", "number_string"])
def test_noise_lines_and_needle_line(kind, tok):
    """context = noise * j + ans + noise * (n - j), each line ending in a newline; the GPT-4 template around it."""
    task = InfiniteRetrievalTask(kind, RetrievalConfig(lengths=[1024], num_samples=3, chat=False))
    s = task.build(task.plan()[1], tok, 4096)
    key = s.references[0]
    needle = (PASSKEY_NEEDLE if kind == "passkey" else NUMBER_NEEDLE).format(key=key)
    head, question = TEMPLATES[kind].split("{context}")
    assert s.prompt.startswith(head) and s.prompt.endswith(question.format(input=s.prompt.rsplit("\n\n", 1)[1]))
    context = s.prompt[len(head) : s.prompt.rindex("\n\n")]
    lines = context.split("\n")
    assert lines[-1] == "" and lines.count(needle) == 1
    assert all(line == NOISE_SENTENCE for line in lines[:-1] if line != needle)
    assert s.max_new_tokens == MAX_NEW_TOKENS[kind] == {"passkey": 6, "number_string": 12}[kind]
    if kind == "number_string":
        assert _adjacent_repeats(key) >= 5


def test_kv_question_starts_with_a_newline(tok):
    """build_kv_retrieval: '{...}' then '\\nKey: "k"\\nThe value associated with the specified key is: '."""
    assert KV_INPUT == '\nKey: "{key}"\nThe value associated with the specified key is: '
    task = InfiniteRetrievalTask("kv_retrieval", RetrievalConfig(lengths=[1024], num_samples=1, chat=False))
    s = task.build(task.plan()[0], tok, 4096)
    assert s.prompt.startswith(
        "Extract the value corresponding to the specified key in the JSON object below.\n\nJSON data:\n{"
    )
    body, tail = s.prompt.rsplit('}\n\n\nKey: "', 1)
    key = tail.split('"', 1)[0]
    assert tail.endswith('"\nThe value associated with the specified key is: ')
    pairs = json.loads(body.split("JSON data:\n", 1)[1] + "}")
    assert pairs[key] == s.references[0] and s.max_new_tokens == 50
