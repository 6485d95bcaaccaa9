"""Settings and driver shared by `longkit eval niah`, `eval passkey` and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator

from longkit.backends.spec import BackendSpec
from longkit.errors import ConfigError
from longkit.eval.tasks.niah import (
    CHATQA2_ANSWER,
    CHATQA2_NEEDLE,
    CHATQA2_QUESTION,
    GKAMRADT_JUDGE_PROMPT,
    GKAMRADT_JUDGE_SYSTEM,
)
from longkit.limits import MAX_TOKENS

if TYPE_CHECKING:
    from longkit.backends.base import Backend
    from longkit.eval.judge import LLMJudge
    from longkit.eval.tasks.niah import NIAHTask


def _int_list(v: Any, what: str) -> list[int]:
    if isinstance(v, str):
        from longkit.cli_common import parse_int_list

        return parse_int_list(v, what)
    if isinstance(v, (int, float)):
        return [int(v)]
    return [int(x) for x in v]


def _default_depths() -> list[float]:
    return [0, 50, 100]  # ints, as they have always been given (they name grid cells and report columns)


class NeedleRunConfig(BackendSpec):
    """One needle run: the backend (BackendSpec's fields), grid and prompt settings (YAML keys = CLI option names)."""

    lengths: list[int] = Field(default_factory=lambda: [1024, 2048])
    depths: list[float] = Field(default_factory=_default_depths)
    # chatqa2 (longkit's, the default) | gkamradt (LLMTest_NeedleInAHaystack's)
    protocol: Literal["chatqa2", "gkamradt"] = "chatqa2"
    haystack: str | None = None  # None: the protocol's default (chatqa2: pydoc; gkamradt: auto, Paul Graham's essays)
    template: str = "question-after"
    chat: bool | None = None
    answer_budget: int | None = Field(None, ge=1)  # None: the protocol's default (chatqa2: 32; gkamradt: 300)
    needles: list[Annotated[str, Field(pattern=r"\S")]] = Field(default_factory=lambda: [CHATQA2_NEEDLE], min_length=1)
    question: str = Field(CHATQA2_QUESTION, pattern=r"\S")
    answers: list[Annotated[str, Field(pattern=r"\S")]] = Field(default_factory=lambda: [CHATQA2_ANSWER], min_length=1)
    key_digits: int = Field(5, ge=1, le=40)
    seed: int = 0
    allow_extrapolation: bool = False
    judge_model: str | None = None
    judge_backend: str = "hf"
    judge_base_url: str | None = None
    out: str = "runs/niah"

    @field_validator("lengths", mode="before")
    @classmethod
    def _lengths(cls, v: Any) -> list[int]:
        lengths = _int_list(v, "lengths")
        too_long = [n for n in lengths if n > MAX_TOKENS]  # a haystack is built in memory
        if too_long:
            raise ConfigError(f"--lengths: {too_long[0]} tokens is beyond the {MAX_TOKENS:,} a needle test can build")
        return lengths

    @field_validator("judge_backend")
    @classmethod
    def _known_judge_backend(cls, name: str) -> str:
        from longkit.backends.registry import backend_info

        try:
            return backend_info(name, "judge_backend").name
        except ConfigError as exc:  # a pydantic error, so the loader names the file, field and line
            raise ValueError(str(exc)) from None

    @field_validator("depths", mode="before")
    @classmethod
    def _depths(cls, v: Any) -> list[float]:
        return [float(x) for x in _int_list(v, "depths")] if isinstance(v, str) else v


# Record fields as the user spells them (the CLI option; YAML-only fields by their key), for the refusal line.
OPTION_NAMES = {
    "grid.lengths": "--lengths",
    "grid.depths": "--depths",
    "task.protocol": "--protocol",
    "task.haystack": "--haystack",
    "task.template": "--template",
    "task.needles": "--needle",
    "task.question": "--question",
    "task.answers": "--answer",
    "task.answer_budget": "--answer-budget",
    "task.seed": "--seed",
    "model": "--model",
    "backend": "--backend",
    "tokenizer": "--tokenizer",
    "judge": "--judge-model",
    "judge.model": "--judge-model",
    "judge.backend": "judge_backend",
    "task.chat": "chat",
    "task.key_digits": "key_digits",
    "task.name": "task",
}
# Settings a task does not read: giving them would be silently ignored, so they are refused.
_NOT_READ = {"niah": ("key_digits", "seed"), "passkey": ("needles", "question", "answers")}


def needle_record(cfg: NeedleRunConfig) -> dict[str, Any]:
    """What a needle run records besides the task's fingerprint and the backend: the grid and the tokenizer."""
    return {"grid": {"lengths": list(cfg.lengths), "depths": list(cfg.depths)}, "tokenizer": cfg.tokenizer}


def check_task_fields(cfg: NeedleRunConfig, task_name: str) -> None:
    """Refuse settings the task would ignore (passkey's needle comes from its template; niah draws no key)."""
    from longkit.eval.tasks.niah import check_passkey_options

    given = [k for k in _NOT_READ.get(task_name, ()) if k in cfg.model_fields_set]
    if task_name == "passkey":
        check_passkey_options({k: getattr(cfg, k) for k in given})
    elif given:
        raise ConfigError(f"{given[0]}: niah does not read it (it is passkey's setting); remove it")


def make_needle_task(cfg: NeedleRunConfig, task_name: str) -> NIAHTask:
    """The NIAH or passkey task cfg describes (the task fills in its protocol's own defaults)."""
    from longkit.eval.tasks.niah import NIAHConfig, NIAHTask, PasskeyTask

    check_task_fields(cfg, task_name)
    # gkamradt's needle is ChatQA 2's sentence wrapped in newlines, which the task does to any needle
    task_cfg = NIAHConfig(
        lengths=cfg.lengths,
        depths=cfg.depths,
        haystack=cfg.haystack,
        template=cfg.template,
        chat=cfg.chat,
        answer_budget=cfg.answer_budget,
        needles=list(cfg.needles),
        question=cfg.question,
        answers=list(cfg.answers),
        seed=cfg.seed,
        protocol=cfg.protocol,
    )
    return PasskeyTask(task_cfg, key_digits=cfg.key_digits) if task_name == "passkey" else NIAHTask(task_cfg)


def _judge(cfg: NeedleRunConfig) -> LLMJudge | None:
    """The LLM judge cfg asks for (gkamradt's prompt and rubric under his protocol), or None."""
    from longkit.eval.judge import LLMJudge

    if not cfg.judge_model:
        return None
    judge_backend = BackendSpec(backend=cfg.judge_backend, model=cfg.judge_model, base_url=cfg.judge_base_url).build()
    if cfg.protocol == "gkamradt":  # langchain's labeled_score_string prompt with his rubric (it explains first)
        return LLMJudge(judge_backend, max_new_tokens=512, prompt=GKAMRADT_JUDGE_PROMPT, system=GKAMRADT_JUDGE_SYSTEM)
    return LLMJudge(judge_backend)


def _fit_window(cfg: NeedleRunConfig, backend: Backend) -> None:
    """Refuse lengths beyond the window, or widen the window when extrapolation is allowed."""
    longest = max(cfg.lengths)
    if longest > backend.max_context:
        if not cfg.allow_extrapolation:
            raise ConfigError(
                f"length {longest} exceeds the model's context window of {backend.max_context} tokens "
                "(pass --allow-extrapolation to test beyond it)"
            )
        backend.max_context = longest


def run_needles(
    cfg: NeedleRunConfig, task_name: str, backend: Backend | None = None, progress: bool = True, report: bool = True
) -> dict[str, Any]:
    """Run NIAH or passkey per cfg; writes results.jsonl, summary.json, report.md and a heatmap.

    Every check (settings, haystack, window, the run record of an existing cfg.out) comes before the first
    write; a rerun of a finished run with the same settings changes nothing."""
    from longkit.eval.haystack import load_haystack
    from longkit.eval.report import write_report
    from longkit.eval.runner import refuse_other_run, run_task

    task = make_needle_task(cfg, task_name)
    load_haystack(task.haystack_name)  # fail on a bad haystack before loading a model
    out = Path(cfg.out)
    # what the record holds without a loaded model is checked before loading one; run_task checks the rest
    known = {"task": task.fingerprint(), **needle_record(cfg), **({"model": cfg.model} if cfg.model else {})}
    refuse_other_run(out, known, OPTION_NAMES)
    if backend is None:
        backend = cfg.build()  # the run's own BackendSpec fields
    _fit_window(cfg, backend)
    judge = _judge(cfg)
    before = _size(out / "results.jsonl")
    summary = run_task(
        task,
        backend,
        out,
        batch_size=cfg.batch_size,
        judge=judge,
        progress=progress,
        model_name=cfg.model or "",
        extra_record=needle_record(cfg),
        names=OPTION_NAMES,
    )
    if report and (_size(out / "results.jsonl") != before or not (out / "report.md").exists()):
        write_report(out, [summary], f"{task_name} · {cfg.model} · {cfg.protocol} protocol")
    return summary


def _size(path: Path) -> int:
    """A file's size in bytes (-1 when absent): whether a run appended anything."""
    return path.stat().st_size if path.exists() else -1
