"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class LongkitError(Exception):
    """An error caused by user input or environment, reported without a traceback."""


class ConfigError(LongkitError):
    """A malformed config file or an invalid option value."""


class InputError(LongkitError):
    """A bad input file: the message names file, line and field."""


class BackendError(LongkitError):
    """A generation backend could not be reached or answered with an error."""
