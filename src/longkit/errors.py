"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from types import TracebackType
from typing import Literal


class LongkitError(Exception):
    """An error caused by user input or environment, reported without a traceback."""


class ConfigError(LongkitError):
    """A malformed config file or an invalid option value."""


class InputError(LongkitError):
    """A bad input file: the message names file, line and field."""


class BackendError(LongkitError):
    """A generation backend could not be reached or answered with an error."""


class located:  # noqa: N801  (used like a function: `with located(where):`)
    """Prefix `where` to the message of a LongkitError raised inside the block (type and traceback kept).

    The one place a location is added: code below a boundary raises `what was expected`, and the boundary that
    knows the file, line or option wraps it, so no function takes a `where` argument only to build messages.
    A `where` of None (or "") leaves messages as they are.
    """

    __slots__ = ("where", "sep")

    def __init__(self, where: str | None, sep: str = ": ") -> None:
        self.where = where
        self.sep = sep

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if self.where and isinstance(exc, LongkitError):
            exc.args = (f"{self.where}{self.sep}{exc}", *exc.args[1:])
        return False  # the (re-labelled) exception propagates
