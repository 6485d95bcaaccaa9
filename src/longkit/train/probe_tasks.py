"""Which tasks a training probe may run (`probe.tasks` in a CPT or SFT config), checked when the config loads.

Kept apart from longkit.train.probe, which runs the probes and reads the config's types: the config's validator
calls this, so it must not import the config back.
"""

from __future__ import annotations

from longkit.errors import ConfigError, InputError


def check_tasks(names: list[str]) -> list[str]:
    """The registered names of the probe's tasks; refuses unknown ones, tasks that do not generate, and tasks
    whose data the Hub cache lacks (a probe never downloads in the middle of a run)."""
    from longkit.eval.tasks.registry import registry, resolve_name

    out: list[str] = []
    for given in names:
        name = resolve_name(given)
        spec = registry()[name]
        if spec.run is not None:
            raise ConfigError(
                f"task '{name}' scores text instead of generating; probes measure perplexity with `ppl: true`"
            )
        if spec.data is not None:
            _check_cached(name)
        if name not in out:
            out.append(name)
    return out


def _check_cached(name: str) -> None:
    """Refuse a file-backed task whose data is not already in the Hub cache (the fetch module's own check)."""
    from longkit.eval.fetch import fetch

    try:
        fetch(name, allow_download=False)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
