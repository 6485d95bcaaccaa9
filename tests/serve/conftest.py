"""What the server tests share (as fixtures): a free port and a live uvicorn server over an app, in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest


def _free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _live_server(app: object) -> Iterator[str]:
    """Serve the app on 127.0.0.1 in a thread; yields its base URL and stops it after."""
    import uvicorn

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not srv.started:
        assert thread.is_alive() and time.time() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """free_port(): a port nothing listens on now."""
    return _free_port


@pytest.fixture(scope="session")
def live_server() -> Callable[[object], AbstractContextManager[str]]:
    """`with live_server(app) as url:` serves the app on 127.0.0.1 in a thread."""
    return _live_server
