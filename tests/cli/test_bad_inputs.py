"""Every command answers a careless user's input with one `error: ...` line and exit status 2.

One case per line: (argv with {fixture} names from bad_inputs.BUILDERS, expected exit code, a phrase the
message must contain, fixtures that must be byte-identical afterwards). The CLI runs in-process through
`longkit.cli.run`, the same path the `longkit` command takes.
"""

from __future__ import annotations

import re
import shlex
from typing import NamedTuple

import pytest

from bad_inputs import build, snapshot  # noqa: E402  (tests/cli is on sys.path under pytest's rootdir rules)


class Case(NamedTuple):
    argv: str
    code: int
    phrase: str
    unchanged: tuple[str, ...] = ()


C = Case

CASES: list[Case] = [
    # --- the CLI itself -----------------------------------------------------------------------------------
    C("no-such-command", 2, "No such command"),
    C("eval niah --no-such-option 3", 2, "No such option"),
    # --- configs: every YAML entry point shares one loader -------------------------------------------------
    C("data build {missing}", 2, "not found"),
    C("data build {nonutf8_yaml}", 2, "not valid UTF-8", ("nonutf8_yaml",)),
    C("data build {bad_yaml}", 2, "invalid YAML"),
    C("data build {list_yaml}", 2, "expected a mapping"),
    C("train cpt {nonutf8_yaml}", 2, "not valid UTF-8"),
    C("train sft {nonutf8_yaml}", 2, "not valid UTF-8"),
    C("train recipe {nonutf8_yaml}", 2, "not valid UTF-8"),
    C("eval suite {nonutf8_yaml}", 2, "not valid UTF-8"),
    C("train cpt {missing}", 2, "not found"),
    # --- data, sft, model, train, demo (append above this line) ----------------------------------------------
    # --- rag, eval, serve (append above this line) ---------------------------------------------------------
]


def _ids(cases: list[Case]) -> list[str]:
    return [re.sub(r"\s+", " ", c.argv)[:60] for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_bad_input(case: Case, tmp_path, capsys, monkeypatch) -> None:
    """The command exits with the expected status and one error line naming the problem; nothing is clobbered."""
    from longkit.cli import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LONGKIT_DEBUG", raising=False)
    paths: dict[str, str] = {}
    for name in set(re.findall(r"\{(\w+)\}", case.argv)) | set(case.unchanged):
        paths[name] = str(build(name, tmp_path))
    before = {name: snapshot(tmp_path / paths[name]) for name in case.unchanged}
    argv = [part.format(**paths) for part in shlex.split(case.argv)]

    code = run(argv)

    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert code == case.code, f"exit {code}, stderr:\n{err}"
    assert lines, "no message on stderr"
    assert lines[-1].startswith("error: "), f"last line is not one error line:\n{err}"
    assert case.phrase.lower() in lines[-1].lower(), f"{case.phrase!r} not in {lines[-1]!r}"
    for name in case.unchanged:
        assert snapshot(tmp_path / paths[name]) == before[name], f"{name} was modified"
