"""Sharding as a function: `--shard K/N` picks a deterministic subset, `--workers N` runs N shards in spawned worker
processes, and the shards' caches and skips merge into one report."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from longkit.backends.base import Completion, GenerationRequest, TextTokenizer
from longkit.errors import ConfigError
from longkit.eval.suite import SuiteConfig, jobs, parse_shard, run_suite, shard_jobs, write_suite_report

TASKS = ["niah_single_1", "niah_single_2", "niah_single_3"]


class FixedBackend:
    """A fast stand-in model that answers a fixed text."""

    name = "fixed"
    max_context = 2048

    def __init__(self, tokenizer: TextTokenizer):
        self.tokenizer = tokenizer

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return [Completion(text="42") for _ in requests]


def _cfg(out: Path, models: int = 1) -> SuiteConfig:
    return SuiteConfig.model_validate(
        dict(
            name="shards",
            models=[{"name": f"m{i}", "model": "unused"} for i in range(models)],
            lengths=[512],
            samples=1,
            chat=False,
            tasks=TASKS,
            out=str(out),
        )
    )


def test_shards_are_deterministic_disjoint_and_cover_every_job(tmp_path):
    cfg = _cfg(tmp_path, models=2)
    assert shard_jobs(cfg, (0, 2)) == [(0, 0), (0, 2), (1, 1)] and shard_jobs(cfg, (1, 2)) == [(0, 1), (1, 0), (1, 2)]
    for n in range(1, 8):
        parts = [shard_jobs(cfg, (k, n)) for k in range(n)]
        assert sorted(j for p in parts for j in p) == jobs(cfg)
        assert sum(len(p) for p in parts) == len(jobs(cfg))


@pytest.mark.parametrize("text", ["3/2", "2/2", "-1/2", "a/b", "1/2/3", "1", ""])
def test_bad_shard_is_one_config_error(text):
    with pytest.raises(ConfigError, match="--shard: expected K/N"):
        parse_shard(text)
    assert parse_shard("1/3") == (1, 3)


def test_sharded_runs_merge_their_caches_and_skips_into_one_report(trained_tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = FixedBackend(TextTokenizer(trained_tokenizer))
    cfg = _cfg(tmp_path / "run").model_copy(update={"lengths": [512, 4096]})  # 4096 is skipped: beyond the window
    out = Path(cfg.out)
    for k in range(2):  # as two machines would: each shard alone, then the report from the shared directory
        assert "models" not in run_suite(cfg, backends={"m0": backend}, shard=(k, 2), progress=False)
    assert not (out / "report.md").exists()
    assert {p.name for p in (out / "cache").iterdir()} == {"m0.shard0of2.jsonl", "m0.shard1of2.jsonl"}
    assert json.loads((out / "cache.shard1of2.json").read_text())["m0"]["misses"] == 1
    rep = write_suite_report(cfg)
    assert set(rep["models"]["m0"]["tasks"]) == set(TASKS)
    assert sorted(s["task"] for s in rep["skipped"]) == TASKS  # every shard's skips (4096) are reported
    # a later run of any shape reads every shard's cache file: nothing is generated twice
    again = cfg.model_copy(update={"out": str(tmp_path / "again")})
    shutil.copytree(out / "cache", Path(again.out) / "cache")
    run_suite(again, backends={"m0": backend}, progress=False)
    assert json.loads((Path(again.out) / "cache.json").read_text())["m0"] == {"hits": 3, "misses": 0}


def test_cli_workers_run_shards_in_worker_processes_not_the_cli(trained_tokenizer, tmp_path, monkeypatch):
    from longkit.cli import app
    from longkit.testing import build_tiny_llama

    model = build_tiny_llama(trained_tokenizer, tmp_path / "tiny", max_positions=2048)
    launched: list[str] = []
    popen = subprocess.Popen

    def recording_popen(args: Sequence[str] | str, *a: object, **kw: object) -> subprocess.Popen[bytes]:
        launched.append(" ".join(args) if not isinstance(args, str) else args)
        return popen(args, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    cfg = {
        "name": "workers",
        "models": [{"name": "tiny", "model": str(model)}],
        "lengths": [384],
        "samples": 1,
        "tasks": ["niah_single_1", "niah_single_2"],
        "out": str(tmp_path / "out"),
        "chat": False,
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["eval", "suite", str(path), "--workers", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert not [c for c in launched if "longkit" in c]  # no `longkit eval suite --shard` child commands
    assert "niah_single_1: overall" in res.output and "niah_single_2: overall" in res.output
    out = tmp_path / "out"
    assert {p.name for p in (out / "cache").iterdir()} == {"tiny.shard0of2.jsonl", "tiny.shard1of2.jsonl"}
    assert (out / "skipped.shard0of2.json").exists() and (out / "cache.shard1of2.json").exists()
    assert "| niah_single_2 | RULER |" in (out / "report.md").read_text()


def _fail_odd_shards(cfg: SuiteConfig, shard: tuple[int, int]) -> None:
    """A shard function for the worker pool (module level: spawned workers import it by name)."""
    if shard[0] % 2:
        raise ConfigError(f"data for shard {shard[0]} is missing")


def test_failed_worker_shards_are_one_config_error_naming_each(tmp_path):
    from longkit.eval.suite import run_shards

    with pytest.raises(ConfigError, match=r"^suite shards failed: shard 1/3: data for shard 1 is missing$"):
        run_shards(_cfg(tmp_path), 3, _fail_odd_shards)
