"""What the tests that talk to a real local server share: a free loopback port, a urllib
handler that answers a redirect as it is, and `rul dashboard` started in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

START_S = 120  # a cold `rul dashboard` imports Panel, Bokeh and Polars: ~10 s idle, more loaded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Answer a redirect as it is: the redirect itself (status, Location, headers) is under
    test, not its target."""

    def redirect_request(self, *args, **kwargs):
        return None


def dashboard(env: dict[str, str], log: Path, *args: str) -> Iterator[int]:
    """Run `rul dashboard` on a free port with `env` (a data folder's) until /login answers;
    yields the port, then stops the server. For a fixture: `yield from dashboard(...)`."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "dashboard", "--port",
                                 str(port), *args], env=os.environ | env, stdout=out,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_S
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"rul dashboard did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
