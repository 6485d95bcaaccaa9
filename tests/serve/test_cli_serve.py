import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from longkit.backends import make_backend
from longkit.errors import ConfigError, LongkitError


def test_serve_command_serves_and_checks_the_key(tiny_llama_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LONGKIT_API_KEY": "k1"}
    proc = subprocess.Popen([sys.executable, "-m", "longkit", "serve", "--model", str(tiny_llama_dir),
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.time() + 120
        while True:
            try:
                r = httpx.get(url + "/models", headers={"Authorization": "Bearer k1"}, timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.time() < deadline
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["data"][0]["id"] == str(tiny_llama_dir)
        assert httpx.get(url + "/models", timeout=5).status_code == 401
        chat = httpx.post(url + "/chat/completions", headers={"Authorization": "Bearer k1"}, timeout=60,
                          json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["role"] == "assistant"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
    r = subprocess.run([sys.executable, "-m", "longkit", "model", "info", str(tiny_llama_dir), "--json"],
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert r.returncode == 0, r.stderr
    import json

    info = json.loads(r.stdout)
    assert info["num_hidden_layers"] == 2 and info["max_position_embeddings"] == 4096
    assert info["rope"]["rope_theta"] == 10000.0 and info["chat_template"] is True
