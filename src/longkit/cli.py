"""The `longkit` command: one Typer app; each area contributes its sub-commands from its own cli module."""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

import typer

app = typer.Typer(
    name="longkit",
    help="Long-context LLMs and RAG: ChatQA 2 and Untie-the-Knots as software.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # every sub-command inherits it: an option's default is part of what its help promises
    context_settings={"show_default": True},
)


def _version(value: bool) -> None:
    """--version: print the installed package's version and stop."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(version("longkit"))
        except PackageNotFoundError:  # a source tree on sys.path without an install: the package's own string
            from longkit import __version__

            typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Print longkit's version and exit."
    ),
) -> None:
    """Long-context LLMs and RAG: ChatQA 2 and Untie-the-Knots as software."""


# Environment switches of the libraries' own tqdm bars; read by child processes (worker shards) at import.
PROGRESS_ENV = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def _quiet_libraries(tty: bool | None = None) -> None:
    """Warnings only from libraries; off a terminal, no tqdm bars from transformers, datasets or huggingface_hub.

    A bar redrawn with carriage returns is noise in a log file; longkit's own progress (longkit.progress) prints
    plain lines there instead. On a terminal the hub's and datasets' bars stay (downloads can be long)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not (sys.stderr.isatty() if tty is None else tty):
        for var in PROGRESS_ENV:
            os.environ.setdefault(var, "1")
        _disable_loaded_bars()
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except Exception:  # transformers missing is reported where it is needed
        pass


def _disable_loaded_bars() -> None:
    """Turn off the bars of libraries imported before the environment switches were set (unless the user's own
    setting of a switch says to keep them)."""
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1":
        try:
            # huggingface_hub.utils re-exports it lazily, without marking it public for type checkers
            from huggingface_hub.utils import disable_progress_bars  # type: ignore[attr-defined]

            disable_progress_bars()
        except ImportError:
            pass
    datasets = sys.modules.get("datasets")  # not imported just for this: it is slow to import
    if datasets is not None and os.environ.get("HF_DATASETS_DISABLE_PROGRESS_BARS") == "1":
        datasets.disable_progress_bars()


def _register() -> None:
    from longkit.data.cli import app as data_app
    from longkit.demo import register as register_demo
    from longkit.eval.cli import app as eval_app
    from longkit.eval.rag_cli import register as register_rag_eval
    from longkit.models.cli import app as model_app
    from longkit.rag.cli import app as rag_app
    from longkit.serve.cli import register as register_serve
    from longkit.sft.cli import register_data_commands as register_sft_data
    from longkit.train.cli import app as train_app

    register_sft_data(data_app)
    register_rag_eval(rag_app, eval_app)
    app.add_typer(model_app, name="model", help="Inspect, load and extend models.")
    app.add_typer(data_app, name="data", help="Build long-context pretraining and SFT data.")
    app.add_typer(train_app, name="train", help="Continued pretraining and instruction tuning.")
    app.add_typer(rag_app, name="rag", help="Chunk, embed, index and answer with retrieval.")
    app.add_typer(eval_app, name="eval", help="Long-context and RAG evaluation.")
    register_serve(app)
    register_demo(app)


_register()


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on argv and return the exit status; every failure ends in one `error: ...` line on stderr.

    0 success; 2 a user's mistake (bad option, file or config: `error: <where>: <what was expected>`);
    1 an internal error (one line and a hint; `LONGKIT_DEBUG=1` shows the traceback); 130 interrupted.
    """
    import typer

    from longkit.errors import LongkitError

    cx = _click_exceptions()
    debug = os.environ.get("LONGKIT_DEBUG", "") not in ("", "0")
    try:
        rv = app(args=argv, prog_name="longkit", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except cx.NoArgsIsHelpError:  # the help has been printed already
        return 2
    except cx.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _say(f"error: {exc.format_message()}{hint}")
        return 2
    except (typer.Exit, getattr(cx, "Exit", typer.Exit)) as exc:
        return exc.exit_code
    except (typer.Abort, getattr(cx, "Abort", typer.Abort), KeyboardInterrupt):
        _say("error: interrupted")
        return 130
    except LongkitError as exc:
        if debug:
            raise
        _say(f"error: {exc}")
        return 2
    except cx.ClickException as exc:
        _say(f"error: {exc.format_message()}")
        code: int = exc.exit_code  # `cx` is a module picked at run time: its classes reach here untyped
        return code
    except UnicodeDecodeError as exc:
        if debug:
            raise
        _say(
            f"error: input is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        )
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        if debug:
            raise
        where = exc.filename if exc.filename is not None else "input"
        _say(f"error: {where}: {exc.strerror or exc}")
        return 2
    except MemoryError:
        _say("error: out of memory; use smaller inputs, lengths or batch sizes")
        return 1
    except Exception as exc:  # an internal error: one line unless asked for the traceback
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _say(f"internal error: {type(exc).__name__}: {first} (rerun with LONGKIT_DEBUG=1 for the traceback)")
        return 1


def _click_exceptions() -> ModuleType:
    """The exception module of the click that typer runs on (recent typer vendors its own copy)."""
    try:
        from typer._click import exceptions
    except ImportError:  # typer releases that use the click package
        from click import exceptions as click_exceptions

        return click_exceptions
    return exceptions


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> None:
    """Entry point for `longkit` and `python -m longkit`."""
    _quiet_libraries()
    sys.exit(run())


if __name__ == "__main__":
    main()
