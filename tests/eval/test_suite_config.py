"""A suite's models are the shared backend spec plus a label, built and checked through the backend registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from longkit.backends.spec import BackendSpec
from longkit.errors import ConfigError
from longkit.eval.suite import ModelEntry, SuiteConfig, cached_backend, check_models, load_suite


def test_model_entry_is_the_backend_spec_plus_a_label(tmp_path):
    assert issubclass(ModelEntry, BackendSpec)
    assert set(ModelEntry.model_fields) - set(BackendSpec.model_fields) == {"name"}
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": [
                    {
                        "name": "served",
                        "model": "m",
                        "backend": "openai",
                        "base_url": "http://127.0.0.1:1/v1",
                        "api_key": "k",
                        "batch_size": 4,
                    }
                ],
                "tasks": ["vt"],
            }
        )
    )
    entry = load_suite(path).models[0]
    assert (entry.label, entry.api_key, entry.batch_size) == ("served", "k", 4)
    assert ModelEntry(backend="openai", model=None).label == "openai"  # the server picks its model
    assert SuiteConfig.model_validate({"tasks": ["vt"]}).models[0].label == "smollm2-135m-instruct"
    path.write_text(yaml.safe_dump({"models": [{"model": "m", "bogus": 1}], "tasks": ["vt"]}))
    with pytest.raises(ConfigError, match=r"s.yaml: field 'models.0.bogus'"):
        load_suite(path)


def test_backends_are_built_from_the_spec_through_the_registry(tmp_path, monkeypatch):
    from dataclasses import replace

    import longkit.backends.registry as registry

    built: list[tuple[BackendSpec, dict[str, Any]]] = []

    class Stub:
        name, max_context, tokenizer = "stub", 1024, None

        def generate(self, requests: Any) -> list[Any]:
            return []

    def build(spec: BackendSpec, **extra: Any) -> Stub:
        built.append((spec, extra))
        return Stub()

    monkeypatch.setitem(registry._discover(), "hf", replace(registry.backend_info("hf"), factory=build))
    entry = ModelEntry(name="x", model="m", backend="hf", prefix_reuse=True, max_context=1024)
    backend = cached_backend(entry, None, tmp_path)
    assert built == [(entry, {})] and backend.inner.name == "stub" and backend.max_context == 1024
    assert backend.log.path == tmp_path / "cache" / "x.jsonl"


def test_check_models_checks_the_backends_that_load_weights_here(tmp_path, monkeypatch):
    import longkit.backends.registry as registry

    missing = str(tmp_path / "no-such-model")
    cfg = SuiteConfig.model_validate(
        {
            "tasks": ["vt"],
            "models": [
                {"name": "served", "model": missing, "backend": "openai", "base_url": "http://127.0.0.1:1/v1"},
                {"name": "local", "model": missing},
            ],
        }
    )  # one label each: two models never share a results directory
    with pytest.raises(ConfigError, match=r"^s.yaml: field 'models\[1\].model': "):
        check_models(cfg, "s.yaml")  # openai serves the model elsewhere: only the hf entry is looked up
    check_models(cfg, "s.yaml", skip={"local"})  # a backend passed in by the caller is not looked up
    monkeypatch.setattr(registry, "names_with", lambda capability: ())
    check_models(cfg, "s.yaml")  # the registry, not a list of names, says which backends are local


def test_repo_suite_yaml_keys_still_load():
    root = Path(__file__).resolve().parents[2] / "configs" / "suites"
    for p in root.glob("*.yaml"):
        for m in load_suite(p).models:
            assert isinstance(m, BackendSpec) and m.label
