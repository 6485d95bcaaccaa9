"""The one config loader: every validation problem at once, each with its field path and YAML line."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from longkit.config import line_of, load_config, load_yaml, validate
from longkit.errors import ConfigError, InputError, LongkitError, located


class _Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    lengths: list[int] = Field(default_factory=list)


class _Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[_Task]
    seed: int = 0
    out: str = "runs/x"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "x.yaml"
    p.write_text(text, encoding="utf-8")
    return p


SUITE = """\
# a suite with three mistakes
out: runs/suite
tasks:
  - name: niah
    lengths:
      - 1024
      - abc
  - name: passkey
    lenghts: [1024]
seed: twelve
"""


def test_every_error_at_once_with_its_field_and_line(tmp_path):
    path = _write(tmp_path, SUITE)
    with pytest.raises(ConfigError) as info:
        load_config(_Suite, path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    assert "field 'tasks.0.lengths.1' (line 7): Input should be a valid integer" in msg
    assert "field 'tasks.1.lenghts' (line 9): Extra inputs are not permitted" in msg
    assert "field 'seed' (line 10): Input should be a valid integer" in msg
    assert msg.count("; ") == 2


def test_real_training_config_reports_all_its_mistakes(tmp_path):
    from longkit.train.config import CPTConfig, load_train_config

    path = _write(
        tmp_path,
        "model: m\nout: runs/o\ndata: d.yaml\nseq_len: 8\ntrain:\n"
        "  learning_rate: 0.5\n  warmup_steps: -1\n  max_steps: ten\n",
    )
    with pytest.raises(ConfigError) as info:
        load_train_config(CPTConfig, path)
    msg = str(info.value)
    assert re.search(r"field 'seq_len' \(line 4\): Input should be greater than or equal to 16", msg)
    assert re.search(r"field 'train.warmup_steps' \(line 7\): Input should be greater than or equal to 0", msg)
    assert re.search(r"field 'train.max_steps' \(line 8\): Input should be a valid integer", msg)


def test_recipe_section_keeps_its_lines(tmp_path):
    from longkit.train.config import SFTConfig, load_train_config

    path = _write(tmp_path, "out: runs/r\nsft:\n  model: m\n  stages:\n    - name: a\n      blend: []\n")
    with pytest.raises(ConfigError, match=r"x.yaml: sft: field 'stages.0.blend' \(line 6\): List should have"):
        load_train_config(SFTConfig, path)


def test_first_error_phrasing_without_a_file():
    with pytest.raises(ConfigError, match=r"^cfg: field 'tasks': Field required$"):
        validate(_Suite, {}, source="cfg")


def test_cross_field_errors_name_no_field_and_drop_pydantics_prefix(tmp_path):
    from longkit.train.config import SFTConfig

    data = {
        "model": "m",
        "out": str(tmp_path / "o"),
        "stages": [
            {"name": "a", "blend": [{"path": "x.jsonl", "weight": 1}]},
            {"name": "a", "blend": [{"path": "y.jsonl", "weight": 1}]},
        ],
    }
    with pytest.raises(ConfigError, match=r"^sft.yaml: stage names must be unique, repeated: \['a'\]$"):
        validate(SFTConfig, data, source="sft.yaml")


def test_an_option_override_has_no_yaml_line(tmp_path):
    path = _write(tmp_path, "tasks: [{name: niah}]\nseed: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(_Suite, path, {"seed": "abc", "out": None})
    assert "field 'seed': Input should be a valid integer" in str(info.value)
    assert load_config(_Suite, path, {"seed": 5}).seed == 5


def test_a_longkit_error_from_a_validator_names_the_file(tmp_path):
    from longkit.eval.needle_run import NeedleRunConfig

    path = _write(tmp_path, "lengths: 1024,abc\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: lengths: expected a comma list"):
        load_config(NeedleRunConfig, path)
    # from options alone, the message already names the option
    with pytest.raises(ConfigError, match=r"^--lengths: 1000000000000 tokens is beyond"):
        load_config(NeedleRunConfig, None, {"lengths": "1e12"})


def test_yaml_mappings_record_lines_and_stay_plain_data(tmp_path):
    path = _write(tmp_path, "a: 1\nb:\n  - x\n  - {c: 2,\n     d: 3}\n")
    data = load_yaml(path)
    assert data == {"a": 1, "b": ["x", {"c": 2, "d": 3}]} and isinstance(data, dict)
    assert line_of(data, ("b", 1, "d")) == 5 and line_of(data, ("b", 0)) == 3
    assert line_of(data, ("b", 7)) == 2 and line_of(data, ("nope",)) is None
    assert line_of({"a": 1}, ("a",)) is None
    again = pickle.loads(pickle.dumps(data))
    assert again == data and again.lines == data.lines and data.copy().lines == data.lines
    assert load_yaml(_write(tmp_path, "")) == {}


def test_load_yaml_errors_unchanged(tmp_path):
    with pytest.raises(ConfigError, match=r"x.yaml:2: invalid YAML"):
        load_yaml(_write(tmp_path, "a: [1,\nb: }\n"))
    with pytest.raises(ConfigError, match="expected a mapping at the top level, got list"):
        load_yaml(_write(tmp_path, "- 1\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")


def test_located_prefixes_once_and_keeps_the_type():
    with pytest.raises(InputError, match=r"^f.jsonl:3: field 'x' is empty$"):
        with located("f.jsonl:3"):
            raise InputError("field 'x' is empty")
    with pytest.raises(ConfigError, match=r"^stage 'a' blend\[0\]: bad$"):
        with located("stage 'a'", sep=" "):
            raise ConfigError("blend[0]: bad")
    with pytest.raises(LongkitError, match=r"^as is$"):
        with located(None):
            raise LongkitError("as is")
    with pytest.raises(ValueError, match=r"^not ours$"):
        with located("x"):
            raise ValueError("not ours")
