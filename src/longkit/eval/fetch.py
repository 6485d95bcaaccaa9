"""Benchmark data by name: each file-backed task's official Hugging Face dataset repository and files,
fetched through `huggingface_hub` into the standard cache (HF_HUB_CACHE / HF_HOME), so that a suite
names tasks, not paths.

Archives (LongBench's data.zip, the SCROLLS and LV-Eval zips) stay in the Hub cache as downloaded and
are unpacked once under LONGKIT_CACHE (default ~/.cache/longkit)/data/<org>--<name>/<revision>/.
Where a task reads a layout other than the one the Hub publishes (e.g. a JSON file rebuilt from Parquet
rows), its DataSource carries a `convert` function; the converted file is written once into the same
derived-data cache. Offline (HF_HUB_OFFLINE=1) only the cache is read; a missing file is a one-line
error naming the repository, the files and the command that fetches them.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from longkit.errors import ConfigError, InputError
from longkit.eval.tasks.spec import DataSource


def sources() -> dict[str, DataSource]:
    """Every fetchable task name -> its official source, as the benchmark modules declare it (eval.tasks.spec)."""
    from longkit.eval.tasks.registry import registry

    return {name: spec.data for name, spec in registry().items() if spec.data is not None}


def source_of(task: str) -> DataSource:
    """The official source of a task, by its registered name (ConfigError for generated or unknown tasks)."""
    if task not in sources():
        raise ConfigError(
            f"task '{task}' has no official data to fetch (a generated task, or not a registered "
            "name: `longkit eval list` shows them)"
        )
    return sources()[task]


def hub_cache() -> Path:
    """The Hugging Face hub cache directory, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def offline() -> bool:
    """Whether HF_HUB_OFFLINE is set (only the cache may be read)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _longkit_cache() -> Path:
    return Path(os.environ.get("LONGKIT_CACHE", Path.home() / ".cache" / "longkit"))


def _missing(task: str, src: DataSource, why: str) -> InputError:
    local = f" or set data.{src.setting} to a local copy" if src.setting else ""
    return InputError(
        f"{task}: official data not available ({why}): needs {src.describe()} from the Hugging Face "
        f"Hub; fetch it with `longkit eval fetch {task}` while online{local}"
    )


class HubUnavailable(Exception):
    """A Hub file that could not be had; `why` says so in a few words, for the caller's one-line error."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


def hub_download(repo: str, file: str, revision: str | None = None, allow_download: bool = True) -> Path:
    """One dataset file in the Hugging Face cache, downloaded when allowed and not offline (HF_HUB_OFFLINE);
    HubUnavailable with the reason otherwise. Benchmarks, SFT subsets and streamed corpora all fetch through it."""
    from huggingface_hub import hf_hub_download

    local_only = offline() or not allow_download
    try:
        return Path(
            hf_hub_download(
                repo,
                file,
                repo_type="dataset",
                cache_dir=str(hub_cache()),
                revision=revision,
                local_files_only=local_only,
            )
        )
    except Exception as exc:  # noqa: BLE001 -- any hub failure (offline, network, 404) is reported in one line
        if local_only:
            why = f"not in the Hugging Face cache {hub_cache()}" + (" and HF_HUB_OFFLINE is set" if offline() else "")
        else:
            why = f"download failed: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:160]}"
        raise HubUnavailable(why) from None


def _download(task: str, src: DataSource, allow_download: bool) -> Path:
    try:
        return hub_download(src.repo, src.file, src.revision, allow_download)
    except HubUnavailable as exc:
        raise _missing(task, src, exc.why) from None


def _revision(path: Path) -> str:
    # hub cache layout: datasets--ORG--NAME/snapshots/<commit>/<file>
    for parent in path.parents:
        if parent.parent.name == "snapshots":
            return parent.name
    return "local"


def _derived_dir(src: DataSource, downloaded: Path) -> Path:
    return _longkit_cache() / "data" / src.repo.replace("/", "--") / _revision(downloaded)


def _unpack(task: str, src: DataSource, archive: Path) -> Path:
    """The member of an archive, unpacked once into the derived-data cache."""
    root = _derived_dir(src, archive) / Path(src.file).stem
    done = root / ".complete"
    if not done.exists():
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(root)
        except zipfile.BadZipFile:
            raise InputError(
                f"{archive}: not a zip archive ({src.describe()}); delete it and run `longkit eval fetch {task}` again"
            ) from None
        done.write_text("")
    assert src.member is not None
    target = root / src.member
    if src.member == "." or target.exists():
        return target
    # archives differ in whether they hold a top folder: find the member by its last path parts
    name = Path(src.member).name
    hits = sorted(p for p in root.rglob(name) if p.as_posix().endswith(src.member) or p.name == name)
    if hits:
        return hits[0]
    raise InputError(f"{archive}: {src.member} not found in {src.describe()}")


def _converted(src: DataSource, parquet: Path) -> Path:
    assert src.member is not None
    assert src.convert is not None  # called only for a source that has one
    target = _derived_dir(src, parquet) / src.member
    if not target.exists():
        from longkit.io import atomic_write_text

        target.parent.mkdir(parents=True, exist_ok=True)
        data = src.convert(parquet)
        atomic_write_text(target, json.dumps(data, ensure_ascii=False))
    return target


def fetch(task: str, allow_download: bool = True) -> Path:
    """The local path a task reads (a file, or LV-Eval's directory), downloaded into the hub cache if missing."""
    return fetch_source(task, source_of(task), allow_download)


def fetch_source(task: str, src: DataSource, allow_download: bool = True) -> Path:
    """The local path of one declared source of a task (a task that reads several files, one per length, fetches
    each through here); `task` names it in messages and in the fetch command they suggest."""
    path = _download(task, src, allow_download)
    if src.convert:
        return _converted(src, path)
    if src.member is not None:
        return _unpack(task, src, path)
    return path


def fetch_many(tasks: list[str]) -> list[tuple[str, Path]]:
    """Fetch several tasks ahead of time (`longkit eval fetch`); each repository file is downloaded once."""
    return [(t, fetch(t)) for t in tasks]
