"""The prepared GPU benchmark (benchmarks/gpu_cpt_lengths.py) runs end to end in its CPU smoke mode: both step
kinds, the plan's prediction beside each row, the longest-fit search and the JSON it writes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_cpt_lengths", ROOT / "benchmarks" / "gpu_cpt_lengths.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_script_smoke_run_writes_rows_with_predictions(tmp_path):
    mod = _load()
    result = mod.main(["--smoke", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "gpu_cpt_lengths-smoke.json").read_text())
    assert written == json.loads(json.dumps(result))
    ok = [r for r in result["rows"] if r.get("status") == "ok"]
    assert {(r["model"], r["seq_len"]) for r in ok} == {(m, n) for m in ("tiny", "tiny-bf16") for n in (64, 128, 256)}
    for r in ok:
        assert r["tokens_per_s"] > 0 and r["predicted_gib"] >= 0 and r["predicted_activation_gib"] >= 0
        assert r["mode"].startswith("full step" if r["model"] == "tiny" else "forward+backward")
        assert r["mfu"] is None  # no bf16 peak on a CPU
    longest = {r["model"]: r["longest_fitting_seq_len"] for r in result["rows"] if "longest_fitting_seq_len" in r}
    assert longest == {"tiny": 256, "tiny-bf16": 256}


def test_gpu_script_refuses_a_cpu_run_without_smoke(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        _load().main(["--device", "cpu", "--out", str(tmp_path)])
    assert not list(tmp_path.iterdir())  # refused before anything is built or written
