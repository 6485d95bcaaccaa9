"""`longkit eval ...` sub-commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from longkit.cli_backend import API_KEY, BACKEND_HELP, BASE_URL, MODEL_HELP, TOKENIZER, check_backend
from longkit.cli_common import friendly_errors
from longkit.models.defaults import DEFAULT_GENERATOR

if TYPE_CHECKING:
    from longkit.eval.tasks.spec import TaskSpec

app = typer.Typer(no_args_is_help=True)


# The defaults NeedleRunConfig gives an option left unset (the options themselves default to None, so a --config
# file can set them); shown in --help. tests/eval/test_cli_options.py checks them against NeedleRunConfig.
NEEDLE_DEFAULTS = {
    "lengths": "1024,2048",
    "depths": "0,50,100",
    "protocol": "chatqa2",
    "template": "question-after",
    "haystack": "pydoc (chatqa2) | auto (gkamradt)",
    "answer_budget": "32 (chatqa2) | 300 (gkamradt)",
    "batch_size": "1",
    "seed": "0",
    "model": DEFAULT_GENERATOR,
    "backend": "hf",
}

MODEL = typer.Option(None, "--model", "-m", help=MODEL_HELP, show_default=NEEDLE_DEFAULTS["model"])
BACKEND = typer.Option(None, "--backend", help=BACKEND_HELP, show_default=NEEDLE_DEFAULTS["backend"])
LENGTHS = typer.Option(
    None, help="Context lengths: 1024,2048 or linspace:1024:8192:8.", show_default=NEEDLE_DEFAULTS["lengths"]
)
DEPTHS = typer.Option(
    None, help="Needle depths in percent: 0,50,100 or linspace:0:100:5.", show_default=NEEDLE_DEFAULTS["depths"]
)
HAYSTACK_HELP = "auto (Paul Graham's essays if installed) | paulgraham | pydoc | noise | a directory of .txt files."
HAYSTACK = typer.Option(None, help=HAYSTACK_HELP, show_default=NEEDLE_DEFAULTS["haystack"])
TEMPLATE = typer.Option(
    None, help="question-after | question-both | question-before | custom.", show_default=NEEDLE_DEFAULTS["template"]
)
BUDGET = typer.Option(
    None, min=1, max=32768, help="Tokens reserved for the answer.", show_default=NEEDLE_DEFAULTS["answer_budget"]
)
# passkey runs ChatQA 2's protocol only, so only that protocol's defaults apply
PASSKEY_HAYSTACK = typer.Option(None, help=HAYSTACK_HELP, show_default="pydoc")
PASSKEY_BUDGET = typer.Option(None, min=1, max=32768, help="Tokens reserved for the answer.", show_default="32")
BATCH = typer.Option(
    None, min=1, max=1024, help="Prompts per backend call.", show_default=NEEDLE_DEFAULTS["batch_size"]
)
EXTRAPOLATE = typer.Option(
    None, "--allow-extrapolation", help="Allow lengths beyond the context window.", show_default="off"
)
JUDGE = typer.Option(None, help="Also score with an LLM judge (any backend).")
CONFIG = typer.Option(None, "--config", "-c", help="YAML config; options override it.")


def _out_option(task_name: str) -> Any:
    return typer.Option(
        None,
        help="Output directory (results.jsonl, summary.json, report.md, run.json); a rerun "
        "resumes it, other settings are refused.",
        show_default=f"runs/{task_name}",
    )


def _run_needle_command(task_name: str, config: Path | None, options: dict[str, Any]) -> None:
    """Load the settings (YAML, then options), check --out without creating it, run, print the summary."""
    from longkit.cli_common import check_output_dir
    from longkit.config import load_config
    from longkit.eval.needle_run import NeedleRunConfig, run_needles

    check_backend(options.get("backend"))  # named as the option, before the config is read
    if not options.get("out") and not config:
        options["out"] = f"runs/{task_name}"
    cfg = load_config(NeedleRunConfig, config, options)
    check_output_dir(cfg.out)  # created only once the first result is in
    summary = run_needles(cfg, task_name)
    typer.echo(
        json.dumps(
            {
                "overall": summary["overall"],
                "by_length": summary["by"].get("length", {}),
                "empty_answers": summary.get("empty_answers", 0),
                "samples": summary.get("samples"),
            },
            indent=2,
        )
    )
    typer.echo(f"report: {Path(cfg.out) / 'report.md'}")


@app.command("niah")
@friendly_errors
def niah(
    model: str | None = MODEL,
    backend: str | None = BACKEND,
    base_url: str | None = BASE_URL,
    api_key: str | None = API_KEY,
    tokenizer: str | None = TOKENIZER,
    lengths: str | None = LENGTHS,
    depths: str | None = DEPTHS,
    protocol: str | None = typer.Option(
        None,
        help="chatqa2 | gkamradt (LLMTest_NeedleInAHaystack's prompt, "
        "length - 200 buffer and 1-10 judge, to compare with its heatmaps).",
        show_default=NEEDLE_DEFAULTS["protocol"],
    ),
    haystack: str | None = HAYSTACK,
    template: str | None = TEMPLATE,
    needle: list[str] | None = typer.Option(
        None, help="Needle text (repeat for multiple needles).", show_default="ChatQA 2's San Francisco sentence"
    ),
    question: str | None = typer.Option(
        None, help="Question asked about the needle(s).", show_default="What is the best thing to do in San Francisco?"
    ),
    answer: list[str] | None = typer.Option(
        None, help="Reference answer(s) (repeat).", show_default="eat a sandwich and sit in Dolores Park on a sunny day"
    ),
    answer_budget: int | None = BUDGET,
    batch_size: int | None = BATCH,
    allow_extrapolation: bool | None = EXTRAPOLATE,
    judge_model: str | None = JUDGE,
    out: str | None = _out_option("niah"),
    config: Path | None = CONFIG,
) -> None:
    """Needle-in-a-Haystack over context lengths x depths (ChatQA 2's needle by default)."""
    _run_needle_command(
        "niah",
        config,
        dict(
            model=model,
            backend=backend,
            base_url=base_url,
            api_key=api_key,
            tokenizer=tokenizer,
            lengths=lengths,
            depths=depths,
            protocol=protocol,
            haystack=haystack,
            template=template,
            needles=needle or None,
            question=question,
            answers=answer or None,
            answer_budget=answer_budget,
            batch_size=batch_size,
            allow_extrapolation=allow_extrapolation,
            judge_model=judge_model,
            out=out,
        ),
    )


@app.command("passkey")
@friendly_errors
def passkey(
    model: str | None = MODEL,
    backend: str | None = BACKEND,
    base_url: str | None = BASE_URL,
    api_key: str | None = API_KEY,
    tokenizer: str | None = TOKENIZER,
    lengths: str | None = LENGTHS,
    depths: str | None = DEPTHS,
    haystack: str | None = PASSKEY_HAYSTACK,
    template: str | None = TEMPLATE,
    answer_budget: int | None = PASSKEY_BUDGET,
    batch_size: int | None = BATCH,
    allow_extrapolation: bool | None = EXTRAPOLATE,
    judge_model: str | None = JUDGE,
    seed: int | None = typer.Option(
        None, min=0, help="Seed the passkeys are drawn from.", show_default=NEEDLE_DEFAULTS["seed"]
    ),
    out: str | None = _out_option("passkey"),
    config: Path | None = CONFIG,
) -> None:
    """Passkey retrieval (ChatQA 2's protocol): 'The pass key is {key}. Remember it. {key} is the pass key.'

    The needle, question and answer come from that template and the drawn key, so they are not options."""
    _run_needle_command(
        "passkey",
        config,
        dict(
            model=model,
            backend=backend,
            base_url=base_url,
            api_key=api_key,
            tokenizer=tokenizer,
            lengths=lengths,
            depths=depths,
            haystack=haystack,
            template=template,
            answer_budget=answer_budget,
            batch_size=batch_size,
            allow_extrapolation=allow_extrapolation,
            judge_model=judge_model,
            seed=seed,
            out=out,
        ),
    )


def _option_error(err: Any) -> str:
    """One pydantic error as the option the user typed: `--max-documents: Input should be ...`."""
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not err["loc"]:  # a check across options names them itself
        return msg
    return f"--{str(err['loc'][0]).replace('_', '-')}: {msg}"


@app.command("ppl")
@friendly_errors
def ppl(
    model: str = typer.Option(DEFAULT_GENERATOR, "--model", "-m", help=MODEL_HELP),
    backend: str = typer.Option("hf", "--backend", help=BACKEND_HELP),
    base_url: str | None = BASE_URL,
    api_key: str | None = API_KEY,
    tokenizer: str | None = TOKENIZER,
    data: str = typer.Option(
        "essays",
        help="essays (Paul Graham's) | pg19 | proof-pile | a .txt/.md/.jsonl[.gz]/"
        ".parquet file or a directory of them (rows need a 'text' field).",
    ),
    lengths: str = typer.Option("1024,2048", help="Window lengths in tokens: 1024,2048 or linspace:1024:8192:4."),
    protocol: str = typer.Option("windows", help="windows (non-overlapping) | sliding (stride --stride)."),
    stride: int | None = typer.Option(None, help="Sliding protocol: tokens a window advances (default 256)."),
    bucket: int = typer.Option(256, help="Position-bucket width of the loss-by-position curve."),
    max_documents: int | None = typer.Option(None, help="Only the first N documents."),
    windows_per_document: int | None = typer.Option(None, help="At most N windows of each document per length."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the 95% intervals (over documents)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    batch_size: int = typer.Option(1, help="Windows per scoring call."),
    allow_extrapolation: bool = typer.Option(
        False, "--allow-extrapolation", help="Allow lengths beyond the model's window."
    ),
    out: Path = typer.Option(
        Path("runs/ppl"),
        help="Output directory (results.jsonl, summary.json, report.md, "
        "plots); a rerun resumes it, other settings are refused.",
    ),
) -> None:
    """Perplexity by context length and by position in the window (what context-extension papers report), with
    95% bootstrap intervals over documents. Works on base models: nothing is generated."""
    from pydantic import ValidationError

    from longkit.cli_backend import backend_spec
    from longkit.cli_common import check_output_dir, parse_int_list
    from longkit.errors import ConfigError
    from longkit.eval.ppl import PplSettings, run_ppl
    from longkit.eval.ppl_report import write_ppl_report

    raw = {
        "data": data,
        "lengths": parse_int_list(lengths, "--lengths"),
        "protocol": protocol,
        "stride": stride,
        "bucket": bucket,
        "max_documents": max_documents,
        "windows_per_document": windows_per_document,
        "bootstrap": bootstrap,
        "seed": seed,
    }
    try:
        settings = PplSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("; ".join(_option_error(e) for e in exc.errors())) from None
    if batch_size < 1:
        raise ConfigError(f"--batch-size: expected at least 1, got {batch_size}")
    check_output_dir(out)
    from longkit.backends.registry import SCORE, require

    require(backend, SCORE, "eval ppl")  # before the model loads
    from longkit.eval.ppl import load_documents

    load_documents(settings.data)  # a missing file or corpus is reported before the model loads
    spec = backend_spec(backend, model, base_url, api_key, tokenizer, batch_size=batch_size)
    summary = run_ppl(
        settings, spec.build(), out, model_name=model, batch_size=batch_size, allow_extrapolation=allow_extrapolation
    )
    report = write_ppl_report(out, summary)
    for length, e in summary["by_length"].items():
        if "ppl" in e:
            typer.echo(
                f"L={length}: loss {e['loss']:.4f} ({e['loss_ci'][0]:.4f}-{e['loss_ci'][1]:.4f}) · perplexity "
                f"{e['ppl']:.3f} ({e['ppl_ci'][0]:.3f}-{e['ppl_ci'][1]:.3f}) · {e['documents']} documents, "
                f"{e['tokens']} tokens" + (f" · {e['too_short']} too short" if e["too_short"] else "")
            )
        else:
            typer.echo(f"L={length}: no document is this long ({e['too_short']} too short)")
    typer.echo(f"report: {report}")


@app.command("compare")
@friendly_errors
def compare(
    run_a: Path = typer.Argument(..., help="A: an eval --out, or a suite's model directory (<suite out>/<model>)."),
    run_b: Path = typer.Argument(..., help="B: the same, for the other model or checkpoint."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples of the paired differences."),
    seed: int = typer.Option(0, help="Seed of the bootstrap and the sign-flip test."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Paired difference B - A per task and length, on the same samples, with a 95% interval and a paired test.

    Runs of other tasks, task settings or samples are refused: their difference would not be paired."""
    from longkit.eval.compare import compare_runs, compare_table

    result = compare_runs(run_a, run_b, bootstrap, seed)
    typer.echo(json.dumps(result, indent=2) if as_json else "\n".join(compare_table(result)))


@app.command("list")
@friendly_errors
def list_tasks(
    benchmark: str | None = typer.Option(None, help="Only this benchmark (e.g. RULER, InfiniteBench, LV-Eval)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Every registered task by its benchmark's own name, as its module declares it: metric, aggregation and official
    scale, answer budget, data source and the official code it follows."""
    from longkit.eval.tasks.registry import registry

    infos = [i for i in registry().values() if benchmark is None or benchmark.lower() in i.benchmark.lower()]
    if not infos:
        from longkit.errors import ConfigError

        known = sorted({i.benchmark for i in registry().values()})
        raise ConfigError(f"--benchmark {benchmark}: no task of that benchmark; known: {', '.join(known)}")
    if as_json:
        typer.echo(json.dumps([task_declaration(i) for i in infos], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(infos)} tasks")
    for col in ("task", "benchmark", "metric", "scale", "budget", "data", "official code", "what it measures"):
        table.add_column(col)
    for i in infos:
        budget = str(i.answer_budget) if i.answer_budget is not None else "per sample"
        table.add_row(
            i.name,
            i.benchmark,
            i.metric.name,
            i.metric.scale_label,
            budget,
            _data_text(i),
            i.official.describe(),
            i.description,
        )
    Console(width=240).print(table)


def _data_text(spec: TaskSpec) -> str:
    """Where a task's samples come from, as `eval list` prints it."""
    if spec.data is None:
        return "generated"
    return f"{'generated from ' if spec.synthetic else ''}hf:{spec.data.repo}/{spec.data.file}"


def task_declaration(spec: TaskSpec) -> dict[str, Any]:
    """A task's declaration as `eval list --json` prints it."""
    source = (
        None
        if spec.data is None
        else {
            "repo": spec.data.repo,
            "file": spec.data.file,
            "revision": spec.data.revision,
            "member": spec.data.member,
        }
    )
    return {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "benchmark": spec.benchmark,
        "description": spec.description,
        "generated": spec.synthetic,
        "data": _data_text(spec),
        "data_source": source,
        "official": {"repo": spec.official.repo, "path": spec.official.path, "commit": spec.official.commit},
        "metric": spec.metric.name,
        "aggregation": spec.metric.aggregation,
        "scale": spec.metric.scale_label,
        "answer_budget": spec.answer_budget,
        "average_group": spec.average_group,
        "options": sorted(spec.options.model_fields),
    }


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
    out: str | None = typer.Option(
        None,
        help="Output directory (overrides the config's out); a rerun resumes it, other models or settings are refused.",
        show_default="the config's out",
    ),
    lengths: str | None = typer.Option(
        None, help="Override lengths: 1024,2048 or linspace:START:STOP:N.", show_default="the config's lengths"
    ),
    samples: int | None = typer.Option(
        None, min=1, help="Override samples per length / rows per file task.", show_default="the config's samples"
    ),
    workers: int | None = typer.Option(
        None, min=1, help="Processes to spread (model, task) jobs over.", show_default="the config's workers (1)"
    ),
    shard: str | None = typer.Option(
        None, help="Run only shard K/N of the jobs (e.g. machine K of N).", show_default="all jobs"
    ),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the report after running."),
    report_only: bool = typer.Option(
        False, "--report-only", help="Only rebuild the report from finished runs.", show_default="off"
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars.", show_default="off"),
) -> None:
    """Run a suite of tasks x lengths x models; write report.md, suite.json and plots."""
    from longkit.cli_common import check_output_dir
    from longkit.errors import located
    from longkit.eval.suite import check_suite, load_suite, parse_shard, rebuild_report, run_suite, run_suite_parallel

    cfg = load_suite(config, {"out": out, "lengths": lengths, "samples": samples, "workers": workers})
    if report_only:
        result = rebuild_report(cfg, str(config))
    else:
        parts = parse_shard(shard) if shard else None
        check_suite(cfg, str(config))  # models, tasks and the record of an existing out: before any write
        check_output_dir(cfg.out, "--out" if out is not None else f"{config}: out")
        with located(f"eval suite {config}"):  # the one line when every task was skipped
            if parts:
                result = run_suite(cfg, shard=parts, progress=not quiet, report=report)
            elif cfg.workers > 1:
                result = run_suite_parallel(cfg, str(config))
            else:
                result = run_suite(cfg, progress=not quiet, report=report)
    _print_suite(result, Path(cfg.out))


def _print_suite(result: dict[str, Any], out: Path) -> None:
    """Each model's per-task scores, then the report's path and what was skipped."""
    from longkit.eval.suite.report import averages

    if result.get("complete"):
        typer.echo(f"already complete: {out} holds every result of this suite; nothing was rerun or rewritten")
    for label, rep in result.get("models", {}).items():
        for name, e in rep["tasks"].items():
            typer.echo(
                f"{label} · {name}: overall {e['overall']:.3f} · by length "
                f"{ {k: round(v, 3) for k, v in e['by_length'].items()} } · effective "
                f"{e['effective_length']} · adaptation {e['adaptation_rate']}"
            )
        for group, avg in averages(rep).items():
            typer.echo(f"{label} · {group} average: {avg}")
    if "models" in result:
        typer.echo(f"report: {out / 'report.md'}")
    for s in result.get("skipped", []):
        typer.echo(
            f"skipped {s['model']} · {s['task']}"
            + (f" @ {s['length']}" if s.get("length") else "")
            + f": {s['reason']}"
        )
