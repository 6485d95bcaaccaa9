"""Bootstrap intervals: the estimators themselves, and every suite number carrying one."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from longkit.eval.bootstrap import mean_interval, paired_difference, ratio_interval, sign_flip_p
from longkit.eval.suite.aggregate import adaptation_rate, effective_length
from longkit.eval.suite.intervals import group_intervals, task_intervals


def test_mean_interval_covers_the_mean_and_is_seeded():
    rng = random.Random(0)
    values = [rng.random() for _ in range(200)]
    lo, hi = mean_interval(values, 2000, seed=3)
    assert lo < np.mean(values) < hi
    assert (lo, hi) == mean_interval(values, 2000, seed=3)
    # the normal approximation for a mean of 200 uniforms: half-width about 1.96 * 0.289 / sqrt(200) = 0.040
    assert (hi - lo) / 2 == pytest.approx(1.96 * np.std(values) / np.sqrt(200), rel=0.15)
    assert mean_interval([0.7]) == (0.7, 0.7)
    with pytest.raises(ValueError):
        mean_interval([1.0, 0.0], resamples=0)


def test_ratio_interval_resamples_units_together():
    # two documents: 10 nats over 10 tokens (loss 1) and 300 over 100 (loss 3). A resample is both of the first
    # (1.0, p 1/4), both of the second (3.0, p 1/4) or one of each: (10 + 300) / (10 + 100) = 2.818..., the ratio of
    # sums, not the mean of the two losses (2.0). The 2.5th and 97.5th percentiles are then exactly 1.0 and 3.0.
    lo, hi = ratio_interval([10.0, 300.0], [10, 100], 4000, seed=0)
    assert (lo, hi) == (1.0, 3.0)
    lo, hi = ratio_interval([10.0, 300.0, 10.0, 300.0] * 10, [10, 100, 10, 100] * 10, 2000, seed=1)
    assert lo < 310 / 110 < hi and hi - lo < 0.5  # forty documents: a narrower interval around the ratio of sums
    assert ratio_interval([6.0], [3]) == (2.0, 2.0)


def test_paired_difference_and_exact_sign_flip_test():
    a = [0.0] * 8
    b = [1.0] * 8
    d = paired_difference(a, b, resamples=1000)
    assert d["difference"] == 1.0 and d["ci_low"] == d["ci_high"] == 1.0
    # all 2^8 sign patterns: only the two all-same patterns are as extreme
    assert d["p_value"] == pytest.approx(2 / 256)
    assert sign_flip_p(np.zeros(5)) == 1.0
    noisy = paired_difference([0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 0, 1])
    assert noisy["p_value"] > 0.5 and noisy["ci_low"] < 0 < noisy["ci_high"]


def _records(scores_by_length):
    return [{"meta": {"length": n}, "scores": {"score": s}} for n, ss in scores_by_length.items() for s in ss]


def test_task_intervals_include_effective_length_and_rate():
    records = _records({1024: [1.0] * 20, 2048: [1.0] * 18 + [0.0] * 2, 4096: [1.0] * 10 + [0.0] * 10})
    out = task_intervals(records, True, True, lambda x: effective_length(x, 0.85), lambda x: adaptation_rate(x), 500, 0)
    assert out["by_length_ci"][1024] == [1.0, 1.0]
    lo, hi = out["by_length_ci"][4096]
    assert lo < 0.5 < hi
    # 2048 (0.9 observed) falls below 0.85 in some resamples: the effective length is 1K or 2K
    assert out["effective_length_ci"] == [1024, 2048]
    assert out["adaptation_rate_ci"][0] < 0.5 < out["adaptation_rate_ci"][1]
    assert out["wide"] is False and out["wide_lengths"] == []
    few = task_intervals(_records({1024: [1.0, 0.0]}), True, True, lambda x: None, lambda x: None, 100, 0)
    assert few["wide"] is True and few["wide_lengths"] == [1024]


def test_benchmark_file_tasks_get_an_interval_per_length_group():
    """A file task's length groups (BABILong's published lengths, LongBench's buckets) carry intervals, keyed as
    the summary's by_group keys them."""
    records = [{"meta": {"length": "1k"}, "scores": {"score": s}} for s in [1.0] * 10]
    records += [{"meta": {"length": 2048}, "scores": {"score": s}} for s in [1.0] * 5 + [0.0] * 5]
    records += [{"meta": {}, "scores": {"score": 1.0}}]  # no length: only in the overall interval
    out = task_intervals(records, False, False, lambda x: None, lambda x: None, 500, 0)
    assert set(out["by_group_ci"]) == {"1k", "2048"} and "by_length_ci" not in out
    assert out["by_group_ci"]["1k"] == [1.0, 1.0]
    lo, hi = out["by_group_ci"]["2048"]
    assert lo < 0.5 < hi


def test_group_intervals_average_the_tasks():
    members = {"a": {1024: [1.0] * 10, 2048: [0.0] * 10}, "b": {1024: [0.0] * 10, 2048: [1.0] * 10}}
    out = group_intervals(
        members, [1024, 2048], lambda x: effective_length(x, 0.4), lambda x: adaptation_rate(x), 200, 0
    )
    assert out["by_length_ci"] == {1024: [0.5, 0.5], 2048: [0.5, 0.5]}
    assert out["effective_length_ci"] == [2048, 2048]


def test_every_suite_number_carries_an_interval(tiny_backend, tmp_path, monkeypatch):
    from longkit.eval.suite import SuiteConfig, run_suite

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = SuiteConfig.model_validate(
        {
            "name": "ci",
            "models": [{"name": "tiny", "model": "unused"}],
            "lengths": [256, 512],
            "samples": 3,
            "tasks": ["niah_single_1", "vt"],
            "out": str(tmp_path / "suite"),
            "chat": False,
            "bootstrap": 200,
        }
    )
    run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    rep = json.loads((tmp_path / "suite" / "suite.json").read_text())["models"]["tiny"]
    for name, e in rep["tasks"].items():
        lo, hi = e["overall_ci"]
        assert lo <= e["overall"] <= hi, name
        for n, score in e["by_length"].items():
            assert e["by_length_ci"][n][0] <= score <= e["by_length_ci"][n][1]
        assert "effective_length_ci" in e and "adaptation_rate_ci" in e
        assert e["wide"] is False and sorted(map(str, e["wide_lengths"])) == sorted(e["by_length"])  # 3 per length
    assert "by_length_ci" in rep["ruler_average"]
    md = (tmp_path / "suite" / "report.md").read_text()
    assert "95% percentile-bootstrap intervals" in md and "†" in md
    with pytest.raises(ValueError, match="bootstrap"):
        SuiteConfig.model_validate({**cfg.model_dump(), "bootstrap": 0})


def test_rag_arms_carry_intervals_and_tune_prefers_a_cheaper_setting_inside_them():
    from longkit.eval.rag_qa import QAItem
    from longkit.eval.rag_vs_long_report import render_report, summarize
    from longkit.rag.tune import choose_setting

    items = [QAItem(id=f"q{i}", question="?", answers=["a"], document="d") for i in range(20)]
    scores = {"rag-c100-k1": [1.0] * 12 + [0.0] * 8, "rag-c400-k4": [1.0] * 14 + [0.0] * 6, "long": [1.0] * 20}
    records = [
        {
            "id": f"q{i}",
            "setting": s,
            "score": v,
            "context_tokens": 100 if s == "rag-c100-k1" else 1600,
            "dropped_chunks": 0,
            "truncated": False,
            "prediction": "a",
        }
        for s, vs in scores.items()
        for i, v in enumerate(vs)
    ]
    summary = summarize(records, items, [100, 400], [1, 4], include_long=True)
    cheap = next(r for r in summary["rag"] if r["chunk_size"] == 100 and r["top_k"] == 1)
    assert cheap["score"] == 0.6 and cheap["ci"][0] < 0.6 < cheap["ci"][1] and cheap["wide"] is False
    assert summary["long_context"]["ci"] == [1.0, 1.0]
    assert "0.600 (" in render_report(summary)
    choice = choose_setting(summary, tolerance=0.02)
    # 0.7 (the best) lies inside the cheap arm's interval: the cheap arm is chosen, and the note says why
    assert (choice["chunk_size"], choice["top_k"]) == (100, 1)
    assert choice["chosen_because"] == "the best score is inside its 95% interval"
    for r in summary["rag"]:
        r["ci"] = None  # without intervals, only the tolerance counts
    assert (choose_setting(summary, tolerance=0.02)["chunk_size"]) == 400


def test_sign_flip_by_sampling_and_the_resample_cap():
    # 2^20 patterns > 1000 resamples: sampled. All differences +1: no random pattern is as extreme unless every sign
    # comes out +1 or every -1 (probability 2^-19), so p is the floor (hits + 1) / (R + 1) with the observed counted.
    assert sign_flip_p(np.ones(20), 1000, seed=0) == pytest.approx(1 / 1001)
    balanced = np.array([1.0, -1.0] * 10)
    assert sign_flip_p(balanced + 0.01, 1000, seed=0) > 0.5
    with pytest.raises(ValueError, match="between 1 and 100000"):
        mean_interval([0.0, 1.0], resamples=100_001)
