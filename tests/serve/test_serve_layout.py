"""The server is the top of the house: nothing below imports it, and backends/ does not import rag/."""

from __future__ import annotations

import ast
from pathlib import Path

import longkit

SRC = Path(longkit.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_only_the_root_cli_imports_serve():
    users = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                   if "serve" not in p.relative_to(SRC).parts[:1]
                   and any(m == "longkit.serve" or m.startswith("longkit.serve.") for m in _imports(p)))
    assert users == ["cli.py"]


def test_backends_do_not_import_rag():
    users = sorted(str(p.relative_to(SRC)) for p in (SRC / "backends").rglob("*.py")
                   if any(m == "longkit.rag" or m.startswith("longkit.rag.") for m in _imports(p)))
    assert users == []
