"""rag/ sits below eval/: nothing in rag/ imports eval/ (RAG versus long context is an evaluation, in eval/)."""

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


def test_rag_does_not_import_eval():
    users = {str(p.relative_to(SRC)): sorted(m for m in _imports(p) if m == "longkit.eval" or m.startswith("longkit.eval."))
             for p in (SRC / "rag").rglob("*.py")}
    assert {k: v for k, v in users.items() if v} == {}
    assert not (SRC / "rag" / "compare.py").exists() and (SRC / "eval" / "rag_vs_long.py").exists()
