"""`longkit train ...` sub-commands."""

from __future__ import annotations

import json

import typer

from longkit.cli_common import friendly_errors

app = typer.Typer(no_args_is_help=True)


def _print(summary: dict) -> None:
    from longkit.train.run import is_main_process

    if not is_main_process():  # one summary per launch, not one per rank
        return
    s = {k: v for k, v in summary.items() if k not in ("_trainer", "log_history", "step_losses")}
    typer.echo(json.dumps(s, indent=2, default=str))


@app.command("cpt")
@friendly_errors
def cpt(
    config: str = typer.Argument(..., help="CPT config YAML (see configs/recipes/)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Override train.max_steps."),
    no_resume: bool = typer.Option(False, "--no-resume", help="Start fresh even if checkpoints exist."),
) -> None:
    """Continued pretraining on the streaming packed dataset (plain / CIP / UtK), resumable."""
    from longkit.train.config import CPTConfig, load_train_config
    from longkit.train.cpt import run_cpt
    from longkit.train.run import end_distributed

    cfg = load_train_config(CPTConfig, config)
    if max_steps is not None:
        cfg.train.max_steps = max_steps
    _print(run_cpt(cfg, where=config, resume=False if no_resume else None))
    end_distributed()


@app.command("sft")
@friendly_errors
def sft(
    config: str = typer.Argument(..., help="SFT config YAML with stages and blends (see configs/recipes/)."),
    stage: str = typer.Option(None, "--stage", help="Run only this stage (earlier stages must be done)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Override train.max_steps for every stage."),
) -> None:
    """ChatQA-style instruction tuning: stages in order, answer-only loss, packed without cross-sample attention."""
    from longkit.train.run import end_distributed, is_main_process
    from longkit.train.sft import sft_from_file

    results = sft_from_file(config, stage=stage, max_steps=max_steps)
    for s in results:
        _print(s)
    if not results and is_main_process():
        typer.echo("nothing to train: every stage asked for already has its final/ model (resume: true); use "
                   "another out, or delete a stage's directory to train it again", err=True)
    end_distributed()


@app.command("recipe")
@friendly_errors
def recipe(
    config: str = typer.Argument(..., help="Recipe YAML with cpt: and sft: sections (e.g. configs/recipes/smoke.yaml)."),
    only: str = typer.Option(None, "--only", help="Run only one section: cpt or sft."),
) -> None:
    """Run a whole recipe: RoPE extension -> continued pretraining -> staged SFT."""
    from longkit.train.recipe import run_recipe
    from longkit.train.run import end_distributed

    rep = run_recipe(config, only=only)
    typer.echo(json.dumps(rep["timings_s"]))
    end_distributed()
