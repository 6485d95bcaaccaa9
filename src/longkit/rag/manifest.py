"""An index's manifest: reading and checking it, and refusing a run whose settings would change the index's results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longkit.errors import InputError

FORMAT = 1
KINDS = ("exact", "hnsw")
# Chunking settings recorded in the manifest, with the `rag index` option that sets each one.
CHUNK_OPTIONS = (
    ("size", "--chunk-size"),
    ("overlap", "--overlap"),
    ("unit", "--unit"),
    ("tolerance", "--tolerance"),
    ("tokenizer", "chunking tokenizer"),
    ("on_overflow", "--on-overflow"),
)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the index at path, with its required fields checked (read only)."""
    from longkit.io import read_json

    mpath = path / "manifest.json"
    if not mpath.exists():
        raise InputError(f"{path}: no index here (missing manifest.json); build one with `longkit rag index`")
    manifest = read_json(mpath, "index manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise InputError(f"{mpath}: unsupported index format {got!r} (expected {FORMAT})")
    for field in ("embedder", "segments", "kind"):
        if field not in manifest:
            raise InputError(f"{mpath}: missing field '{field}'; rebuild the index")
    emb = manifest["embedder"]
    if not isinstance(emb, dict) or not isinstance(emb.get("dim"), int) or not isinstance(emb.get("name"), str):
        raise InputError(f"{mpath}: field 'embedder' must hold a name and an integer dim; rebuild the index")
    segs = manifest["segments"]
    if not isinstance(segs, list) or not all(
        isinstance(x, dict) and isinstance(x.get("id"), str) and isinstance(x.get("rows"), int) and x["rows"] >= 0
        for x in segs
    ):
        raise InputError(f"{mpath}: field 'segments' must be a list of {{id, rows}}; rebuild the index")
    if manifest["kind"] not in KINDS:
        raise InputError(f"{mpath}: field 'kind' must be 'exact' or 'hnsw', got {manifest['kind']!r}")
    unfinished = manifest.get("unfinished_docs", [])
    if not isinstance(unfinished, list) or not all(isinstance(d, str) for d in unfinished):
        raise InputError(f"{mpath}: field 'unfinished_docs' must be a list of document ids; rebuild the index")
    return manifest


def check_embedder(manifest: dict[str, Any], embedder: dict[str, Any], path: Path | str) -> None:
    """Raise if an embedder is not the one an index was built with (reading: the query must match the vectors)."""
    built = manifest["embedder"]
    if built.get("name") != embedder.get("name") or int(built.get("dim", -1)) != int(embedder.get("dim", -2)):
        raise InputError(
            f"{path}: index was built with embedder '{built.get('name')}' (dim {built.get('dim')}), "
            f"not '{embedder.get('name')}' (dim {embedder.get('dim')}); rebuild it or use that embedder"
        )


def refusal(option: str, old: Any, new: Any, path: Path | str) -> InputError:
    """The one-line refusal of a setting that differs from the one an existing index was built with."""
    return InputError(
        f"{option}: this index was built with {old}, not {new}; use a new --out or "
        f"`longkit rag delete {path} --all` to start fresh"
    )


def check_build_settings(
    manifest: dict[str, Any],
    path: Path | str,
    *,
    kind: str | None = None,
    chunking: dict[str, Any] | None = None,
    embedder: dict[str, Any] | None = None,
) -> None:
    """Refuse (naming the first differing option) settings that would mix results into an existing index."""
    if kind is not None and manifest["kind"] != kind:
        raise refusal("--kind", manifest["kind"], kind, path)
    if chunking is not None:
        built = manifest.get("chunking") or {}
        for key, option in CHUNK_OPTIONS:
            if key in chunking and built.get(key) != chunking[key]:
                raise refusal(option, built.get(key, "(not recorded)"), chunking[key], path)
    if embedder is not None:
        old = manifest["embedder"]
        if old.get("name") != embedder.get("name") or int(old.get("dim", -1)) != int(embedder.get("dim", -2)):
            raise refusal(
                "--embedder",
                f"{old.get('name')} (dim {old.get('dim')})",
                f"{embedder.get('name')} (dim {embedder.get('dim')})",
                path,
            )
        if (
            None not in (old.get("max_tokens"), embedder.get("max_tokens"))
            and old["max_tokens"] != embedder["max_tokens"]
        ):
            raise refusal("--max-tokens", old["max_tokens"], embedder["max_tokens"], path)
