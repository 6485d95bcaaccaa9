"""`longkit train ...` sub-commands."""

from __future__ import annotations

import json
from typing import Any

import typer

from longkit.cli_common import friendly_errors
from longkit.errors import ConfigError

app = typer.Typer(no_args_is_help=True)


def _print(summary: dict[str, Any]) -> None:
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
    no_resume: bool = typer.Option(
        False, "--no-resume", help="Start over: delete out's checkpoints and final model, then train."
    ),
    extend: bool = typer.Option(
        False,
        "--continue",
        help="Train a finished run further, to --max-steps, from its final model with a "
        "fresh optimiser and schedule (the old final model is kept as final-stepN).",
    ),
) -> None:
    """Continued pretraining on the streaming packed dataset (plain / CIP / UtK), resumable.

    A rerun into the same out resumes an unfinished run, says a finished one is complete, and refuses other
    settings (naming the field) before anything is written."""
    from longkit.train.config import CPTConfig, load_train_config
    from longkit.train.cpt import run_cpt
    from longkit.train.run import end_distributed

    if extend and no_resume:
        raise ConfigError("--continue and --no-resume: choose one (continue a finished run, or start over)")
    if extend and max_steps is None:
        raise ConfigError("--continue needs --max-steps: the total number of steps to train to")
    cfg = load_train_config(CPTConfig, config)
    if max_steps is not None:
        cfg.train.max_steps = max_steps
    summary = run_cpt(cfg, where=config, resume=False if no_resume else None, extend_steps=extend)
    _say_complete(summary)
    _print(summary)
    end_distributed()


def _say_complete(summary: dict[str, Any]) -> None:
    """One line on stderr when a run was already complete (nothing trained, nothing written)."""
    from longkit.train.run import is_main_process

    if not (summary.get("already_complete") and is_main_process()):
        return
    if summary.get("stage"):
        typer.echo(f"stage '{summary['stage']}' already complete: {summary.get('output')}; nothing to do", err=True)
    else:
        typer.echo(
            f"already complete: {summary.get('output')} ({summary.get('steps')} steps); nothing to do (pass "
            "--continue with a larger --max-steps to train further)",
            err=True,
        )


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
        _say_complete(s)
        if not s.get("already_complete"):
            _print(s)
    if results and all(s.get("already_complete") for s in results) and is_main_process():
        typer.echo("nothing to train: every stage asked for is complete with these settings", err=True)
    end_distributed()


@app.command("fetch")
@friendly_errors
def fetch(
    config: str = typer.Argument(..., help="Recipe, CPT config or SFT config YAML."),
    json_out: bool = typer.Option(False, "--json", help="Print what was fetched as JSON."),
) -> None:
    """Download (and convert) every Hub dataset a training config names - SFT subsets, streaming CPT sources up to
    their token budget, probe tasks' data - so the run can go offline (HF_HUB_OFFLINE=1)."""
    from longkit.train.fetch import fetch_training_data

    report = fetch_training_data(config)
    if json_out:
        typer.echo(json.dumps(report, indent=2))


@app.command("curves")
@friendly_errors
def curves(
    runs: list[str] = typer.Argument(..., help="Run directories (or their probes.jsonl files) to compare."),
    out: str = typer.Option("probe_curves.png", "--out", help="Figure to write (PNG)."),
    metric: str = typer.Option(
        None,
        "--metric",
        help="One metric: effective_length, ppl, <task>/<length> (e.g. passkey/4096) or mean/<length>; "
        "default: effective length, the mean score at each length and perplexity.",
    ),
) -> None:
    """Plot the long-context probes of training runs (probe: in their config) against training tokens, one line
    per run, and print them as a table."""
    from longkit.train.probe_curves import curves as draw

    path, text = draw(runs, out, metric)
    typer.echo(text)
    typer.echo(f"wrote {path}")


@app.command("recipe")
@friendly_errors
def recipe(
    config: str = typer.Argument(
        ..., help="Recipe YAML with cpt: and sft: sections (e.g. configs/recipes/smoke.yaml)."
    ),
    only: str = typer.Option(None, "--only", help="Run only one section: cpt or sft."),
) -> None:
    """Run a whole recipe: RoPE extension -> continued pretraining -> staged SFT."""
    from longkit.train.recipe import run_recipe
    from longkit.train.run import end_distributed

    rep = run_recipe(config, only=only)
    typer.echo(json.dumps(rep["timings_s"]))
    end_distributed()


@app.command("plan")
@friendly_errors
def plan(
    config: str = typer.Argument(..., help="CPT config, SFT config or recipe YAML."),
    gpus: int = typer.Option(..., "--gpus", help="Number of GPUs (processes)."),
    gpu_memory: str = typer.Option(..., "--gpu-memory", help="Memory per GPU: 80GiB, 80GB, 141G, ..."),
    mfu: float = typer.Option(0.4, "--mfu", help="Model FLOPs utilisation assumed for the time estimate, (0, 1]."),
    sharding: str = typer.Option("fsdp", "--sharding", help="fsdp | zero3 | zero2 | ddp."),
    peak_tflops: float = typer.Option(989.0, "--peak-tflops", help="Per-GPU peak (H100/H200 bf16 dense: 989)."),
    precision: str = typer.Option(None, "--precision", help="bf16 | fp32 (default: the config's train.precision)."),
    device: str = typer.Option("cuda", "--device", help="cuda | cpu (cpu: no CUDA allowance, fp32 by default)."),
    sample_docs: int = typer.Option(200, "--sample-docs", help="Documents per source tokenized without a corpus."),
    json_out: str = typer.Option(None, "--json", help="Where to write the plan (default: <out>/plan.json)."),
) -> None:
    """The run before it runs: RoPE check, data mix, memory per GPU, context-parallel degree, time, commands."""
    from longkit.train.plan import parse_memory, run_plan
    from longkit.train.plan_options import PlanOptions
    from longkit.train.plan_report import fits_line, render

    opts = PlanOptions(
        gpus=gpus,
        gpu_memory=parse_memory(gpu_memory),
        mfu=mfu,
        sharding=sharding,
        peak_tflops=peak_tflops,
        precision=precision,
        device=device,
        sample_docs=sample_docs,
    )
    result, out = run_plan(config, opts, json_out)
    typer.echo(render(result))
    typer.echo(fits_line(result))
    typer.echo(f"plan written to {out}", err=True)
