"""Shared machinery for benchmarks read from their official files: schema checks that name file, line
and field, sample planning, chat wrapping and middle truncation to the model's window."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longkit.backends.base import TextTokenizer
from longkit.errors import ConfigError, InputError
from longkit.eval.tasks.base import Sample, Task
from longkit.io import iter_jsonl

if TYPE_CHECKING:
    from longkit.eval.tasks.spec import TaskSpec


def resolve_file(data: str | Path | None, candidates: list[str], what: str) -> Path:
    """The benchmark file for a task: `data` itself if it is a file, else the first candidate under it."""
    if not data:
        raise ConfigError(
            f"{what}: no data path given (set data.<benchmark> or the task's 'data' to the official "
            f"file or its directory; expected one of {', '.join(candidates)})"
        )
    p = Path(data)
    if p.is_file():
        return p
    if p.is_dir():
        for c in candidates:
            if (p / c).is_file():
                return p / c
        raise InputError(f"{what}: none of {', '.join(candidates)} found in {p}")
    raise InputError(f"{what}: {p} does not exist")


def length_bucket(tokens: int) -> int:
    """The smallest power-of-two multiple of 1024 tokens that holds `tokens` (4K, 8K, 16K, ...)."""
    b = 1024
    while b < tokens:
        b *= 2
    return b


class FileTask(Task):
    """A task over rows of an official JSONL file; subclasses give the fields, prompt and scorer."""

    group_by: tuple[str, ...] = ("length",)
    required: tuple[str, ...] = ()
    max_new_tokens: int = 64

    def __init__(
        self,
        path: str | Path,
        limit: int | None = None,
        max_length: int | None = None,
        chat: bool | None = None,
        budget: int | None = None,
    ):
        self.path = Path(path)
        self.limit = limit
        self.max_length = max_length  # truncate prompts to this many tokens (e.g. ChatQA 2's 32K set)
        self.chat = chat
        # The benchmark's own truncation budget: the prompt text (before any chat template, as LongBench's
        # pred.py and InfiniteBench's eval scripts cut it) is cut in the middle to this many tokens. When the
        # window cannot hold it plus the answer, the window wins and the sample says so (meta 'budget').
        self.budget = budget
        self._rows: list[tuple[int, dict[str, Any]]] | None = None

    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        """(line, row) pairs of the file, validated against the official schema."""
        if self._rows is None:
            rows = []
            for lineno, row in iter_jsonl(self.path, self.required):
                self.check(row, lineno)
                rows.append((lineno, row))
                if self.limit is not None and len(rows) >= self.limit:
                    break
            if not rows:
                raise InputError(f"{self.path}: no samples")
            self._rows = rows
        return self._rows

    def check(self, row: dict[str, Any], lineno: int) -> None:
        """Extra per-row validation (types); raise InputError naming file, line and field."""

    def bad(self, lineno: int, field: str, why: str) -> InputError:
        """An InputError naming this file, the line and the field."""
        return InputError(f"{self.path}:{lineno}: field '{field}': {why}")

    def fingerprint(self) -> dict[str, Any]:
        """Task name, file, truncation and chat settings."""
        fp = {"name": self.name, "path": str(self.path), "max_length": self.max_length, "chat": self.chat}
        if self.budget:
            fp["budget"] = self.budget
        return fp

    def row_id(self, row: dict[str, Any], lineno: int) -> str:
        """A stable sample id (the file's own id when it has one)."""
        for key in ("_id", "id"):
            if key in row and str(row[key]):
                return str(row[key])
        return f"line{lineno}"

    def plan(self) -> list[dict[str, Any]]:
        """One spec per row."""
        seen: dict[str, int] = {}
        specs = []
        for i, (lineno, row) in enumerate(self.rows()):
            rid = self.row_id(row, lineno)
            n = seen.get(rid, 0)
            seen[rid] = n + 1
            specs.append({"id": rid if n == 0 else f"{rid}#{n}", "row": i})
        return specs

    @abstractmethod
    def user_text(self, row: dict[str, Any]) -> str:
        """The prompt text for one row (official template)."""

    @abstractmethod
    def references(self, row: dict[str, Any]) -> list[str]:
        """The reference answers of one row."""

    def extra_meta(self, row: dict[str, Any]) -> dict[str, Any]:
        """Metadata carried to the scorer and the report."""
        return {}

    def build(self, spec: dict[str, Any], tokenizer: TextTokenizer, max_context: int) -> Sample:
        """Prompt for one row, middle-truncated so it and the answer fit the window."""
        lineno, row = self.rows()[spec["row"]]
        text = self.user_text(row)
        chat = tokenizer.has_chat_template if self.chat is None else self.chat
        window = min(max_context, self.max_length) if self.max_length else max_context
        overhead = tokenizer.count(tokenizer.render_messages([{"role": "user", "content": ""}])) if chat else 0
        full = tokenizer.count(text)
        fit = window - self.max_new_tokens - overhead - 8
        limit = min(self.budget, fit) if self.budget else fit
        text, truncated = tokenizer.truncate_middle(text, limit)
        meta = {
            "length": self.length_of(row, full + overhead),
            "input_tokens": full + overhead,
            "truncated_by_task": truncated,
            "line": lineno,
            **self.extra_meta(row),
        }
        if self.budget:
            meta["budget"] = "official" if self.budget <= fit else "window"
        kwargs: dict[str, Any] = {"messages": [{"role": "user", "content": text}]} if chat else {"prompt": text}
        return Sample(
            id=spec["id"], references=self.references(row), meta=meta, max_new_tokens=self.max_new_tokens, **kwargs
        )

    def length_of(self, row: dict[str, Any], tokens: int) -> Any:
        """The length group of a row (a token bucket unless the benchmark defines its own)."""
        return length_bucket(tokens)


def str_list(value: Any) -> list[str]:
    """A reference field as a list of strings (a bare string becomes a one-item list)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def official_file(spec: TaskSpec, settings: dict[str, Any], candidates: list[str]) -> Path:
    """The file a file-backed task reads: the suite's `path`, or its `data.<setting>` directory searched for the
    candidates, else the official data fetched by name (spec.data)."""
    setting = spec.data.setting if spec.data else ""
    given = settings.get("path") or settings.get("data", {}).get(setting)
    if given:
        return resolve_file(given, candidates, f"{spec.benchmark} {spec.name}")
    from longkit.eval.fetch import fetch

    return fetch(spec.name)


def file_kwargs(settings: dict[str, Any], budget: int | None = None) -> dict[str, Any]:
    """A FileTask's suite settings; budget is the benchmark's official prompt truncation in tokens (a configured
    `budget: 0` means "fit the window only")."""
    b = settings.get("budget")
    return {
        "limit": settings.get("samples"),
        "max_length": settings.get("max_length"),
        "chat": settings.get("chat"),
        "budget": budget if b is None else (int(b) or None),
    }
