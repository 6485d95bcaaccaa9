"""Every task longkit can run, by its benchmark's own name, and how to build it from suite settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longkit.errors import ConfigError
from longkit.eval.tasks.base import Task


@dataclass(frozen=True)
class TaskInfo:
    """A registered task: its name, benchmark, what it measures and its metric."""

    name: str
    benchmark: str
    description: str
    metric: str
    synthetic: bool  # generated at any length (True) or read from the benchmark's files (False)
    factory: Callable[[dict[str, Any]], Task]


def _official(s: dict[str, Any], name: str, key: str, candidates: list[str], what: str) -> Path:
    """The task's file: the configured path (or data.<key> directory), else the official data fetched by name."""
    given = s.get("path") or s.get("data", {}).get(key)
    if given:
        from longkit.eval.tasks.files import resolve_file

        return resolve_file(given, candidates, what)
    from longkit.eval.fetch import fetch

    return fetch(name)


def _ruler(name: str) -> Callable[[dict[str, Any]], Task]:
    def make(s: dict[str, Any]) -> Task:
        from longkit.eval.tasks.ruler import RulerConfig, RulerTask

        data = s.get("data", {})
        squad, hotpotqa = s.get("squad", data.get("squad")), s.get("hotpotqa", data.get("hotpotqa"))
        if name == "qa_1" and not squad or name == "qa_2" and not hotpotqa:
            from longkit.eval.fetch import fetch

            fetched = str(fetch(name))  # SQuAD v2 / HotpotQA by name when no local copy is configured
            squad, hotpotqa = (fetched, hotpotqa) if name == "qa_1" else (squad, fetched)
        cfg = RulerConfig(lengths=list(s["lengths"]), num_samples=int(s.get("samples", 1)), seed=int(s.get("seed", 42)),
                          essay=str(s.get("essay", data.get("essay", "auto"))),
                          squad=squad, hotpotqa=hotpotqa,
                          chat=s.get("chat"), fewshot=bool(s.get("fewshot", True)),
                          overrides={name: s["options"]} if s.get("options") else {})
        return RulerTask(name, cfg)
    return make


def accepted_options(name: str) -> set[str]:
    """The `options:` keys a task reads (suite YAML); anything else is a typo to refuse."""
    info = registry()[resolve_name(name)]
    if info.name in ("niah", "passkey"):
        import dataclasses

        from longkit.eval.tasks.niah import NIAHConfig

        return {f.name for f in dataclasses.fields(NIAHConfig)} - {"lengths", "seed", "chat"}
    if info.benchmark == "RULER":
        from longkit.eval.tasks.ruler import RULER_TASKS

        return ({k for spec in RULER_TASKS.values() for k in spec} - {"task"}) | {
            "num_needle_k", "num_needle_v", "num_needle_q", "tokens_to_generate"}
    if info.benchmark == "ChatRAG Bench":
        return {"num_ctx", "index"}
    return set()


def check_options(name: str, options: dict[str, Any] | None) -> None:
    """Refuse task options the task does not read (a typo must not be silently ignored)."""
    accepted = accepted_options(name)
    unknown = sorted(set(options or {}) - accepted)
    if unknown:
        known = ", ".join(sorted(accepted)) if accepted else "none"
        raise ConfigError(f"task {name}: options: unknown option '{unknown[0]}' (this task accepts: {known})")


def _needle(name: str) -> Callable[[dict[str, Any]], Task]:
    def make(s: dict[str, Any]) -> Task:
        from longkit.eval.tasks.niah import NIAHConfig, NIAHTask, PasskeyTask

        opts = dict(s.get("options", {}))
        cfg = NIAHConfig(lengths=list(s["lengths"]), depths=[float(d) for d in opts.pop("depths", [0, 25, 50, 75, 100])],
                         seed=int(s.get("seed", 0)), chat=s.get("chat"), **opts)
        return PasskeyTask(cfg) if name == "passkey" else NIAHTask(cfg)
    return make


def _inf_retrieval(kind: str) -> Callable[[dict[str, Any]], Task]:
    def make(s: dict[str, Any]) -> Task:
        from longkit.eval.tasks.infinitebench import InfiniteRetrievalTask, RetrievalConfig

        return InfiniteRetrievalTask(kind, RetrievalConfig(lengths=list(s["lengths"]), num_samples=int(s.get("samples", 5)),
                                                           seed=int(s.get("seed", 42)), chat=s.get("chat")))
    return make


def _file_kwargs(s: dict[str, Any], budget: int | None = None) -> dict[str, Any]:
    # budget: the benchmark's official prompt truncation (tokens); a configured 0 means "fit the window only"
    b = s.get("budget")
    return {"limit": s.get("samples"), "max_length": s.get("max_length"), "chat": s.get("chat"),
            "budget": budget if b is None else (int(b) or None)}


def _inf_file(name: str) -> Callable[[dict[str, Any]], Task]:
    def make(s: dict[str, Any]) -> Task:
        from longkit.eval.tasks.infinitebench import TRUNCATE_LEN, InfiniteFileTask

        path = _official(s, name, "infinitebench", [f"{InfiniteFileTask.FILES[name]}.jsonl"], f"InfiniteBench {name}")
        return InfiniteFileTask(name, path, **_file_kwargs(s, TRUNCATE_LEN))
    return make


def _chatqa2(name: str, source: str) -> Callable[[dict[str, Any]], Task]:
    def make(s: dict[str, Any]) -> Task:
        from longkit.eval.tasks import longbench as lb

        # LongBench's official budget for 32K models (config/model2maxlen.json: 31500); SCROLLS defines none
        kw = _file_kwargs(s, None if source == "scrolls" else lb.LONGBENCH_32K_BUDGET)
        if kw["max_length"] is None:
            kw["max_length"] = 32768  # ChatQA 2 evaluates this set at 32K
        if source == "scrolls":
            path = _official(s, name, "scrolls", lb.scrolls_candidates(name), f"SCROLLS {name}")
            return lb.ScrollsTask(name, path, **kw)
        path = _official(s, name, "longbench", lb.longbench_candidates(name), f"LongBench {name}")
        return lb.LongBenchTask(name, path, **kw)
    return make


def _lveval(name: str) -> Callable[[dict[str, Any]], Task]:
    def make(s: dict[str, Any]) -> Task:
        from longkit.eval.tasks.lveval import LVEvalTask

        root = s.get("path") or s.get("data", {}).get("lveval")
        if not root:
            from longkit.eval.fetch import fetch

            root = fetch(name)
        return LVEvalTask(name, root, levels=s.get("levels"),
                          limit=s.get("samples"), max_length=s.get("max_length"), chat=s.get("chat"))
    return make


def _chatrag(name: str) -> Callable[[dict[str, Any]], Task]:
    def make(s: dict[str, Any]) -> Task:
        from longkit.eval.tasks.chatrag import ChatRAGTask, file_candidates

        path = _official(s, name, "chatrag", file_candidates(name), f"ChatRAG Bench {name}")
        opts = s.get("options", {})
        return ChatRAGTask(name, path, num_ctx=opts.get("num_ctx"), max_length=int(s.get("max_length") or 4096),
                           limit=s.get("samples"), index=opts.get("index"))
    return make


def _build_registry() -> dict[str, TaskInfo]:
    from longkit.eval.tasks.chatrag import DATASETS as CHATRAG
    from longkit.eval.tasks.longbench import CHATQA2_32K
    from longkit.eval.tasks.lveval import PROMPTS as LVEVAL
    from longkit.eval.tasks.ruler import RULER_TASKS

    reg: dict[str, TaskInfo] = {}

    def add(name: str, bench: str, desc: str, metric: str, synthetic: bool, factory: Callable[[dict[str, Any]], Task]) -> None:
        reg[name] = TaskInfo(name, bench, desc, metric, synthetic, factory)

    add("niah", "ChatQA 2", "Needle-in-a-Haystack over lengths x depths", "keyword recall", True, _needle("niah"))
    add("passkey", "ChatQA 2", "passkey retrieval over lengths x depths", "first integer = key", True, _needle("passkey"))
    kinds = {"niah": "needle retrieval", "variable_tracking": "multi-hop variable tracing",
             "common_words_extraction": "common words aggregation",
             "freq_words_extraction": "frequent words aggregation", "qa": "QA among distractor documents"}
    for name, st in RULER_TASKS.items():
        hay = f" ({st['type_haystack']} haystack)" if "type_haystack" in st else ""
        add(name, "RULER", kinds[st["task"]] + hay, "string_match_part" if st["task"] == "qa" else "string_match_all",
            True, _ruler(name))
    add("Retrieve.PassKey", "InfiniteBench", "passkey in noise (generated)", "first integer", True,
        _inf_retrieval("passkey"))
    add("number_string", "InfiniteBench", "10-digit number in noise (Retrieve.Number, generated)", "first integer", True,
        _inf_retrieval("number_string"))
    add("kv_retrieval", "InfiniteBench", "UUID key-value lookup in JSON (Retrieve.KV, generated)", "value in words", True,
        _inf_retrieval("kv_retrieval"))
    for name, desc, metric in [("En.QA", "free-form QA over novels", "token F1"),
                               ("En.MC", "multiple choice over novels", "choice accuracy"),
                               ("En.Sum", "novel summarisation", "ROUGE-Lsum"),
                               ("En.Dia", "masked speaker in scripts", "name accuracy")]:
        add(name, "InfiniteBench", desc, metric, False, _inf_file(name))
    metrics = {"qmsum": "ROUGE-1/2/L geometric mean", "qasper": "token F1", "quality": "exact match",
               "musique": "token F1", "hotpotqa": "token F1", "multifieldqa_en": "token F1"}
    for name, source in CHATQA2_32K.items():
        src = "SCROLLS" if source == "scrolls" else "LongBench"
        add(name, f"ChatQA 2 32K ({src})", f"{name} from {src}", metrics[name], False, _chatqa2(name, source))
    for name in LVEVAL:
        add(name, "LV-Eval", f"{name} at 16k-256k", "token F1" if name == "factrecall_en" else "keyword-gated F1",
            False, _lveval(name))
    for name in CHATRAG:
        add(name, "ChatRAG Bench", f"conversational QA ({name})", "exact match" if name == "convfinqa" else "F1",
            False, _chatrag(name))
    return reg


_REGISTRY: dict[str, TaskInfo] | None = None


def registry() -> dict[str, TaskInfo]:
    """All registered tasks by name."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _build_registry()
    return _REGISTRY


ALIASES = {"Retrieve.Number": "number_string", "Retrieve.KV": "kv_retrieval", "longbook_qa_eng": "En.QA",
           "longbook_choice_eng": "En.MC", "longbook_sum_eng": "En.Sum", "longdialogue_qa_eng": "En.Dia"}


def resolve_name(name: str) -> str:
    """The registered name for a name or alias; unknown names list the known ones by benchmark."""
    reg = registry()
    name = ALIASES.get(name, name)
    if name in reg:
        return name
    by: dict[str, list[str]] = {}
    for info in reg.values():
        by.setdefault(info.benchmark, []).append(info.name)
    known = "; ".join(f"{b}: {', '.join(n)}" for b, n in by.items())
    raise ConfigError(f"unknown task '{name}' (known tasks: {known})")


def make_task(name: str, settings: dict[str, Any]) -> Task:
    """Build a registered task from suite settings (lengths, samples, seed, data paths, options)."""
    check_options(name, settings.get("options"))
    return registry()[resolve_name(name)].factory(settings)
