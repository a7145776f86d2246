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
