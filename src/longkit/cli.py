"""The `longkit` command: one Typer app; each area contributes its sub-commands from its own cli module."""

from __future__ import annotations

import logging
import os

import typer


app = typer.Typer(
    name="longkit",
    help="Long-context LLMs and RAG: ChatQA 2 and Untie-the-Knots as software.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except Exception:  # transformers missing is reported where it is needed
        pass


def _register() -> None:
    from longkit.backends.cli import register as register_backends
    from longkit.data.cli import app as data_app
    from longkit.eval.cli import app as eval_app
    from longkit.models.cli import app as model_app
    from longkit.rag.cli import app as rag_app
    from longkit.rag.cli import register_eval_commands as register_rag_eval
    from longkit.sft.cli import register_data_commands as register_sft_data
    from longkit.train.cli import app as train_app
    from longkit.demo import register as register_demo

    register_sft_data(data_app)
    register_rag_eval(eval_app)
    app.add_typer(model_app, name="model", help="Inspect, load and extend models.")
    app.add_typer(data_app, name="data", help="Build long-context pretraining and SFT data.")
    app.add_typer(train_app, name="train", help="Continued pretraining and instruction tuning.")
    app.add_typer(rag_app, name="rag", help="Chunk, embed, index and answer with retrieval.")
    app.add_typer(eval_app, name="eval", help="Long-context and RAG evaluation.")
    register_backends(app)
    register_demo(app)


_register()


def main() -> None:
    """Entry point for `python -m longkit`."""
    _quiet_libraries()
    app()


if __name__ == "__main__":
    main()
