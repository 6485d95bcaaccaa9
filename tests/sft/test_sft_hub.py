"""SFT data by name from the Hub (longkit.sft.hub): each official schema's converter pinned on a fixture written
into a tmp Hub cache laid out as huggingface_hub lays it out, strict errors, offline refusals, counts, and a
tiny `longkit train sft` run on a blend that names Hub datasets."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from longkit.errors import ConfigError, InputError
from longkit.sft import hub
from longkit.sft.convert import NO_ANSWER

_spec = importlib.util.spec_from_file_location("hub_cache", Path(__file__).parents[1] / "eval" / "hub_cache.py")
assert _spec is not None and _spec.loader is not None
_hub_cache = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hub_cache)
hub_file = _hub_cache.hub_file

CHATQA = "nvidia/ChatQA-Training-Data"
CHATQA2 = "nvidia/ChatQA2-Long-SFT-data"
DOC = "The Bears kicked a 52-yard field goal in the first quarter and a 23-yard one in the third."


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _bot(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


# A few rows of each subset, in the official schema (longkit.sft.convert's docstring).
FIXTURES: dict[tuple[str, str], list[dict]] = {
    (CHATQA, "drop"): [
        {"messages": [_user("How long was the longest field goal?")], "answers": ["52-yard"], "document": DOC},
        {"messages": [_user("Who kicked?")], "answers": [], "document": DOC},  # no answer: dropped
    ],
    (CHATQA, "narrativeqa"): [
        {"messages": [_user("Who rows the boat?")], "answers": [["The fisherman.", "A fisherman"]], "document": "S"},
    ],
    (CHATQA, "squad1.1"): [
        {"messages": [_user("Capital?")], "answers": [{"text": "Paris", "answer_start": 0}], "document": "Paris is."},
    ],
    (CHATQA, "sft"): [
        {"messages": [_user("Hi"), _bot("Hello!"), _user("Name a bird.")], "answers": ["A heron."]},
    ],
    (CHATQA, "tatqa-arithmetic"): [
        {"messages": [_user("What is the change?")], "answers": ["1.5"], "document": "| 2019 | 3.0 |\n| 2018 | 1.5 |"},
    ],
    (CHATQA, "synthetic_convqa"): [
        {
            "messages": [_user("What is it about?"), _bot("Kicks."), _user("How many?")],
            "answers": ["Two field goals."],
            "document": DOC,
        },
    ],
    (CHATQA2, "long_sft"): [
        {"question": "User: Read this: bees dance.\n\nQ: What do bees do?\n\nAssistant:", "answer": "They dance."},
    ],
    (CHATQA2, "NarrativeQA_131072"): [
        {"question": "Who rows the boat?", "answers": ["The fisherman."], "sub-paragraphs": "A long story."},
        {"question": "Where?", "answer": "At sea.", "sub-paragraphs": ["Title", "Text"]},
        {"question": "When?", "answers": [], "sub-paragraphs": "x"},  # no answer: dropped
    ],
}

EXPECTED: dict[tuple[str, str], list[dict]] = {
    (CHATQA, "drop"): [
        {
            "messages": [_user(f"{hub.SHORT_SPAN} How long was the longest field goal?"), _bot("52-yard")],
            "context": DOC,
        }
    ],
    (CHATQA, "narrativeqa"): [
        {"messages": [_user(f"{hub.SHORT_SPAN} Who rows the boat?"), _bot("The fisherman.")], "context": "S"}
    ],
    (CHATQA, "squad1.1"): [{"messages": [_user(f"{hub.SHORT_SPAN} Capital?"), _bot("Paris")], "context": "Paris is."}],
    (CHATQA, "sft"): [{"messages": [_user("Hi"), _bot("Hello!"), _user("Name a bird."), _bot("A heron.")]}],
    (CHATQA, "tatqa-arithmetic"): [
        {
            "messages": [_user(f"{hub.ARITHMETIC} What is the change?"), _bot("1.5")],
            "context": "| 2019 | 3.0 |\n| 2018 | 1.5 |",
        }
    ],
    (CHATQA, "synthetic_convqa"): [
        {
            "messages": [
                _user(f"{hub.LONG_ANSWER} What is it about?"),
                _bot("Kicks."),
                _user("How many?"),
                _bot("Two field goals."),
            ],
            "context": DOC,
        }
    ],
    (CHATQA2, "long_sft"): [
        {"messages": [_user("Read this: bees dance.\n\nQ: What do bees do?"), _bot("They dance.")]}
    ],
    (CHATQA2, "NarrativeQA_131072"): [
        {"messages": [_user("Who rows the boat?"), _bot("The fisherman.")], "context": "A long story."},
        {"messages": [_user("Where?"), _bot("At sea.")], "context": "Title\n\nText"},
    ],
}


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Offline, with a tmp Hub cache and a tmp LONGKIT_CACHE; returns (hub cache, longkit cache)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("LONGKIT_CACHE", str(tmp_path / "longkit"))
    return tmp_path / "hub", tmp_path / "longkit"


def _publish(cache: Path, dataset: str, subset: str, rows: list[dict] | bytes) -> None:
    ds = hub.DATASETS[dataset]
    file = ds.subsets[subset].file
    assert file is not None
    data = rows if isinstance(rows, bytes) else json.dumps(rows, indent=1).encode()
    hub_file(cache, ds.repo, file, data, rev=ds.revision)


def _item(dataset: str, subset: str):
    from longkit.train.config import BlendItem

    return BlendItem(dataset=dataset, subset=subset, weight=1.0)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("key", sorted(FIXTURES), ids=lambda k: k[1])
def test_each_schema_converts_to_exact_rows(caches, key, capsys):
    _publish(caches[0], *key, FIXTURES[key])
    path = hub.resolve_blend_item(_item(*key))
    assert _rows(path) == EXPECTED[key]
    rev = hub.DATASETS[key[0]].revision
    assert path == caches[1] / "data" / key[0].replace("/", "--") / rev / f"{key[1]}.jsonl"
    err = capsys.readouterr().err.strip().splitlines()
    n_read, n_kept = len(FIXTURES[key]), len(EXPECTED[key])
    assert len(err) == 1 and err[0].startswith(f"{key[0]}/{key[1]}@{rev[:7]}: {n_read} rows read, {n_kept} converted")
    if n_read > n_kept:
        assert err[0].endswith(f"; {n_read - n_kept} dropped: {NO_ANSWER}")


def test_counts_are_returned_and_the_conversion_is_made_once(caches, capsys):
    _publish(caches[0], CHATQA, "drop", FIXTURES[(CHATQA, "drop")])
    item = _item(CHATQA, "drop")
    path = hub.resolve_blend_item(item)
    first = path.stat().st_mtime_ns
    capsys.readouterr()
    assert hub.resolve_blend_item(item) == path and path.stat().st_mtime_ns == first
    assert capsys.readouterr().err == ""  # cached: not converted, not printed again
    counts = hub.blend_item_counts(item)
    assert counts is not None
    assert {k: counts[k] for k in ("dataset", "subset", "file", "read", "converted", "dropped")} == {
        "dataset": CHATQA,
        "subset": "drop",
        "file": "drop/train.json",
        "read": 2,
        "converted": 1,
        "dropped": {NO_ANSWER: 1},
    }


def test_another_revision_is_converted_again(caches, monkeypatch):
    _publish(caches[0], CHATQA, "sft", FIXTURES[(CHATQA, "sft")])
    old = hub.resolve_blend_item(_item(CHATQA, "sft"))
    new_rev = "f" * 40
    ds = hub.DATASETS[CHATQA]
    monkeypatch.setitem(hub.DATASETS, CHATQA, hub.HubDataset(ds.repo, new_rev, ds.subsets))
    rows = [{"messages": [_user("Name a tree.")], "answers": ["An oak."]}]
    hub_file(caches[0], CHATQA, "sft/train.json", json.dumps(rows).encode(), rev=new_rev)
    new = hub.resolve_blend_item(_item(CHATQA, "sft"))
    assert new.parent.name == new_rev and old.parent.name == ds.revision
    assert _rows(new) == [{"messages": [_user("Name a tree."), _bot("An oak.")]}]


@pytest.mark.parametrize(
    "rows,where",
    [
        ([{"messages": [_user("a")], "answers": ["b"]}, {"answers": ["b"]}], "row 2: field 'messages'"),
        ([{"messages": [{"role": "system", "content": "s"}], "answers": ["b"]}], "row 1: field 'messages[0].role'"),
        ([{"messages": [_user("a")], "answers": "b"}], "row 1: field 'answers' must be a list"),
        ([{"messages": [_user("a")], "answers": [None]}], "row 1: field 'answers[0]' must be a string"),
        ([{"messages": [_user("a"), _bot("b")], "answers": ["c"]}], "row 1: field 'messages' must end with a user"),
        ([{"messages": [_user("a")], "answers": ["b"], "document": 3}], "row 1: field 'document' must be a string"),
        (b'[{"messages": [], "answers": ["b"]}]', "row 1: field 'messages' must be a non-empty list"),
        (b'[{"messages": [{"role": "user", "content": "a"}], "answers": ["b"]}, {"mess', "row 2: invalid JSON"),
        (b'[{"messages": [{"role": "user", "content": "a"}], "answers": ["b"]} {}]', "row 2: invalid JSON"),
    ],
)
def test_an_unreadable_row_is_one_line_naming_file_and_row(caches, rows, where):
    _publish(caches[0], CHATQA, "ropes", rows)
    with pytest.raises(InputError) as e:
        hub.resolve_blend_item(_item(CHATQA, "ropes"))
    msg = str(e.value)
    assert "\n" not in msg and "ropes/train.json: " + where in msg
    out = caches[1] / "data" / CHATQA.replace("/", "--")
    assert not any(p.is_file() for p in out.rglob("*"))  # nothing half-converted is left behind


def test_megatron_rows_are_strict_too(caches):
    _publish(caches[0], CHATQA2, "long_sft", [{"question": "q", "answer": "a"}, {"question": 1, "answer": "a"}])
    with pytest.raises(InputError, match=r"long_sft_QA_train.json: row 2: field 'question' must be a string"):
        hub.resolve_blend_item(_item(CHATQA2, "long_sft"))
    _publish(caches[0], CHATQA2, "NarrativeQA_131072", [{"question": "q"}])
    with pytest.raises(InputError, match=r"row 1: expected field 'answer' or 'answers'"):
        hub.resolve_blend_item(_item(CHATQA2, "NarrativeQA_131072"))


def test_unknown_dataset_or_subset_is_a_config_error_listing_the_known(tmp_path):
    from longkit.train.config import SFTConfig, load_train_config

    def cfg(item: dict) -> Path:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({"model": "m", "out": "o", "stages": [{"name": "s", "blend": [item]}]}))
        return path

    with pytest.raises(ConfigError) as e:
        load_train_config(SFTConfig, cfg({"dataset": CHATQA, "subset": "tatqa", "weight": 1}))
    msg = str(e.value)
    assert "\n" not in msg and "unknown subset 'tatqa' of nvidia/ChatQA-Training-Data; known subsets: sft, drop" in msg
    assert "tatqa-arithmetic, tatqa-others" in msg and "stages.0.blend.0" in msg
    with pytest.raises(ConfigError, match=r"unknown dataset 'nvidia/ChatQA'; datasets longkit can fetch by name: "):
        load_train_config(SFTConfig, cfg({"dataset": "nvidia/ChatQA", "subset": "drop", "weight": 1}))
    with pytest.raises(ConfigError, match=r"subset 'newsqa' of nvidia/ChatQA-Training-Data: NewsQA is not distrib"):
        load_train_config(SFTConfig, cfg({"dataset": CHATQA, "subset": "newsqa", "weight": 1}))
    with pytest.raises(ConfigError, match=r"give exactly one of 'path' or 'dataset'"):
        load_train_config(SFTConfig, cfg({"path": "a.jsonl", "dataset": CHATQA, "subset": "drop", "weight": 1}))
    with pytest.raises(ConfigError, match=r"'dataset' and 'subset' go together"):
        load_train_config(SFTConfig, cfg({"dataset": CHATQA, "weight": 1}))


def test_offline_and_missing_names_dataset_file_and_fetch_command(caches):
    with pytest.raises(InputError) as e:
        hub.resolve_blend_item(_item(CHATQA2, "NarrativeQA_131072"))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{CHATQA2}/NarrativeQA_131072: NarrativeQA_131072/NarrativeQA_131072")
    assert "HF_HUB_OFFLINE is set" in msg and "`longkit train fetch CONFIG` while online" in msg


def test_fetch_blend_items_converts_each_subset_once(caches, capsys):
    from longkit.train.config import SFTConfig

    for key in [(CHATQA, "drop"), (CHATQA2, "long_sft")]:
        _publish(caches[0], *key, FIXTURES[key])
    blend = [
        {"dataset": CHATQA, "subset": "drop", "weight": 1},
        {"dataset": CHATQA2, "subset": "long_sft", "weight": 1},
    ]
    cfg = SFTConfig(model="m", out="o", stages=[{"name": "a", "blend": blend}, {"name": "b", "blend": blend[:1]}])
    got = hub.fetch_blend_items(cfg)
    assert [(g["subset"], g["read"], g["converted"]) for g in got] == [("drop", 2, 1), ("long_sft", 1, 1)]
    assert all(Path(g["path"]).is_file() for g in got)
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_tiny_sft_run_on_a_blend_of_hub_datasets(caches, tiny_llama_dir, tmp_path):
    from typer.testing import CliRunner

    from longkit.cli import app

    drop = [
        {"messages": [_user(f"How many points in game {i}?")], "answers": [str(i)], "document": f"Game {i}: {DOC}"}
        for i in range(8)
    ]
    _publish(caches[0], CHATQA, "drop", drop)
    _publish(caches[0], CHATQA2, "long_sft", FIXTURES[(CHATQA2, "long_sft")])
    cfg = {
        "model": str(tiny_llama_dir),
        "out": str(tmp_path / "run"),
        "seq_len": 256,
        "train": {"max_steps": 1, "report_to": "none", "save_steps": 0, "logging_steps": 1},
        "stages": [
            {
                "name": "s1",
                "blend": [
                    {"dataset": CHATQA, "subset": "drop", "weight": 0.75},
                    {"dataset": CHATQA2, "subset": "long_sft", "weight": 0.25},
                ],
            }
        ],
    }
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["train", "sft", str(tmp_path / "sft.yaml")])
    assert res.exit_code == 0, res.output
    assert f"{CHATQA}/drop@" in res.output and "8 rows read, 8 converted, none dropped" in res.output
    report = json.loads((tmp_path / "run" / "s1" / "blend.json").read_text())
    assert [d["name"] for d in report["datasets"]] == ["drop", "long_sft"]
    assert [(c["subset"], c["converted"]) for c in report["converted"]] == [("drop", 8), ("long_sft", 1)]
    assert (tmp_path / "run" / "s1" / "final").is_dir()


def test_sft_offline_missing_fails_before_anything_is_written(caches, tmp_path):
    from typer.testing import CliRunner

    from longkit.cli import app

    cfg = {
        "model": "unused",
        "out": str(tmp_path / "run"),
        "stages": [{"name": "s1", "blend": [{"dataset": CHATQA, "subset": "quoref", "weight": 1}]}],
    }
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["train", "sft", str(tmp_path / "sft.yaml")])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert lines[-1].startswith("error: ") and "stage 's1' blend[0]: nvidia/ChatQA-Training-Data/quoref" in lines[-1]
    assert "quoref/train.json" in lines[-1] and "longkit train fetch" in lines[-1]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_rows_are_read_incrementally_across_chunk_boundaries(caches, monkeypatch, chunk):
    from longkit.sft import convert

    monkeypatch.setattr(convert, "_CHUNK", chunk)  # the long-SFT files are read a chunk at a time
    key = (CHATQA2, "NarrativeQA_131072")
    _publish(caches[0], *key, FIXTURES[key])
    assert _rows(hub.resolve_blend_item(_item(*key))) == EXPECTED[key]
    lines = "".join(json.dumps(r) + "\n" for r in FIXTURES[key]).encode()  # JSON lines are read as well
    assert [row for _, row in convert.iter_json_rows(_write(caches[0] / "rows.json", lines))] == FIXTURES[key]


def test_a_broken_row_fails_without_reading_the_rest_of_a_large_file(caches, monkeypatch):
    from longkit.sft import convert

    monkeypatch.setattr(convert, "_CHUNK", 16)
    monkeypatch.setattr(convert, "_MAX_ROW", 64)
    data = b'[{"question": "q", "answer": "a"}, {"question": "q", "answer": "a",, "x": 1}' + b" " * 10_000 + b"]"
    path = _write(caches[0] / "big.json", data)
    with pytest.raises(InputError, match=r"big.json: row 2: invalid JSON \(.*\) in its first 0 MiB"):
        list(convert.iter_json_rows(path))


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_recipe_names_a_missing_sft_dataset_before_its_cpt_section_runs(caches, tmp_path, tiny_llama_dir):
    """Offline, an SFT dataset missing from the cache stops `train recipe` before CPT trains or writes anything."""
    from typer.testing import CliRunner

    from longkit.cli import app

    (tmp_path / "corpus.jsonl").write_text(json.dumps({"text": "Bees dance. " * 50}) + "\n")
    recipe = {
        "out": str(tmp_path / "runs"),
        "cpt": {
            "model": str(tiny_llama_dir),
            "data": {
                "tokenizer": str(tiny_llama_dir),
                "out": str(tmp_path / "runs/data"),
                "sources": [str(tmp_path / "corpus.jsonl")],
                "seq_len": 64,
            },
            "train": {"max_steps": 1, "report_to": "none"},
        },
        "sft": {"stages": [{"name": "s1", "blend": [{"dataset": CHATQA2, "subset": "long_sft", "weight": 1}]}]},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    res = CliRunner().invoke(app, ["train", "recipe", str(tmp_path / "r.yaml")])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "sft: stage 's1' blend[0]: nvidia/ChatQA2-Long-SFT-data/long_sft" in lines[-1]
    assert "longkit train fetch" in lines[-1]
    assert not (tmp_path / "runs").exists()
