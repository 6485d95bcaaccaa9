"""The options that choose a generation backend, defined once for every command that generates text.

--backend, --model, --base-url, --api-key and --tokenizer are the CLI spelling of `BackendSpec`'s fields. A command
declares the ones it offers with the objects below and turns their values into a spec with `backend_spec`.
"""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError

from longkit.backends.registry import backend_info, backend_names
from longkit.backends.spec import BackendSpec
from longkit.errors import ConfigError
from longkit.models.defaults import DEFAULT_GENERATOR

BACKEND_HELP = f"Generation backend: {' | '.join(backend_names())}."
MODEL_HELP = "Generator: bundled name, GGUF file, local directory, hub id in the cache, or served id."
BASE_URL_HELP = "OpenAI-compatible server URL (openai backend)."
API_KEY_HELP = (
    "Bearer token for the openai backend (default: $LONGKIT_API_KEY, then $OPENAI_API_KEY; a local "
    "server at 127.0.0.1/localhost needs none)."
)
TOKENIZER_HELP = "Local tokenizer of the served model, to measure lengths with (openai backend)."


# typer.Option is typed as returning Any: the OptionInfo it builds stands in for the parameter's default.
def backend_option(default: str | None = "hf") -> Any:
    """--backend; a default of None leaves the choice to a config file (or the spec's own default)."""
    return typer.Option(default, "--backend", help=BACKEND_HELP)


def model_option(default: str | None = DEFAULT_GENERATOR) -> Any:
    """--model / -m."""
    return typer.Option(default, "--model", "-m", help=MODEL_HELP)


def base_url_option() -> Any:
    """--base-url."""
    return typer.Option(None, "--base-url", help=BASE_URL_HELP)


def api_key_option() -> Any:
    """--api-key."""
    return typer.Option(None, "--api-key", help=API_KEY_HELP)


def tokenizer_option() -> Any:
    """--tokenizer."""
    return typer.Option(None, "--tokenizer", help=TOKENIZER_HELP)


BACKEND = backend_option()
MODEL = model_option()
BASE_URL = base_url_option()
API_KEY = api_key_option()
TOKENIZER = tokenizer_option()


def check_backend(name: str | None) -> str | None:
    """The --backend value; an unknown one is refused in one line listing the registered backends."""
    return None if name is None else backend_info(name, "--backend").name


def backend_spec(
    backend: str,
    model: str | None,
    base_url: str | None = None,
    api_key: str | None = None,
    tokenizer: str | None = None,
    **more: Any,
) -> BackendSpec:
    """The BackendSpec the shared options name; `more` sets other fields (max_context, batch_size, ...)."""
    check_backend(backend)
    given = {"base_url": base_url, "api_key": api_key, "tokenizer": tokenizer, **more}
    try:  # model stays as given: None asks an openai server for its first model
        return BackendSpec(backend=backend, model=model, **{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(
            "; ".join(
                f"--{'-'.join(str(p) for p in err['loc']).replace('_', '-')}: {err['msg']}" for err in exc.errors()
            )
        ) from None
