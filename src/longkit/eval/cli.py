"""`longkit eval ...` sub-commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from longkit.cli_backend import API_KEY, BASE_URL, TOKENIZER, backend_option, check_backend, model_option
from longkit.cli_common import friendly_errors

app = typer.Typer(no_args_is_help=True)


def _needle_command(task_name: str, doc: str):  # noqa: ANN202  (typer builds the signature)
    @friendly_errors
    def command(
        model: str | None = model_option(None),
        backend: str | None = backend_option(None),
        base_url: str | None = BASE_URL,
        api_key: str | None = API_KEY,
        tokenizer: str | None = TOKENIZER,
        lengths: str | None = typer.Option(None, help="Context lengths: 1024,2048 or linspace:1024:8192:8."),
        depths: str | None = typer.Option(None, help="Needle depths in percent: 0,50,100 or linspace:0:100:5."),
        protocol: str | None = typer.Option(None, help="chatqa2 (default) | gkamradt (LLMTest_NeedleInAHaystack's "
                                            "prompt, length - 200 buffer and 1-10 judge, to compare with its heatmaps)."),
        haystack: str | None = typer.Option(None, help="auto (Paul Graham's essays if installed) | paulgraham | pydoc | "
                                            "noise | a directory of .txt files."),
        template: str | None = typer.Option(None, help="question-after | question-both | question-before | custom."),
        needle: list[str] | None = typer.Option(None, help="Needle text (repeat for multiple needles)."),
        question: str | None = typer.Option(None, help="Question asked about the needle(s)."),
        answer: list[str] | None = typer.Option(None, help="Reference answer(s) (repeat)."),
        answer_budget: int | None = typer.Option(None, min=1, max=32768, help="Tokens reserved for the answer."),
        batch_size: int | None = typer.Option(None, min=1, max=1024, help="Prompts per backend call."),
        allow_extrapolation: bool | None = typer.Option(None, "--allow-extrapolation",
                                                        help="Allow lengths beyond the context window."),
        judge_model: str | None = typer.Option(None, help="Also score with an LLM judge (any backend)."),
        seed: int | None = typer.Option(None, min=0, help="Seed for passkeys."),
        out: str | None = typer.Option(None, help="Output directory (results.jsonl, summary.json, report.md)."),
        config: Path | None = typer.Option(None, "--config", "-c", help="YAML config; options override it."),
    ) -> None:
        from longkit.config import load_config
        from longkit.eval.needle_run import NeedleRunConfig, run_needles

        check_backend(backend)  # named as the option, before the config is read
        overrides = dict(model=model, backend=backend, base_url=base_url, api_key=api_key, tokenizer=tokenizer,
                         lengths=lengths,
                         depths=depths, protocol=protocol, haystack=haystack, template=template, needles=needle or None,
                         question=question, answers=answer or None, answer_budget=answer_budget,
                         batch_size=batch_size, allow_extrapolation=allow_extrapolation, judge_model=judge_model,
                         seed=seed, out=out or (None if config else f"runs/{task_name}"))
        cfg = load_config(NeedleRunConfig, config, overrides)
        from longkit.io import output_dir

        output_dir(cfg.out)  # an --out that is a file is refused before the model loads
        summary = run_needles(cfg, task_name)
        typer.echo(json.dumps({"overall": summary["overall"], "by_length": summary["by"].get("length", {}),
                               "empty_answers": summary.get("empty_answers", 0), "samples": summary.get("samples")},
                              indent=2))
        typer.echo(f"report: {Path(cfg.out) / 'report.md'}")

    command.__doc__ = doc
    return command


app.command("niah")(_needle_command(
    "niah", "Needle-in-a-Haystack over context lengths x depths (ChatQA 2's needle by default)."))
app.command("passkey")(_needle_command(
    "passkey", "Passkey retrieval: 'The pass key is {key}. Remember it. {key} is the pass key.'"))


@app.command("list")
@friendly_errors
def list_tasks(
    benchmark: str | None = typer.Option(None, help="Only this benchmark (e.g. RULER, InfiniteBench, LV-Eval)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Every registered task by its benchmark's own name, with its metric and data source."""
    from longkit.eval.fetch import sources
    from longkit.eval.tasks.registry import registry

    infos = [i for i in registry().values() if benchmark is None or benchmark.lower() in i.benchmark.lower()]
    if not infos:
        from longkit.errors import ConfigError

        known = sorted({i.benchmark for i in registry().values()})
        raise ConfigError(f"--benchmark {benchmark}: no task of that benchmark; known: {', '.join(known)}")

    def data(name: str, synthetic: bool) -> str:
        src = sources().get(name)
        if src is None:
            return "generated"
        return f"{'generated from ' if synthetic else ''}hf:{src.repo}/{src.file}"

    if as_json:
        typer.echo(json.dumps([{"name": i.name, "benchmark": i.benchmark, "metric": i.metric,
                                "generated": i.synthetic, "data": data(i.name, i.synthetic),
                                "description": i.description} for i in infos], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(infos)} tasks")
    for col in ("task", "benchmark", "metric", "data", "what it measures"):
        table.add_column(col)
    for i in infos:
        table.add_row(i.name, i.benchmark, i.metric, data(i.name, i.synthetic), i.description)
    Console(width=200).print(table)


@app.command("fetch")
@friendly_errors
def fetch(
    tasks: list[str] = typer.Argument(None, help="Task names (see `longkit eval list`), e.g. En.QA qmsum quac."),
    suite_config: Path | None = typer.Option(None, "--suite", help="Fetch every file-backed task of this suite YAML."),
) -> None:
    """Download benchmark data by task name from the Hugging Face Hub into its standard cache, ahead of a run."""
    from longkit.errors import ConfigError
    from longkit.eval.fetch import fetch as fetch_task
    from longkit.eval.fetch import sources
    from longkit.eval.tasks.registry import resolve_name

    names = [resolve_name(t) for t in tasks or []]
    if suite_config is not None:
        from longkit.eval.suite import load_suite

        names += [n for n in (resolve_name(t.name) for t in load_suite(suite_config).tasks) if n in sources()]
    if not names:
        raise ConfigError("eval fetch: name at least one task (or --suite FILE); `longkit eval list` shows them")
    for name in dict.fromkeys(names):
        src = sources().get(name)
        if src is None:
            raise ConfigError(f"eval fetch: task '{name}' is generated, it has no data to fetch")
        typer.echo(f"{name}: {fetch_task(name)}  (hf:{src.repo}/{src.file})")


@app.command("suite")
@friendly_errors
def suite(
    config: Path = typer.Argument(..., help="Suite YAML (see configs/suites/)."),
    out: str | None = typer.Option(None, help="Output directory (overrides the config's)."),
    lengths: str | None = typer.Option(None, help="Override lengths: 1024,2048 or linspace:A:B:N."),
    samples: int | None = typer.Option(None, help="Override samples per length / rows per file task."),
    workers: int | None = typer.Option(None, help="Processes to spread (model, task) jobs over."),
    shard: str | None = typer.Option(None, help="Run only shard K/N of the jobs (e.g. machine K of N)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the report after running."),
    report_only: bool = typer.Option(False, "--report-only", help="Only rebuild the report from finished runs."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Run a suite of tasks x lengths x models; write report.md, suite.json and plots."""
    from longkit.eval.suite import (
        check_models,
        load_suite,
        parse_shard,
        run_suite,
        run_suite_parallel,
        write_suite_report,
    )
    from longkit.io import output_dir

    overrides = {"out": out, "lengths": lengths, "samples": samples, "workers": workers}
    cfg = load_suite(config, overrides)
    if not report_only:
        check_models(cfg, str(config))
        output_dir(cfg.out, "--out" if out is not None else f"{config}: out")
    if report_only:
        result = write_suite_report(cfg)
    elif shard:
        result = run_suite(cfg, shard=parse_shard(shard), progress=not quiet, report=report)
    elif cfg.workers > 1:
        result = run_suite_parallel(cfg, str(config))
    else:
        result = run_suite(cfg, progress=not quiet, report=report)
    if "models" in result:
        for label, rep in result["models"].items():
            for name, e in rep["tasks"].items():
                typer.echo(f"{label} · {name}: overall {e['overall']:.3f} · by length "
                           f"{ {k: round(v, 3) for k, v in e['by_length'].items()} } · effective "
                           f"{e['effective_length']} · adaptation {e['adaptation_rate']}")
            if "ruler_average" in rep:
                typer.echo(f"{label} · RULER average: {rep['ruler_average']}")
        typer.echo(f"report: {Path(cfg.out) / 'report.md'}")
    for s in result.get("skipped", []):
        typer.echo(f"skipped {s['model']} · {s['task']}" + (f" @ {s['length']}" if s.get("length") else "") +
                   f": {s['reason']}")
    ran = any(rep.get("tasks") for rep in result.get("models", {}).values())
    if "models" in result and not ran and result.get("skipped"):
        from longkit.errors import InputError

        raise InputError(f"eval suite {config}: every task was skipped (reasons above); nothing was evaluated")
