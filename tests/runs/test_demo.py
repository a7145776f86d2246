"""`outreach demo` on the embedded default: a fresh SQLite file, tasks in this process, a local folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_the_main_job_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "outreach", "demo", "--out", str(out), "--size", "1200", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (out / "outreach.db").is_file()  # the embedded SQLite default
    assert result["pieces"] > 500 and result["failed"] == 0
    assert result["registry"]["rejected"] >= 3  # the generator's deliberately malformed rows
    assert len(result["batches"]) == 1
    for role in ("envelopes", "letters", "manifest", "ticket"):
        assert Path(result["batches"][0][role]).is_file()
    ledger = result["ledger"]
    assert ledger["budget_fen"] == 30_000_00
    assert ledger["charged_fen"] == result["pieces"] * 100
    assert ledger["remaining_fen"] == ledger["budget_fen"] - ledger["charged_fen"]
    assert ledger["waived_fen"] > 0
    assert Path(ledger["statement_pdf"]).is_file()


# Three or more English words in a row: a sentence someone forgot to put in the catalogue.
ENGLISH = re.compile(r"\b[A-Za-z]{2,}(?: [A-Za-z]{2,}){2,}\b")


def test_demo_speaks_chinese_and_keeps_everything_in_its_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_") and k != "LANG"}
    # A database elsewhere must not pull the demo's files out of its folder.
    env["OUTREACH_BATCH_DIR"] = str(tmp_path / "elsewhere")
    env["COLUMNS"] = "120"
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "outreach", "demo", "--out", "demo", "--size", "1200"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout.replace(str(tmp_path), "")
    assert not ENGLISH.findall(shown), shown
    assert "Traceback" not in proc.stderr
    rejects = (out / "rejects.csv").read_text(encoding="utf-8-sig")
    assert rejects.count("\n") >= 4
    assert not ENGLISH.findall(rejects)
    assert not (tmp_path / "elsewhere").exists()
    assert list((out / "batches").rglob("envelopes.pdf"))


def test_demo_json_paths_are_absolute(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    proc = subprocess.run(
        [sys.executable, "-m", "outreach", "demo", "--out", "d", "--size", "400", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    paths = [result["registry"]["file"], result["ledger"]["statement_pdf"], *result["batches"][0].values()]
    for path in paths:
        assert Path(path).is_absolute() and Path(path).is_file(), path
        assert Path(path).is_relative_to(tmp_path / "d")


def test_demo_serve_leaves_a_running_site_the_print_shop_logs_into(tmp_path: Path) -> None:
    import signal
    import socket
    import time

    import httpx2 as httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env["OUTREACH_DEMO_PASSWORD"] = "demo password 2027"
    env["COLUMNS"] = "200"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shown = tmp_path / "stdout.txt"
    with shown.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "outreach",
                "demo",
                "--out",
                "d",
                "--size",
                "400",
                "--serve",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    site = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, shown.read_text()
            try:
                if httpx.get(f"{site}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, shown.read_text()
            time.sleep(0.5)
        text = shown.read_text()
        for username in ("admin", "planner", "approver", "finance", "printshop"):
            assert f"  {username}  (" in text, text
        assert "demo password 2027" in text
        with httpx.Client(base_url=site, follow_redirects=False, timeout=10) as browser:
            page = browser.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token, page.text
            signed_in = browser.post(
                "/login",
                data={
                    "username": "printshop",
                    "password": "demo password 2027",
                    "csrf_token": token.group(1),
                },
            )
            assert signed_in.status_code == 303, signed_in.text
            portal = browser.get("/portal")
            assert portal.status_code == 200
            assert "俏佳人" in portal.text
            batch = re.search(r'href="(/portal/batches/\d+)"', portal.text)
            assert batch, portal.text
            detail = browser.get(batch.group(1))
            assert detail.status_code == 200 and "letters.pdf" in detail.text
            # The shop sees its batch, not the union's pages.
            assert browser.get("/api/v1/audit").status_code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0, shown.read_text()
    assert "Traceback" not in shown.read_text()
