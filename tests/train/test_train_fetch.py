"""`longkit train fetch CONFIG`: the SFT subsets and streaming CPT sources a recipe names, fetched into the caches
(here an offline Hub cache laid out as huggingface_hub lays it out), with counts; missing files named in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
import zstandard
from typer.testing import CliRunner

from longkit.cli import app
from longkit.sft import hub

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))  # tests/eval is not a package
from hub_cache import hub_file  # noqa: E402

SLIM = "cerebras/SlimPajama-627B"
CHATQA2 = "nvidia/ChatQA2-Long-SFT-data"


def _recipe(tmp_path: Path, budget: int) -> Path:
    recipe = {
        "out": str(tmp_path / "runs"),
        "cpt": {
            "model": "unused-until-training",
            "data": {
                "tokenizer": "smollm2-135m-instruct",
                "out": str(tmp_path / "runs/data"),
                "sources": [
                    {"path": SLIM, "type": "hub", "source_field": "meta.redpajama_set_name", "token_budget": budget}
                ],
                "seq_len": 64,
            },
        },
        "sft": {"stages": [{"name": "long", "blend": [{"dataset": CHATQA2, "subset": "long_sft", "weight": 1}]}]},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path / "r.yaml"


def _offline(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "longkit"))
    return tmp_path / "hub"


def _slim_file(cache: Path, name: str, n_rows: int) -> None:
    rows = [{"text": "word " * 400, "meta": {"redpajama_set_name": "RedPajamaBook"}} for _ in range(n_rows)]
    data = zstandard.ZstdCompressor().compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    hub_file(cache, SLIM, name, data)


def _long_sft(cache: Path) -> None:
    ds = hub.DATASETS[CHATQA2]
    file = ds.subsets["long_sft"].file
    assert file is not None
    rows = [
        {"question": "User: Read: bees dance.\n\nQ: What do bees do?\n\nAssistant:", "answer": "They dance."},
        {"question": "Q: Empty?", "answers": []},
    ]
    hub_file(cache, ds.repo, file, json.dumps(rows).encode(), rev=ds.revision)


def test_fetch_converts_sft_subsets_and_reads_cpt_files_up_to_the_budget(tmp_path, monkeypatch):
    cache = _offline(tmp_path, monkeypatch)
    _long_sft(cache)
    for k in range(3):  # 2000 bytes of text per row, 10 rows per file: 20 KB a file
        _slim_file(cache, f"train/chunk1/example_train_{k}.jsonl.zst", 10)
    # a budget of 5000 tokens asks for 25 KB of text (4 bytes/token x 1.25 margin): two of the three files
    res = CliRunner().invoke(app, ["train", "fetch", str(_recipe(tmp_path, 5000)), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    (sft,) = report["sft"]
    assert (sft["subset"], sft["read"], sft["converted"]) == ("long_sft", 2, 1)
    assert sum(sft["dropped"].values()) == 1
    assert [json.loads(x) for x in Path(sft["path"]).read_text().splitlines()] == [
        {
            "messages": [
                {"role": "user", "content": "Read: bees dance.\n\nQ: What do bees do?"},
                {"role": "assistant", "content": "They dance."},
            ]
        }  # fmt: skip
    ]
    (cpt,) = report["cpt"]
    assert [Path(f).name for f in cpt["files"]] == ["example_train_0.jsonl.zst", "example_train_1.jsonl.zst"]
    assert "long_sft" in res.stderr and f"{SLIM}: 2 file(s)" in res.stderr
    assert not (tmp_path / "runs").exists()  # fetching trains nothing and writes no run


def test_fetch_names_a_missing_file_in_one_line(tmp_path, monkeypatch):
    cache = _offline(tmp_path, monkeypatch)
    for k in range(2):
        _slim_file(cache, f"train/chunk1/example_train_{k}.jsonl.zst", 10)
    res = CliRunner().invoke(app, ["train", "fetch", str(_recipe(tmp_path, 4000))])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert lines[-1].startswith("error: ") and "nvidia/ChatQA2-Long-SFT-data/long_sft" in lines[-1]
    assert "longkit train fetch" in lines[-1]


def test_fetch_of_a_config_naming_no_hub_data_says_so(tmp_path, monkeypatch):
    _offline(tmp_path, monkeypatch)
    (tmp_path / "a.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    cfg = {
        "model": "m",
        "out": str(tmp_path / "o"),
        "stages": [{"name": "s", "blend": [{"path": "a.jsonl", "weight": 1}]}],
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["train", "fetch", str(tmp_path / "s.yaml")])
    assert res.exit_code == 0 and "nothing to fetch" in res.output
    (tmp_path / "x.yaml").write_text("foo: 1\n")
    res = CliRunner().invoke(app, ["train", "fetch", str(tmp_path / "x.yaml")])
    assert res.exit_code == 2 and "not a training config" in res.output
