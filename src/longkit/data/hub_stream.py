"""Hub datasets read as a stream: a split's files listed at one commit, downloaded one at a time and read row by
row with their positions (the resumable corpus writer that consumes them is longkit.data.stream_corpus).

A `type: hub` source names a dataset repository on the Hugging Face Hub (`path: cerebras/SlimPajama-627B`). Its
data files for the split are listed at a pinned revision (online through `HfApi.list_repo_files`; offline from
the listing recorded the last time it was listed online, else from the files in the local snapshot of the hub
cache), fetched one at a time with `hf_hub_download` into the standard cache and read row by row without holding
a file in memory. .jsonl, .jsonl.gz, .jsonl.zst and .parquet files are read; files are taken in natural sort
order (chunk2 before chunk10), so the same revision always yields the same documents in the same order.

SlimPajama-627B (https://huggingface.co/datasets/cerebras/SlimPajama-627B, revision
2d0accdd58c5d5511943ca1f5ff0e3eb5e293543) holds 59,166 zstd-compressed JSON-lines files laid out as
`train/chunk{1..10}/example_train_{K}.jsonl.zst` (validation/ and test/ hold `example_holdout_{K}`), each row
`{"text": ..., "meta": {"redpajama_set_name": "RedPajamaCommonCrawl" | "RedPajamaC4" | "RedPajamaGithub" |
"RedPajamaBook" | "RedPajamaArXiv" | "RedPajamaWikipedia" | "RedPajamaStackExchange"}}` (the dataset card's
"Dataset Structure"). Its pipeline interleaves and shuffles documents before splitting them into chunks (Cerebras,
"Step by step guide to pre-process SlimPajama", docs.cerebras.net), so reading its files in order is a fair
sample of the whole: the first 10B tokens are as good a 10B sample as any.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from longkit.data.source_spec import SourceSpec, field_value, row_doc
from longkit.errors import InputError, located

HUB_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
# prefetch: ~4 bytes of UTF-8 text per token is typical of English prose with Llama-3- or GPT-style BPE
# vocabularies (code and non-English text take more tokens per byte), plus a quarter for that spread
BYTES_PER_TOKEN = 4
PREFETCH_MARGIN = 1.25
FETCH_HINT = "fetch it with `longkit train fetch CONFIG` or run the build while online"


# -- where the Hub cache keeps a dataset --------------------------------------------------------------------


def _repo_dir(repo: str) -> Path:
    from longkit.eval.fetch import hub_cache

    return hub_cache() / f"datasets--{repo.replace('/', '--')}"


def _listing_path(repo: str, revision: str) -> Path:
    # beside longkit's other derived Hub data (eval.fetch); a commit's file list never changes, so it is kept
    root = Path(os.environ.get("LONGKIT_CACHE", Path.home() / ".cache" / "longkit"))
    return root / "data" / repo.replace("/", "--") / revision / "hub-files.json"


def _api() -> Any:  # Any: huggingface_hub.HfApi (a seam the tests replace)
    from huggingface_hub import HfApi

    return HfApi()


def _offline_error(repo: str, what: str) -> InputError:
    from longkit.eval.fetch import hub_cache

    return InputError(
        f"{repo}: {what} is not in the Hugging Face cache {hub_cache()} and HF_HUB_OFFLINE is set; {FETCH_HINT}"
    )


def _hub_error(repo: str, what: str, exc: Exception) -> InputError:
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    return InputError(
        f"{repo}: cannot read {what} from the Hugging Face Hub ({type(exc).__name__}: {first}); {FETCH_HINT}"
    )


def resolve_revision(spec: SourceSpec) -> str:
    """The commit a source reads: its `revision` when that is a commit, else the commit the branch or tag names
    now (read from the cache offline), so that a build records, and a resumed build keeps, one fixed commit."""
    from longkit.eval.fetch import offline

    rev = spec.revision or "main"
    if COMMIT.match(rev):
        return rev
    if offline():
        ref = _repo_dir(spec.path) / "refs" / rev
        if not ref.is_file():
            raise _offline_error(spec.path, f"revision '{rev}'")
        return ref.read_text().strip()
    try:
        return str(_api().repo_info(spec.path, repo_type="dataset", revision=rev).sha)
    except Exception as exc:  # noqa: BLE001 -- any Hub failure (network, 404, auth) is one line for the user
        raise _hub_error(spec.path, f"revision '{rev}'", exc) from None


def _repo_files(repo: str, revision: str) -> list[str]:
    """Every file of the repository at a commit: listed online (and recorded), else as recorded, else the snapshot."""
    from longkit.eval.fetch import offline

    recorded = _listing_path(repo, revision)
    if recorded.is_file():
        files: list[str] = json.loads(recorded.read_text(encoding="utf-8"))
        return files
    if offline():
        snap = _repo_dir(repo) / "snapshots" / revision
        if not snap.is_dir():
            raise _offline_error(repo, f"revision {revision}")
        return [p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()]
    try:
        files = list(_api().list_repo_files(repo, repo_type="dataset", revision=revision))
    except Exception as exc:  # noqa: BLE001
        raise _hub_error(repo, f"the file list at {revision}", exc) from None
    from longkit.io import write_json

    write_json(recorded, files)
    return files


def in_split(filename: str, split: str) -> bool:
    """Whether a repository file belongs to a split: a folder named after it (SlimPajama's train/chunk1/...) or a
    file name starting with it (the Hub's data/train-00000-of-00004.parquet)."""
    *folders, name = filename.split("/")
    return split in folders or re.match(rf"{re.escape(split)}[-_.]", name) is not None


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def split_files(spec: SourceSpec, revision: str) -> list[str]:
    """The data files of the source's split at a commit, in natural sort order (chunk2 before chunk10)."""
    files = [f for f in _repo_files(spec.path, revision) if f.endswith(HUB_SUFFIXES) and in_split(f, spec.split)]
    if not files:
        raise InputError(
            f"{spec.path}: no {', '.join(HUB_SUFFIXES)} files for split '{spec.split}' at revision {revision}"
        )
    return sorted(files, key=_natural)


def download(repo: str, revision: str, filename: str) -> Path:
    """One repository file in the hub cache (downloaded unless there; offline, only the cache is read)."""
    from longkit.eval.fetch import HubUnavailable, hub_download

    try:
        return hub_download(repo, filename, revision)
    except HubUnavailable as exc:
        raise InputError(f"{repo}: {filename} (revision {revision[:12]}) {exc.why}; {FETCH_HINT}") from None


# -- reading rows with their positions ---------------------------------------------------------------------


@contextlib.contextmanager
def open_lines(path: Path, name: str) -> Iterator[Iterable[bytes]]:
    """A binary line stream over a (.gz or .zst compressed) JSON-lines file, decompressed as it is read."""
    with open(path, "rb") as raw:
        if name.endswith(".zst"):
            import zstandard

            # read_across_frames: a file written in several zstd frames is one stream of lines
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            yield io.BufferedReader(reader, buffer_size=1 << 20)
        elif name.endswith(".gz"):
            with gzip.open(raw, "rb") as gz:
                yield gz
        else:
            yield raw


def _parse_line(raw: bytes, where: str) -> dict[str, Any]:
    try:
        row = json.loads(raw)
    except UnicodeDecodeError:
        raise InputError(f"{where}: not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def _jsonl_rows(path: Path, display: str, skip: int) -> Iterator[tuple[int, dict[str, Any]]]:
    import zstandard

    lineno = 0
    try:
        with open_lines(path, display) as fh:
            for lineno, raw in enumerate(fh, start=1):
                if lineno <= skip or not raw.strip():  # rows before a resume position are skipped unparsed
                    continue
                yield lineno, _parse_line(raw.removeprefix(b"\xef\xbb\xbf"), f"{display}:{lineno}")
    except (OSError, EOFError, zstandard.ZstdError) as exc:  # a truncated or damaged download
        raise InputError(
            f"{display}: damaged compressed file after line {lineno} ({exc}); delete it from the cache"
        ) from None


def _parquet_rows(path: Path, display: str, skip: int, columns: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{display}: not a readable Parquet file ({str(exc).strip().splitlines()[0]})") from None
    names = set(pf.schema_arrow.names)
    row_no = 0
    for batch in pf.iter_batches(columns=[c for c in columns if c in names] or None, batch_size=4096):
        if row_no + batch.num_rows <= skip:  # a resumed read passes whole batches before its position
            row_no += batch.num_rows
            continue
        for row in batch.to_pylist():
            row_no += 1
            if row_no > skip:
                yield row_no, row


def read_rows(
    path: Path, display: str, skip: int = 0, columns: list[str] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number from 1, row) of one data file, after the first `skip`; `display` names the file in
    errors (`repo/path:line`); `columns` limits what a Parquet file reads (top-level names)."""
    if display.endswith(".parquet"):
        yield from _parquet_rows(path, display, skip, columns or [])
    else:
        yield from _jsonl_rows(path, display, skip)


def _columns(spec: SourceSpec) -> list[str]:
    """The top-level columns a row needs for the spec's (dotted) text and source fields."""
    names = [spec.text_field] + ([spec.source_field] if spec.source_field and not spec.source else [])
    return sorted({n.split(".")[0] for n in names} | set(names))


def iter_hub_rows(
    spec: SourceSpec, revision: str, files: list[str], start_file: int = 0, start_row: int = 0
) -> Iterator[tuple[int, int, dict[str, Any] | None]]:
    """(file index, row number, row) from `start_file` past row `start_row`; after each file's last row, one
    (next file index, 0, None): the reader's position is then a file boundary, and the next file is downloaded
    only when the caller asks for more."""
    for k in range(start_file, len(files)):
        path = download(spec.path, revision, files[k])
        skip = start_row if k == start_file else 0
        for row_no, row in read_rows(path, f"{spec.path}/{files[k]}", skip, _columns(spec)):
            yield k, row_no, row
        yield k + 1, 0, None


def default_source(spec: SourceSpec) -> str:
    """The source name of rows that carry none: the repository's name."""
    return spec.source or spec.path.rsplit("/", 1)[-1]


def iter_hub_documents(spec: SourceSpec) -> Iterator[tuple[str, str]]:
    """(source, text) of every row of the split (`sources.iter_documents` for a Hub source)."""
    revision = resolve_revision(spec)
    files = split_files(spec, revision)
    for k, row_no, row in iter_hub_rows(spec, revision, files):
        if row is not None:
            with located(f"{spec.path}/{files[k]}:{row_no}"):
                doc = row_doc(spec, row, default_source(spec))
            yield doc


def prefetch_hub_source(spec: SourceSpec, token_budget: int | None = None) -> list[Path]:
    """Download the files of a Hub source that a build with this budget reads (all of them without a budget).

    Tokens are not known before tokenizing, so the budget is estimated in bytes: files are fetched in build order
    until the UTF-8 text they hold reaches BYTES_PER_TOKEN x PREFETCH_MARGIN bytes per budgeted token. A build that
    still runs short offline stops at the first missing file and names it. The file list is recorded as well, so
    that an offline build knows which files exist beyond the fetched ones."""
    revision = resolve_revision(spec)
    files = split_files(spec, revision)
    need = None if token_budget is None else token_budget * BYTES_PER_TOKEN * PREFETCH_MARGIN
    paths: list[Path] = []
    text_bytes = 0
    for name in files:
        if need is not None and text_bytes >= need:
            break
        path = download(spec.path, revision, name)
        paths.append(path)
        if need is not None:
            text_bytes += _text_bytes(spec, path, f"{spec.path}/{name}")
    return paths


def _text_bytes(spec: SourceSpec, path: Path, display: str) -> int:
    total = 0
    for _, row in read_rows(path, display, columns=_columns(spec)):
        text = field_value(row, spec.text_field)
        if isinstance(text, str):
            total += len(text.encode("utf-8"))
    return total
