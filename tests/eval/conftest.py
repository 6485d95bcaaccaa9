"""Helpers shared by the eval tests."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest


def hash_tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under root by relative path ({} when root is absent): 'byte-identical' in one value."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def tree_hashes() -> Callable[[Path], dict[str, str]]:
    """hash_tree, for a test to compare an output directory before and after a command."""
    return hash_tree


@pytest.fixture(scope="session")
def fast_llama_dir(trained_tokenizer, tmp_path_factory) -> Path:  # noqa: ANN001  (pytest fixture)
    """A tiny random Llama with a 2000-token vocabulary (cheap forward passes) and a 2048-token window."""
    from longkit.testing import build_tiny_llama

    return build_tiny_llama(trained_tokenizer, tmp_path_factory.mktemp("fast-eval-llama"), max_positions=2048)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """Run `longkit ARGS...` in-process (the path the command takes); returns (exit code, stdout, stderr)."""
    from longkit.cli import PROGRESS_ENV, _quiet_libraries, run

    monkeypatch.delenv("LONGKIT_DEBUG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for var in PROGRESS_ENV:  # restored after the test; the libraries' bars stay off, as under `longkit` in a log
        monkeypatch.setenv(var, "1")
    _quiet_libraries(tty=False)  # what main() does before run()

    def invoke(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
