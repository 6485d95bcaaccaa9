"""The import rules of docs/architecture.md: imports point down, the server is the top, no two modules import
each other, and a backend is found through the registry."""

from __future__ import annotations

import ast
from pathlib import Path

import longkit

SRC = Path(longkit.__file__).parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["longkit", *parts])


def _imports(path: Path) -> set[str]:
    """Every longkit module a file imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n == "longkit" or n.startswith("longkit.")}


GRAPH = {_module(p): _imports(p) for p in SRC.rglob("*.py")}
MODULES = set(GRAPH)


def _uses(importer_prefix: str, imported_prefix: str) -> list[str]:
    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    return sorted(
        m for m, deps in GRAPH.items() if under(m, importer_prefix) and any(under(d, imported_prefix) for d in deps)
    )


def test_only_the_root_cli_imports_serve():
    users = [m for m in _uses("longkit", "longkit.serve") if not m.startswith("longkit.serve")]
    assert users == ["longkit.cli"]


def test_backends_do_not_import_rag_and_rag_does_not_import_eval():
    assert _uses("longkit.backends", "longkit.rag") == []
    assert _uses("longkit.rag", "longkit.eval") == []
    assert not (SRC / "rag" / "compare.py").exists() and (SRC / "eval" / "rag_vs_long.py").exists()


def test_no_two_modules_import_each_other():
    edges = {(m, d) for m, deps in GRAPH.items() for d in deps if d in MODULES and d != m}
    pairs = sorted({tuple(sorted(e)) for e in edges if (e[1], e[0]) in edges})
    # a package's __init__ re-exporting its own submodules is not a circle between two modules
    pairs = [(a, b) for a, b in pairs if not (b.startswith(a + ".") or a.startswith(b + "."))]
    assert pairs == []


def test_the_architecture_page_is_in_the_repository():
    page = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
    text = page.read_text(encoding="utf-8")
    # every package the page's table names exists, and every package that exists is on the page
    packages = sorted(p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert packages and all(f"| `{name}` |" in text for name in packages)


def test_no_module_outside_the_registry_lists_backend_names():
    """A backend is one module: nothing outside backends/ spells the registered names as a tuple or list."""
    import re

    literal = re.compile(r"[(\[]\s*[\"']hf[\"']\s*,\s*[\"'](vllm|openai)[\"']")
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if literal.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
