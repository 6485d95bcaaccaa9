"""`longkit demo`: the main job on the bundled default model, offline — NIAH and passkey over 1K-4K."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from longkit.cli_common import friendly_errors, parse_int_list
from longkit.models.defaults import DEFAULT_GENERATOR

DEMO_NOTES = (
    "Needle-in-a-Haystack (ChatQA 2's San Francisco needle in Python's language reference) and passkey "
    "retrieval (in RULER's repeated noise sentences) on the bundled model, greedy decoding, question after "
    "the haystack. NIAH's score is the fraction of the answer's keywords recalled; passkey's is 1 when the "
    "first number in the answer is the key. These are the 'before' figures that longkit's long-context "
    "recipe exists to improve."
)


def run_demo(out: Path, model: str, lengths: list[int], depths: list[float], progress: bool = True) -> dict[str, Any]:
    """Run NIAH and passkey with one loaded model and write a combined report under out."""
    from longkit.backends.spec import BackendSpec
    from longkit.eval.needle_run import NeedleRunConfig, run_needles
    from longkit.eval.report import write_report
    from longkit.io import write_json

    t0 = time.perf_counter()
    backend = BackendSpec(backend="hf", model=model).build()
    load_s = time.perf_counter() - t0
    summaries = []
    for task, haystack in (("niah", "pydoc"), ("passkey", "noise")):
        cfg = NeedleRunConfig(
            model=model,
            lengths=lengths,
            depths=depths,
            haystack=haystack,
            answer_budget=32 if task == "niah" else 16,
            out=str(out / task),
        )
        summaries.append(run_needles(cfg, task, backend=backend, progress=progress, report=False))
    write_report(out, summaries, f"longkit demo · {model}", notes=DEMO_NOTES)
    total = time.perf_counter() - t0
    result = {
        "model": model,
        "lengths": lengths,
        "depths": depths,
        "model_load_s": round(load_s, 1),
        "wall_s": round(total, 1),
        "scores": {
            s["task"]: {
                "overall": s["overall"]["score"],
                "by_length": {k: v["score"] for k, v in s["by"]["length"].items()},
            }
            for s in summaries
        },
    }
    write_json(out / "demo.json", result)
    return result


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the root app."""

    @app.command("demo")
    @friendly_errors
    def demo(
        out: Path = typer.Option(Path("runs/demo"), help="Output directory."),
        model: str = typer.Option(DEFAULT_GENERATOR, help="Model (default: the bundled SmolLM2-135M)."),
        lengths: str = typer.Option("1024,2048,4096", help="Context lengths in tokens."),
        depths: str = typer.Option("0,25,50,75,100", help="Needle depths in percent."),
    ) -> None:
        """NIAH + passkey on the bundled model, offline; writes report.md and heatmaps (resumable)."""
        from longkit.errors import ConfigError
        from longkit.io import output_dir
        from longkit.models.load import resolve

        lens = parse_int_list(lengths, "--lengths")
        deps = [float(d) for d in parse_int_list(depths, "--depths")]
        if not lens or any(n < 64 for n in lens):
            raise ConfigError(f"--lengths: expected context lengths of at least 64 tokens, got '{lengths}'")
        if not deps or any(not 0 <= d <= 100 for d in deps):
            raise ConfigError(f"--depths: expected percentages in 0..100, got '{depths}'")
        resolve(model)  # a wrong name fails now, not after the output folder is made
        output_dir(out, "--out")
        result = run_demo(out, model, lens, deps)
        typer.echo(json.dumps(result["scores"], indent=2))
        typer.echo(f"report: {out / 'report.md'}  (wall time {result['wall_s']} s)")
