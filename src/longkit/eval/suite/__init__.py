"""`longkit eval suite`: any mix of tasks x lengths x models from one YAML, with a request cache, shards
over processes or machines, and one Markdown + JSON report (per task and length, RULER's effective length,
UtK's long-context adaptation rate, score-versus-length plots and NIAH heatmaps).

config: the YAML schema · cache: the request cache · schedule: shards and worker processes · run: driving
tasks through the runner · record: what made the results under out (run.json) · aggregate: scores from finished
runs · report: suite.json, report.md, plots."""

from __future__ import annotations

from longkit.eval.suite.aggregate import (
    adaptation_rate,
    build_report,
    by_length,
    collect,
    effective_length,
    group_averages,
    official_score,
)
from longkit.eval.suite.cache import CachedBackend, RequestCache, request_key, with_window
from longkit.eval.suite.config import ModelEntry, SuiteConfig, TaskEntry, check_models, load_suite
from longkit.eval.suite.record import check_suite_record, suite_record, write_suite_record
from longkit.eval.suite.report import rebuild_report, write_suite_report
from longkit.eval.suite.run import (
    cached_backend,
    check_suite,
    fit_lengths,
    nothing_ran,
    run_job,
    run_suite,
    run_suite_parallel,
    task_settings,
)
from longkit.eval.suite.schedule import jobs, parse_shard, run_shards, shard_jobs

__all__ = [
    "CachedBackend",
    "ModelEntry",
    "RequestCache",
    "SuiteConfig",
    "TaskEntry",
    "adaptation_rate",
    "build_report",
    "by_length",
    "cached_backend",
    "check_models",
    "check_suite",
    "check_suite_record",
    "collect",
    "effective_length",
    "fit_lengths",
    "jobs",
    "load_suite",
    "nothing_ran",
    "group_averages",
    "official_score",
    "parse_shard",
    "rebuild_report",
    "request_key",
    "run_job",
    "run_shards",
    "run_suite",
    "run_suite_parallel",
    "shard_jobs",
    "suite_record",
    "task_settings",
    "with_window",
    "write_suite_record",
    "write_suite_report",
]
