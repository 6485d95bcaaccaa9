"""End to end: `longkit eval niah` on a tiny random Llama, killed with SIGKILL and resumed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from longkit.testing import build_tiny_llama


@pytest.fixture(scope="module")
def fast_model_dir(trained_tokenizer, tmp_path_factory):
    # vocabulary of 2000 keeps each forward pass cheap on CPU
    return build_tiny_llama(trained_tokenizer, tmp_path_factory.mktemp("fast-llama"), max_positions=2048)


def _cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return [sys.executable, "-m", "longkit", *args], env


def test_niah_cli_survives_sigkill_and_resumes(fast_model_dir, tmp_path, tree_hashes):
    out = tmp_path / "run"
    args = [
        "eval",
        "niah",
        "--model",
        str(fast_model_dir),
        "--lengths",
        "256,512",
        "--depths",
        "linspace:0:100:21",
        "--answer-budget",
        "16",
        "--out",
        str(out),
    ]
    cmd, env = _cli(*args)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 3:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = [json.loads(line)["key"] for line in results.read_text().splitlines() if line.endswith("}")]
    assert 3 <= len(done_before) < 42

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"niah: {len(done_before)}/42 samples" in resumed.stderr and "niah: 42/42 samples" in resumed.stderr
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 42
    assert keys[: len(done_before)] == done_before  # nothing already written was lost or redone
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == 42 and set(summary["by"]["length"]) == {"256", "512"}
    assert all(abs(r["meta"]["actual_length"] - r["meta"]["length"]) <= 0.01 * r["meta"]["length"] for r in rows)
    assert (out / "report.md").read_text().startswith("# niah")
    assert (out / "niah_heatmap.png").stat().st_size > 5000

    before = tree_hashes(out)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "niah: already complete" in again.stderr
    assert tree_hashes(out) == before  # nothing redone, nothing rewritten

    cmd2, _ = _cli(*args, "--template", "question-both")
    clash = subprocess.run(cmd2, env=env, capture_output=True, text=True, timeout=300)
    assert clash.returncode == 2 and clash.stderr.strip() == (
        f'error: --template: this output was made with "question-after", not "question-both"; use a new --out or '
        f"delete {out} to start fresh"
    )
    assert tree_hashes(out) == before


def test_cli_bad_input_exits_2_with_one_line(fast_model_dir, tmp_path):
    cases = [
        (["--lengths", "4096"], "exceeds the model's context window"),
        (["--depths", "0,120"], "outside 0-100"),
        (["--haystack", str(tmp_path / "missing")], "haystack"),
        (["--lengths", "abc"], "lengths"),
    ]
    for extra, message in cases:
        cmd, env = _cli("eval", "passkey", "--model", str(fast_model_dir), "--out", str(tmp_path / "o"), *extra)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (extra, r.stderr)
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("lengths: [256\n")
    cmd, env = _cli("eval", "niah", "--config", str(bad))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "bad.yaml" in r.stderr and "invalid YAML" in r.stderr
    bad.write_text("lengths: [256]\nunknown_key: 1\n")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown_key" in r.stderr


def test_unreachable_server_is_a_clear_error(tmp_path, fast_model_dir):
    cmd, env = _cli(
        "eval",
        "niah",
        "--backend",
        "openai",
        "--base-url",
        "http://127.0.0.1:9",
        "--tokenizer",
        str(fast_model_dir),
        "--lengths",
        "256",
        "--out",
        str(tmp_path / "o"),
    )
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "cannot reach" in r.stderr


# --- run record (run.json) and result-log fault injection --------------------------------------------------------


def _passkey_run(model_dir, out, **backend_kwargs):
    from longkit.backends.hf import HFBackend
    from longkit.eval.runner import run_task
    from longkit.eval.tasks.niah import NIAHConfig, PasskeyTask

    backend = HFBackend.from_name(str(model_dir), batch_size=2, **backend_kwargs)
    task = PasskeyTask(NIAHConfig(lengths=[128], depths=[0, 50, 100], answer_budget=4, haystack="noise"))
    return run_task(task, backend, out, batch_size=2, progress=False, model_name=str(model_dir))


def test_run_record_names_backend_model_settings_and_version(fast_model_dir, tmp_path):
    import longkit
    from longkit.errors import ConfigError

    out = tmp_path / "run"
    summary = _passkey_run(fast_model_dir, out)
    record = json.loads((out / "run.json").read_text())
    assert record["backend"] == "hf" and record["model"] == str(fast_model_dir)
    assert record["generation"]["max_context"] == 2048 and record["longkit_version"] == longkit.__version__
    assert summary["samples"] == 3 and summary["empty_answers"] == sum(
        not json.loads(line)["prediction"].strip() for line in (out / "results.jsonl").read_text().splitlines()
    )
    before = (out / "results.jsonl").read_bytes()
    with pytest.raises(
        ConfigError,
        match=r"^generation\.max_context: this output was made with 2048, not 1024; use a "
        r"new --out or delete .* to start fresh$",
    ):
        _passkey_run(fast_model_dir, out, max_context=1024)
    assert (out / "results.jsonl").read_bytes() == before  # nothing merged, nothing lost


def test_run_record_mismatch_and_older_records():
    import tempfile
    from pathlib import Path

    from longkit.errors import ConfigError
    from longkit.eval.runner import check_run_record

    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        check_run_record(out, {"task": {"a": 1}, "model": "m1", "longkit_version": "0.1.0"})
        check_run_record(out, {"task": {"a": 1}, "model": "m1", "longkit_version": "0.1.0"})  # same: resumes
        with pytest.raises(ConfigError, match='model was "m1", now "m2"'):
            check_run_record(out, {"task": {"a": 1}, "model": "m2", "longkit_version": "0.1.0"})
        with pytest.raises(ConfigError, match="longkit_version was"):
            check_run_record(out, {"task": {"a": 1}, "model": "m1", "longkit_version": "9.9"})
        (out / "run.json").write_text(json.dumps({"task": {"a": 1}, "model": "m1"}))  # written by an older longkit
        check_run_record(out, {"task": {"a": 1}, "model": "m1", "backend": "hf"})
        assert json.loads((out / "run.json").read_text())["backend"] == "hf"  # recorded from now on


def test_torn_last_line_resumes_and_garbled_middle_line_is_an_error(fast_model_dir, tmp_path):
    from longkit.errors import InputError

    out = tmp_path / "run"
    _passkey_run(fast_model_dir, out)
    results = out / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    results.write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # killed mid-write of the 3rd record
    summary = _passkey_run(fast_model_dir, out)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert summary["samples"] == 3 and [r["key"] for r in rows] == [json.loads(ln)["key"] for ln in lines]

    garbled = bytearray(results.read_bytes())
    garbled[len(lines[0]) + 5] = ord("#")  # one byte inside the 2nd line
    results.write_bytes(bytes(garbled))
    with pytest.raises(InputError, match=r"results\.jsonl:2: garbled result line"):
        _passkey_run(fast_model_dir, out)
    assert results.read_bytes() == bytes(garbled)  # an error, not a silent truncation
