"""The web service for a benchmark: `uvicorn outreach.web.app:create_app` in a child process on a free
loopback port, started with the given environment and stopped afterwards."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serve(env: dict[str, str], *, workers: int | None = None) -> Iterator[int]:
    """Starts uvicorn (WORKERS processes, its default when None), waits until /healthz answers, yields the
    port and terminates the server on the way out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "outreach.web.app:create_app",
        "--factory",
        "--port",
        str(port),
    ]
    if workers is not None:
        command += ["--workers", str(workers)]
    server = subprocess.Popen([*command, "--log-level", "warning"], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
