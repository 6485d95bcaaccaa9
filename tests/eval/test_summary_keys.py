"""One spelling of per-length keys in every eval summary ('4096'), and NIAH's containment metric under its own
name (`contains_all`, formerly `exact`); older spellings and keys are still read when a run resumes or reports."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from longkit.backends.base import Completion, GenerationRequest, TextTokenizer
from longkit.eval.runner import length_key, run_task, summarize, upgrade_scores


@pytest.mark.parametrize(
    ("key", "spelt"),
    [
        (4096, "4096"),
        ("4096", "4096"),
        ("4096.0", "4096"),
        (4096.0, "4096"),
        ("len_4096", "4096"),
        ("16k", "16k"),
        (None, "None"),
    ],
)
def test_length_keys_have_one_spelling(key, spelt):
    assert length_key(key) == spelt


def test_old_length_spellings_read_back_in_reports():
    from longkit.eval.report import markdown_grid
    from longkit.eval.suite import by_length

    old = {
        "by": {"length": {"len_1024": {"score": 0.5}, "2048.0": {"score": 1.0}}},
        "cells": [{"length": 1024, "depth": 0.0, "score": 0.5}, {"length": 2048, "depth": 0.0, "score": 1.0}],
    }
    assert by_length(old) == {1024: 0.5, 2048: 1.0}
    assert "| **mean** | **0.50** | **1.00** |" in markdown_grid(old)


def test_summaries_key_lengths_as_decimal_token_counts():
    records = [{"meta": {"length": n}, "scores": {"score": 1.0}, "prediction": "x"} for n in (512, 1024.0)]
    assert list(summarize(records, ("length",))["by"]["length"]) == ["512", "1024"]


def test_niah_results_written_as_exact_count_as_contains_all():
    old = {"task": "niah", "scores": {"score": 1.0, "keyword_recall": 1.0, "exact": 1.0}, "meta": {"length": 9}}
    new = {"task": "niah", "scores": {"score": 0.5, "keyword_recall": 0.5, "contains_all": 0.0}, "meta": {"length": 9}}
    assert upgrade_scores(old)["scores"] == {"score": 1.0, "keyword_recall": 1.0, "contains_all": 1.0}
    passkey = {"task": "passkey", "scores": {"score": 1.0, "exact": 1.0}}
    assert upgrade_scores(passkey) is passkey  # passkey's `exact` is an exact match of the key: not renamed
    s = summarize([upgrade_scores(r) for r in (old, new)], ("length",))
    assert s["metrics"] == ["contains_all", "keyword_recall", "score"] and s["overall"]["contains_all"] == 0.5


class Echo:
    """A stand-in model that answers the needle's answer."""

    name = "echo"
    max_context = 2048

    def __init__(self, tokenizer: TextTokenizer) -> None:
        self.tokenizer = tokenizer

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return [Completion(text="eat a sandwich and sit in Dolores Park on a sunny day") for _ in requests]


def test_a_resumed_niah_run_reads_old_results_under_the_new_name(trained_tokenizer, tmp_path):
    from longkit.eval.tasks.niah import NIAHConfig, NIAHTask

    def task() -> NIAHTask:
        return NIAHTask(NIAHConfig(lengths=[200], depths=[0, 100], haystack="noise"))

    backend = Echo(TextTokenizer(trained_tokenizer))
    run_task(task(), backend, tmp_path, progress=False)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["scores"]["exact"] = first["scores"].pop("contains_all")  # as an older longkit wrote it
    (tmp_path / "results.jsonl").write_text(json.dumps(first) + "\n")
    (tmp_path / "summary.json").unlink()
    summary = run_task(task(), backend, tmp_path, progress=False)  # resumes: one sample left
    assert summary["samples"] == 2 and summary["metrics"] == ["contains_all", "keyword_recall", "score"]
    assert summary["overall"]["contains_all"] == 1.0 and set(summary["by"]["length"]) == {"200"}
