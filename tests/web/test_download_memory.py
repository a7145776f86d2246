"""Downloading a 200 MB batch file keeps the server's memory flat (RSS growth under 50 MB)."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import Engine

from outreach.settings import get_settings
from tests.web.conftest import People, make_batches

pytestmark = pytest.mark.slow
SIZE = 200 * 1024 * 1024


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_a_200_mb_download_keeps_server_memory_flat(people: People, committed_engine: Engine) -> None:
    batches = make_batches(committed_engine, people, count=1, size=SIZE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = get_settings()
    env = {
        **os.environ,
        "OUTREACH_DATABASE_URL": settings.resolved_database_url,
        "OUTREACH_DATA_DIR": str(settings.data_dir),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "outreach.web.app:create_app", "--factory", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as ready:
                    if ready.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {people.tokens['shop']}"}
        url = f"{base}/api/v1/batches/{batches.mine[0]}/files/letters.pdf"
        warm = urllib.request.Request(url, headers={**headers, "Range": "bytes=0-1023"})
        with urllib.request.urlopen(warm, timeout=10) as response:  # warm up the code path
            assert response.status == 206
        before = rss_kb(server.pid)
        peak = before
        digest = hashlib.sha256()
        received = 0
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            assert response.status == 200
            expected = response.headers["x-content-sha256"]
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                received += len(block)
                peak = max(peak, rss_kb(server.pid))
        assert received == len(batches.file_bytes) and digest.hexdigest() == expected
        growth_mb = (peak - before) / 1024
        print(
            f"server RSS before {before / 1024:.1f} MB, peak {peak / 1024:.1f} MB, growth {growth_mb:.1f} MB"
        )
        assert growth_mb < 50
    finally:
        server.terminate()
        server.wait(timeout=10)
