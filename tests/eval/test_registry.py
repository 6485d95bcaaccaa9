"""The declarative task registry: every benchmark module's declarations are valid, the shared modules hold no
benchmark name, and a new benchmark is one module that the registry, `eval list`, options checking, fetching,
the suite and its official score all pick up with no other change."""

from __future__ import annotations

import ast
import json
import sys
import textwrap
from pathlib import Path

import pytest
from hub_cache import hub_file  # tests/eval is on sys.path under pytest's rootdir rules
from typer.testing import CliRunner

import longkit
from longkit.errors import ConfigError
from longkit.eval.metrics import AGGREGATIONS
from longkit.eval.tasks import registry as reg

SRC = Path(longkit.__file__).parent


def test_every_declaration_is_complete_and_consistent():
    specs = reg.registry()
    assert len(specs) >= 40
    for name, spec in specs.items():
        assert spec.name == name and spec.benchmark and spec.description
        assert spec.metric.aggregation in AGGREGATIONS, name
        assert spec.metric.scale in (1.0, 100.0) and spec.metric.scale_label, name
        assert spec.official.repo and spec.official.path, name
        assert spec.official.commit is None or len(spec.official.commit) == 40, name
        if not spec.synthetic:  # a task read from files can be fetched by name
            assert spec.data is not None and spec.data.repo and spec.data.file, name
        for alias in spec.aliases:
            assert reg.resolve_name(alias) == name
    # names and aliases never collide (the registry refuses that at load; this pins that none is declared)
    everything = [n for s in specs.values() for n in (s.name, *s.aliases)]
    assert len(everything) == len(set(everything))


def _string_constants(path: Path) -> set[str]:
    """String literals of a module other than docstrings (prose may mention a benchmark; code may not)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


# the modules every benchmark goes through: the registry, the fetcher and every module of the suite package
SHARED = [
    "eval/tasks/registry.py",
    "eval/fetch.py",
    *sorted(p.relative_to(SRC).as_posix() for p in (SRC / "eval" / "suite").glob("*.py")),
]


def _benchmark_names() -> set[str]:
    specs = reg.registry().values()
    names = {n for s in specs for n in (s.name, *s.aliases)} | {s.benchmark for s in specs}
    return names | {s.data.setting for s in specs if s.data and s.data.setting}


@pytest.mark.parametrize("module", SHARED)
def test_shared_modules_name_no_task_or_benchmark(module):
    strings = _string_constants(SRC / module)
    # a literal equal to a task, alias, benchmark or data-setting name would be a per-benchmark branch
    assert not (strings & _benchmark_names()), f"{module} names {sorted(strings & _benchmark_names())}"


def test_the_check_sees_a_per_benchmark_branch(tmp_path):
    branch = tmp_path / "branchy.py"
    branch.write_text(
        '"""Docstrings may mention qmsum."""\n\ndef scale(name):\n    return 100 if name == "qmsum" else 1\n'
    )
    assert len(SHARED) > 8 and _string_constants(branch) & _benchmark_names() == {"qmsum"}


# ---------------------------------------------------------------------------------------------------
# A new benchmark as one module
# ---------------------------------------------------------------------------------------------------

TOYBENCH = '''
"""ToyBench: a made-up benchmark used to show that a benchmark is one module."""

from pydantic import BaseModel, ConfigDict

from longkit.eval.metrics import substring_match
from longkit.eval.tasks.files import FileTask, file_kwargs, official_file
from longkit.eval.tasks.spec import X100, DataSource, Metric, OfficialCode, TaskSpec


class ToyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = "Q:"


class ToyTask(FileTask):
    required = ("question", "answer")
    max_new_tokens = 4

    def __init__(self, name, path, prefix, **kwargs):
        super().__init__(path, **kwargs)
        self.name = name
        self.prefix = prefix

    def user_text(self, row):
        return f"{self.prefix} {row['question']}\\nA:"

    def references(self, row):
        return [row["answer"]]

    def score(self, prediction, sample):
        return {"score": substring_match(prediction, sample.references)}


def _make(spec, settings):
    path = official_file(spec, settings, ["toy.jsonl"])
    return ToyTask(spec.name, path, **ToyOptions(**settings.get("options", {})).model_dump(), **file_kwargs(settings))


def declare():
    code = OfficialCode("example/toybench", "eval.py", "0123456789abcdef0123456789abcdef01234567")
    return [TaskSpec("toy_qa", "ToyBench", "questions about a toy", Metric("substring match", **X100), False,
                     _make, code, data=DataSource("example/toybench", "data/toy.jsonl", setting="toybench"),
                     options=ToyOptions, answer_budget=4, aliases=("toy",), average_group="ToyBench")]
'''


@pytest.fixture
def toybench(tmp_path, monkeypatch):
    """ToyBench's module in a directory of its own, added to the task package's search path."""
    import longkit.eval.tasks as package

    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "toybench.py").write_text(textwrap.dedent(TOYBENCH))
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(plugin)])
    monkeypatch.setattr(reg, "_INDEX", None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    rows = [{"question": f"what is {i}?", "answer": str(i)} for i in range(3)]
    hub_file(
        tmp_path / "hub", "example/toybench", "data/toy.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode()
    )
    yield tmp_path
    sys.modules.pop("longkit.eval.tasks.toybench", None)
    reg._INDEX = None


def test_a_new_benchmark_is_one_module(toybench, tiny_backend):
    from longkit.cli import app
    from longkit.eval.fetch import fetch, sources
    from longkit.eval.suite import SuiteConfig, run_suite
    from longkit.eval.suite.aggregate import official_score

    assert reg.resolve_name("toy") == "toy_qa"
    # eval list prints what the declaration says
    res = CliRunner().invoke(app, ["eval", "list", "--json", "--benchmark", "ToyBench"])
    assert res.exit_code == 0, res.output
    [entry] = json.loads(res.output)
    assert entry["name"] == "toy_qa" and entry["aliases"] == ["toy"] and entry["scale"] == "x100"
    assert entry["official"]["repo"] == "example/toybench" and entry["answer_budget"] == 4
    assert entry["data_source"]["file"] == "data/toy.jsonl" and entry["options"] == ["prefix"]
    res = CliRunner().invoke(app, ["eval", "list"])
    assert "toy_qa" in res.output and "example/toybench" in res.output
    # options are checked against its schema, in one line naming the option
    reg.check_options("toy_qa", {"prefix": "Question:"})
    with pytest.raises(ConfigError, match="task toy_qa: options: unknown option 'prefx'.*accepts: prefix"):
        reg.check_options("toy_qa", {"prefx": "x"})
    with pytest.raises(ConfigError, match="task toy_qa: options: .*prefix"):
        reg.check_options("toy_qa", {"prefix": ["not", "a", "string"]})
    # fetched by name from the hub cache
    assert "toy_qa" in sources()
    assert fetch("toy_qa").read_text().count("\n") == 3
    # through the suite, with its official score on its declared scale and its group's average
    cfg = SuiteConfig.model_validate(
        {
            "name": "toy",
            "models": [{"name": "tiny", "model": "unused"}],
            "lengths": [256],
            "tasks": [{"name": "toy", "options": {"prefix": "Q."}}],
            "out": str(toybench / "suite"),
            "chat": False,
        }
    )
    rep = run_suite(cfg, backends={"tiny": tiny_backend}, progress=False)
    model = rep["models"]["tiny"]
    assert model["tasks"]["toy_qa"]["samples"] == 3
    assert model["toybench_average"]["overall"] == model["tasks"]["toy_qa"]["overall"]
    assert "| **ToyBench average (1 tasks)** |" in (toybench / "suite" / "report.md").read_text()
    suite_json = json.loads((toybench / "suite" / "suite.json").read_text())["models"]["tiny"]["tasks"]
    assert suite_json["toy_qa"]["official"]["scale"] == "x100"
    records = [json.loads(line) for line in (toybench / "suite" / "tiny" / "toy_qa" / "results.jsonl").open()]
    assert records and all(r["prompt"].startswith("Q.") for r in records if "prompt" in r)
    assert official_score("toy_qa", records)["score"] == pytest.approx(
        100 * model["tasks"]["toy_qa"]["overall"], abs=0.01
    )
