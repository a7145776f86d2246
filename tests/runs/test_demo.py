"""`outreach demo` on the embedded default: a fresh SQLite file, tasks in this process, a local folder."""

from __future__ import annotations

import json
import os
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
