"""`longkit serve` as a command: it serves, checks the key, and refuses bad options before loading anything."""

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def test_serve_command_serves_and_checks_the_key(tiny_llama_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "longkit", "serve", "--model", str(tiny_llama_dir),
                             "--port", str(port), "--kv-cache-tokens", "2048", "--threads", "1"],
                            env={**ENV, "LONGKIT_API_KEY": "k1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            try:
                r = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer k1"}, timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.time() < deadline
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["data"][0]["id"] == str(tiny_llama_dir)
        assert httpx.get(url + "/v1/models", timeout=5).status_code == 401
        chat = httpx.post(url + "/v1/chat/completions", headers={"Authorization": "Bearer k1"}, timeout=60,
                          json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["role"] == "assistant"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    access = [line for line in err.decode().splitlines() if '"POST /v1/chat/completions"' in line]
    assert len(access) == 1 and " 200 " in access[0]  # one access-log line per request


@pytest.mark.parametrize("args,option", [
    (["--port", "70000"], "--port"), (["--port", "0"], "--port"), (["--max-tokens-limit", "-1"], "--max-tokens-limit"),
    (["--max-request-bytes", "0"], "--max-request-bytes"), (["--max-context", "-5"], "--max-context"),
    (["--max-batch", "0"], "--max-batch"), (["--max-queue", "-1"], "--max-queue"),
    (["--request-timeout", "0"], "--request-timeout"), (["--backend", "tgi"], "--backend"),
])
def test_bad_options_are_one_line_errors(args, option, capsys):
    from longkit.cli import run

    status = run(["serve", *args])  # refused at parse time: nothing is loaded, nothing listens
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: ") and option in lines[0], lines


def test_vllm_engine_is_import_guarded(monkeypatch):
    """Without vLLM (absent here, or hidden as below where it is installed) --backend vllm is a one-line error."""
    import sys

    from longkit.errors import LongkitError
    from longkit.serve.batching import VLLMEngine

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError, as when not installed
    with pytest.raises(LongkitError, match=r"--backend vllm needs vLLM"):
        VLLMEngine("smollm2-135m-instruct")
