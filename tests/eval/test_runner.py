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


def test_niah_cli_survives_sigkill_and_resumes(fast_model_dir, tmp_path):
    out = tmp_path / "run"
    args = ["eval", "niah", "--model", str(fast_model_dir), "--lengths", "256,512",
            "--depths", "linspace:0:100:21", "--answer-budget", "16", "--out", str(out)]
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
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == 42
    assert keys[: len(done_before)] == done_before  # nothing already written was lost or redone
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == 42 and set(summary["by"]["length"]) == {"256", "512"}
    assert all(abs(r["meta"]["actual_length"] - r["meta"]["length"]) <= 0.01 * r["meta"]["length"] for r in rows)
    assert (out / "report.md").read_text().startswith("# niah")
    assert (out / "niah_heatmap.png").stat().st_size > 5000

    before = results.read_bytes()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and results.read_bytes() == before  # nothing redone

    cmd2, _ = _cli(*args, "--template", "question-both")
    clash = subprocess.run(cmd2, env=env, capture_output=True, text=True, timeout=300)
    assert clash.returncode == 2 and "other settings" in clash.stderr
    assert results.read_bytes() == before


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
    cmd, env = _cli("eval", "niah", "--backend", "openai", "--base-url", "http://127.0.0.1:9", "--tokenizer",
                    str(fast_model_dir), "--lengths", "256", "--out", str(tmp_path / "o"))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "cannot reach" in r.stderr
