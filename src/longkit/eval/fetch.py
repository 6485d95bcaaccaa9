"""Benchmark data by name: each file-backed task's official Hugging Face dataset repository and files,
fetched through `huggingface_hub` into the standard cache (HF_HUB_CACHE / HF_HOME), so that a suite
names tasks, not paths.

Archives (LongBench's data.zip, the SCROLLS and LV-Eval zips) stay in the Hub cache as downloaded and
are unpacked once under LONGKIT_CACHE (default ~/.cache/longkit)/data/<org>--<name>/<revision>/.
SQuAD v2 and HotpotQA are published on the Hub as Parquet; RULER reads the original JSON layouts
(dev-v2.0.json, hotpot_dev_distractor_v1.json), so those files are rebuilt from the Parquet rows in
their original order. Offline (HF_HUB_OFFLINE=1) only the cache is read; a missing file is a one-line
error naming the repository, the files and the command that fetches them.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longkit.errors import ConfigError, InputError


@dataclass(frozen=True)
class DataSource:
    """Where a task's official data lives on the Hub and which file the task reads from it."""

    repo: str  # Hugging Face dataset repository (repo_type="dataset")
    file: str  # the file in the repository to download
    member: str | None = None  # for archives: the file (or directory, for LV-Eval) the task reads inside it
    convert: str | None = None  # "squad" | "hotpotqa": rebuild the original JSON layout from Parquet
    setting: str = ""  # the suite's data.<setting> that overrides it with a local copy

    def describe(self) -> str:
        """'repo:file' for messages."""
        return f"dataset {self.repo}, file {self.file}"


INFINITEBENCH_REPO = "xinrongzhang2022/InfiniteBench"
LONGBENCH_REPO = "THUDM/LongBench"
SCROLLS_REPO = "tau/scrolls"
LVEVAL_REPO = "Infinigence/LVEval"
CHATRAG_REPO = "nvidia/ChatRAG-Bench"
SQUAD_REPO = "rajpurkar/squad_v2"
HOTPOTQA_REPO = "hotpotqa/hotpot_qa"

# ChatRAG Bench's own file list (get_scores.py's dataset_paths in the ChatQA evaluation scripts), under data/.
CHATRAG_FILES = {
    "convfinqa": "convfinqa/dev.json", "coqa": "coqa/dev.json", "doc2dial": "doc2dial/test.json",
    "doqa_cooking": "doqa/test_cooking.json", "doqa_movies": "doqa/test_movies.json",
    "doqa_travel": "doqa/test_travel.json", "hybridial": "hybridial/test.json", "inscit": "inscit/dev.json",
    "qrecc": "qrecc/test.json", "quac": "quac/test.json", "sqa": "sqa/test.json", "topiocqa": "topiocqa/dev.json",
}


def _sources() -> dict[str, DataSource]:
    from longkit.eval.tasks.infinitebench import InfiniteFileTask
    from longkit.eval.tasks.longbench import CHATQA2_32K
    from longkit.eval.tasks.lveval import PROMPTS as LVEVAL

    src: dict[str, DataSource] = {}
    for name, stem in InfiniteFileTask.FILES.items():
        src[name] = DataSource(INFINITEBENCH_REPO, f"{stem}.jsonl", setting="infinitebench")
    for name, source in CHATQA2_32K.items():
        if source == "scrolls":  # SCROLLS zips hold <name>/{train,validation,test}.jsonl; scores are on validation
            src[name] = DataSource(SCROLLS_REPO, f"{name}.zip", f"{name}/validation.jsonl", setting="scrolls")
        else:  # LongBench's data.zip holds data/<dataset>.jsonl
            src[name] = DataSource(LONGBENCH_REPO, "data.zip", f"data/{name}.jsonl", setting="longbench")
    for name in LVEVAL:  # one zip per dataset holding <dataset>_<level>.jsonl; the task reads the directory
        src[name] = DataSource(LVEVAL_REPO, f"{name}.zip", ".", setting="lveval")
    for name, path in CHATRAG_FILES.items():
        src[name] = DataSource(CHATRAG_REPO, f"data/{path}", setting="chatrag")
    src["qa_1"] = DataSource(SQUAD_REPO, "squad_v2/validation-00000-of-00001.parquet", "dev-v2.0.json",
                             convert="squad", setting="squad")
    src["qa_2"] = DataSource(HOTPOTQA_REPO, "distractor/validation-00000-of-00001.parquet",
                             "hotpot_dev_distractor_v1.json", convert="hotpotqa", setting="hotpotqa")
    return src


_SOURCES: dict[str, DataSource] | None = None


def sources() -> dict[str, DataSource]:
    """Every fetchable task name -> its official source."""
    global _SOURCES
    if _SOURCES is None:
        _SOURCES = _sources()
    return _SOURCES


def source_of(task: str) -> DataSource:
    """The official source of a task, by its registered name (ConfigError for generated or unknown tasks).

    Names are canonical here (the registry and `eval fetch` resolve aliases first), so this module does not
    import the registry, which imports it.
    """
    if task not in sources():
        raise ConfigError(f"task '{task}' has no official data to fetch (a generated task, or not a registered "
                          "name: `longkit eval list` shows them)")
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
    return InputError(f"{task}: official data not available ({why}): needs {src.describe()} from the Hugging Face "
                      f"Hub; fetch it with `longkit eval fetch {task}` while online{local}")


def _download(task: str, src: DataSource, allow_download: bool) -> Path:
    from huggingface_hub import hf_hub_download

    local_only = offline() or not allow_download
    try:
        return Path(hf_hub_download(src.repo, src.file, repo_type="dataset", cache_dir=str(hub_cache()),
                                    local_files_only=local_only))
    except Exception as exc:  # noqa: BLE001 -- any hub failure (offline, network, 404) is reported in one line
        why = ("not in the cache " + str(hub_cache()) + (" and HF_HUB_OFFLINE is set" if offline() else "")
               if local_only else f"download failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
        raise _missing(task, src, why) from None


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
            raise InputError(f"{archive}: not a zip archive ({src.describe()}); delete it and run "
                             f"`longkit eval fetch {task}` again") from None
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


def _squad_json(parquet: Path) -> dict[str, Any]:
    """SQuAD v2's dev-v2.0.json layout from the Hub's Parquet rows (articles and paragraphs in row order)."""
    import pyarrow.parquet as pq

    data: list[dict[str, Any]] = []
    for row in pq.read_table(parquet).to_pylist():
        if not data or data[-1]["title"] != row["title"]:
            data.append({"title": row["title"], "paragraphs": []})
        paras = data[-1]["paragraphs"]
        if not paras or paras[-1]["context"] != row["context"]:
            paras.append({"context": row["context"], "qas": []})
        ans = row["answers"] or {"text": [], "answer_start": []}
        paras[-1]["qas"].append({"id": row["id"], "question": row["question"],
                                 "answers": [{"text": t, "answer_start": s}
                                             for t, s in zip(ans["text"], ans["answer_start"])],
                                 "is_impossible": not ans["text"]})
    return {"version": "v2.0", "data": data}


def _hotpotqa_json(parquet: Path) -> list[dict[str, Any]]:
    """HotpotQA's hotpot_dev_distractor_v1.json layout from the Hub's Parquet rows."""
    import pyarrow.parquet as pq

    out = []
    for row in pq.read_table(parquet).to_pylist():
        ctx, sf = row["context"], row["supporting_facts"]
        out.append({"_id": row["id"], "answer": row["answer"], "question": row["question"],
                    "supporting_facts": [[t, i] for t, i in zip(sf["title"], sf["sent_id"])],
                    "context": [[t, list(s)] for t, s in zip(ctx["title"], ctx["sentences"])],
                    "type": row.get("type"), "level": row.get("level")})
    return out


def _converted(src: DataSource, parquet: Path) -> Path:
    assert src.member is not None
    target = _derived_dir(src, parquet) / src.member
    if not target.exists():
        from longkit.io import atomic_write_text

        target.parent.mkdir(parents=True, exist_ok=True)
        data = _squad_json(parquet) if src.convert == "squad" else _hotpotqa_json(parquet)
        atomic_write_text(target, json.dumps(data, ensure_ascii=False))
    return target


def fetch(task: str, allow_download: bool = True) -> Path:
    """The local path a task reads (a file, or LV-Eval's directory), downloaded into the hub cache if missing."""
    name = task
    src = source_of(name)
    path = _download(name, src, allow_download)
    if src.convert:
        return _converted(src, path)
    if src.member is not None:
        return _unpack(name, src, path)
    return path


def fetch_many(tasks: list[str]) -> list[tuple[str, Path]]:
    """Fetch several tasks ahead of time (`longkit eval fetch`); each repository file is downloaded once."""
    return [(t, fetch(t)) for t in tasks]
