import json

import pytest

from longkit.errors import InputError
from longkit.io import ResultLog, iter_jsonl, read_jsonl, write_json


def test_iter_jsonl_reports_file_line_and_field(tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_text('{"a": 1, "b": 2}\n\n{"a": 3}\n')
    with pytest.raises(InputError, match=r"rows.jsonl:3: missing field 'b'"):
        read_jsonl(p, required=["a", "b"])
    p.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(InputError, match=r"rows.jsonl:2: invalid JSON"):
        list(iter_jsonl(p))
    p.write_text("[1, 2]\n")
    with pytest.raises(InputError, match=r"rows.jsonl:1: expected a JSON object"):
        read_jsonl(p)


def test_result_log_resumes_and_drops_torn_line(tmp_path):
    path = tmp_path / "results.jsonl"
    log = ResultLog(path)
    log.append({"key": "a", "v": 1})
    log.append({"key": "b", "v": 2})
    with path.open("a") as fh:  # a crash in the middle of a write
        fh.write('{"key": "c", "v"')
    again = ResultLog(path)
    assert "a" in again and "b" in again and "c" not in again
    assert len(again) == 2
    again.append({"key": "c", "v": 3})
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["key"] for r in rows] == ["a", "b", "c"]


def test_write_json_is_atomic_and_leaves_no_temp(tmp_path):
    write_json(tmp_path / "x" / "s.json", {"k": [1, 2]})
    assert json.loads((tmp_path / "x" / "s.json").read_text()) == {"k": [1, 2]}
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["s.json"]
