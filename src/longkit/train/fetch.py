"""`longkit train fetch CONFIG`: everything a training config names on the Hugging Face Hub, into the local caches,
so that the run itself can go offline (HF_HUB_OFFLINE=1) - as `longkit eval fetch` does for benchmarks.

- SFT blends: each `{dataset, subset}` item is downloaded and converted to longkit's SFT JSONL once (sft/hub.py),
  with its counts of rows read, converted and dropped printed.
- CPT data: each `type: hub` source's files, in build order, as far as its `token_budget` reaches (estimated in
  bytes: data/hub_stream.py `prefetch_hub_source`); without a budget, every file of its split.
- Probes (`probe:` in a CPT or SFT config): the official data of each probe task that reads a file.

CONFIG is a recipe (cpt:/sft: sections) or a lone CPT or SFT config. Everything is checked first (a bad config
fails before any download).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longkit.config import load_yaml
from longkit.train.recipe import as_recipe


def _sections(path: str | Path) -> tuple[Any, Any]:
    """The (CPT config, SFT config) the file holds, each validated, None where absent."""
    from longkit.errors import ConfigError
    from longkit.train.config import CPTConfig, SFTConfig, load_train_config

    raw = as_recipe(load_yaml(path))
    if not isinstance(raw, dict) or not ({"cpt", "sft"} & set(raw)):
        raise ConfigError(f"{path}: not a training config (a recipe with cpt:/sft:, a CPT config or an SFT config)")
    cpt = load_train_config(CPTConfig, path) if "cpt" in raw else None
    sft = load_train_config(SFTConfig, path) if "sft" in raw else None
    return cpt, sft


def _hub_sources(cpt: Any, where: str) -> list[Any]:
    from longkit.train.cpt import cpt_data_config

    return [s for s in cpt_data_config(cpt, where).sources if s.resolved_type() == "hub"]


def _probe_tasks(*configs: Any) -> list[str]:
    """Probe tasks of the configs that read official data (generated tasks need nothing)."""
    from longkit.eval.fetch import sources
    from longkit.eval.tasks.registry import resolve_name

    names: list[str] = []
    for cfg in configs:
        probe = getattr(cfg, "probe", None) if cfg is not None else None
        for task in getattr(probe, "tasks", None) or []:
            name = resolve_name(task)
            if name in sources() and name not in names:
                names.append(name)
    return names


def fetch_training_data(path: str | Path) -> dict[str, Any]:
    """Fetch what the config names; returns {sft: [counts per subset], cpt: [files per source], probes: [...]}."""
    import typer

    from longkit.data.hub_stream import prefetch_hub_source
    from longkit.eval.fetch import fetch_many
    from longkit.sft.hub import fetch_blend_items

    where = str(path)
    cpt, sft = _sections(path)
    hub = _hub_sources(cpt, f"{where}: cpt") if cpt is not None else []
    probes = _probe_tasks(cpt, sft)
    report: dict[str, Any] = {"sft": [], "cpt": [], "probes": []}
    if sft is not None:
        report["sft"] = fetch_blend_items(sft)
    for spec in hub:
        files = prefetch_hub_source(spec, spec.token_budget)
        size = sum(p.stat().st_size for p in files)
        budget = f" for a budget of {spec.token_budget:,} tokens" if spec.token_budget else " (no budget: all)"
        typer.echo(f"{spec.path}: {len(files)} file(s), {size / 2**20:.1f} MiB{budget}", err=True)
        report["cpt"].append({"source": spec.path, "files": [str(p) for p in files], "bytes": size})
    for task, file in fetch_many(probes) if probes else []:
        typer.echo(f"probe task {task}: {file}", err=True)
        report["probes"].append({"task": task, "path": str(file)})
    if not (report["sft"] or report["cpt"] or report["probes"]):
        typer.echo(f"{where}: names no Hub dataset; nothing to fetch", err=True)
    return report
