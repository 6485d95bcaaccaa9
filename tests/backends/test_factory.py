"""The backend factory's errors and `longkit model info` (moved here from the old server tests)."""

import os
import subprocess
import sys

import pytest

from longkit.backends import make_backend
from longkit.errors import ConfigError, LongkitError

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def test_backend_factory_errors():
    with pytest.raises(ConfigError, match="unknown backend"):
        make_backend("nope")
    with pytest.raises(ConfigError, match="--base-url"):
        make_backend("openai", "m")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(LongkitError, match=r"pip install 'longkit\[vllm\]'"):
            make_backend("vllm", "smollm2-135m-instruct")


def test_model_info_cli(tiny_llama_dir):
    r = subprocess.run(
        [sys.executable, "-m", "longkit", "model", "info", str(tiny_llama_dir), "--json"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    import json

    info = json.loads(r.stdout)
    assert info["num_hidden_layers"] == 2 and info["max_position_embeddings"] == 4096
    assert info["rope"]["rope_theta"] == 10000.0 and info["chat_template"] is True
