"""A task that extrapolates gets its own window view: the shared backend, its cache keys and later tasks keep theirs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from longkit.backends.base import Completion, GenerationRequest, TextTokenizer, fit_request
from longkit.eval.suite import CachedBackend, RequestCache, SuiteConfig, request_key, run_suite, with_window


class EchoBackend:
    """A fast stand-in model: fits each prompt to its window like a real backend and answers a fixed text."""

    name = "echo"

    def __init__(self, tokenizer: TextTokenizer, max_context: int = 2048):
        self.tokenizer = tokenizer
        self.max_context = max_context

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        out = []
        for r in requests:
            text, cut = fit_request(self.tokenizer, r, self.max_context)
            out.append(Completion(text="42", prompt_tokens=self.tokenizer.count(text), truncated=cut))
        return out


@pytest.fixture
def echo(trained_tokenizer):
    return EchoBackend(TextTokenizer(trained_tokenizer))


def _cfg(out: Path, tasks: list[dict]) -> SuiteConfig:
    return SuiteConfig.model_validate(
        dict(
            name="win",
            models=[{"name": "m", "model": "unused"}],
            samples=1,
            chat=False,
            tasks=tasks,
            allow_extrapolation=True,
            out=str(out),
        )
    )


def _keys(out: Path) -> set[str]:
    return {json.loads(line)["key"] for line in (out / "cache" / "m.jsonl").read_text().splitlines()}


FIRST = {"name": "niah_single_1", "lengths": [3072]}  # beyond the 2048-token window: needs extrapolation
SECOND = {"name": "niah_single_2", "lengths": [1024]}


def test_extrapolating_task_leaves_shared_backend_and_later_cache_keys_alone(echo, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    both, alone, first = tmp_path / "both", tmp_path / "alone", tmp_path / "first"
    run_suite(_cfg(both, [FIRST, SECOND]), backends={"m": echo}, progress=False)
    assert echo.max_context == 2048  # the shared backend was not widened in place

    def window(out: Path, task: str) -> int:
        return json.loads((out / "m" / task / "run.json").read_text())["generation"]["max_context"]

    assert window(both, "niah_single_1") == 3072  # the first task ran on its own wider view
    assert window(both, "niah_single_2") == 2048  # the second task saw the original window
    run_suite(_cfg(alone, [SECOND]), backends={"m": echo}, progress=False)
    run_suite(_cfg(first, [FIRST]), backends={"m": echo}, progress=False)
    # the second task's requests hash exactly as in a run of it alone; the suite's cache holds nothing else
    assert _keys(alone) <= _keys(both)
    assert _keys(both) == _keys(alone) | _keys(first) and not _keys(alone) & _keys(first)
    preds = [json.loads(x)["prediction"] for x in (both / "m" / "niah_single_2" / "results.jsonl").open()]
    assert preds == [json.loads(x)["prediction"] for x in (alone / "m" / "niah_single_2" / "results.jsonl").open()]


def test_window_views_share_the_cache_and_never_assign_the_window(echo, tmp_path):
    cached = CachedBackend(echo, RequestCache(tmp_path / "c.jsonl"), "m")
    wide = cached.with_window(4096)
    assert wide.max_context == 4096 and cached.max_context == 2048 and echo.max_context == 2048
    assert wide.cache is cached.cache and wide.inner is not echo and wide.inner.tokenizer is echo.tokenizer
    with pytest.raises(AttributeError, match="with_window"):
        cached.max_context = 4096
    assert with_window(echo, 2048) is echo  # the same window needs no view
    req = GenerationRequest(prompt="hello " * 10, max_new_tokens=4)
    wide.generate([req])
    cached.generate([req])  # another window, another key: a miss
    cached.generate([req])  # then a hit of the fresh entry
    assert (cached.hits, cached.misses) == (1, 2)
    assert {r["key"] for r in cached.log.records()} == {request_key("m", 4096, req), request_key("m", 2048, req)}
