"""The README's "Using it" walkthrough, run command by command as a planner would, on any date.

The block is read from README.md itself, so the README cannot drift from what works. It runs in a temporary
folder, on a fresh database, on a county registry generated here as `registry.xlsx`, with the clock frozen at
two dates: before the rate card's first day (2026-11-30) and in the middle of the period (2027-05-01).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from audiences.sample import write_sample
from outreach import db
from outreach.cli import main
from outreach.settings import get_settings
from tests.conftest import BACKEND, PG_ADMIN_URL

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> list[list[str]]:
    """The `outreach ...` commands of the README's "Using it" block, in order, as argument lists."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Using it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's 'Using it' section has no sh block"
    commands: list[list[str]] = []
    for line in block.group(1).splitlines():
        for part in line.split(" ; "):
            words = shlex.split(part, comments=True)
            if words and words[0] == "outreach":
                commands.append(words[1:])
    return commands


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("OUTREACH_")}

    def point_at(url: str) -> None:
        os.environ["OUTREACH_DATABASE_URL"] = url
        os.environ["OUTREACH_DATA_DIR"] = str(tmp_path / "data")
        os.environ.pop("OUTREACH_BROKER_URL", None)
        os.environ.pop("OUTREACH_BATCH_DIR", None)
        get_settings.cache_clear()
        db.dispose_engines()
        db.upgrade(db.get_engine(url))

    try:
        if BACKEND == "postgres":
            with db.scratch_database(PG_ADMIN_URL, prefix="outreach_readme") as url:
                point_at(url)
                yield
        else:
            point_at(f"sqlite:///{tmp_path / 'readme.db'}")
            yield
    finally:
        for key in [k for k in os.environ if k.startswith("OUTREACH_")]:
            del os.environ[key]
        os.environ.update(saved)
        get_settings.cache_clear()
        db.dispose_engines()


def _run(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["outreach", *argv])
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return (code if isinstance(code, int) else 0), out + err


def test_the_block_is_a_walkthrough() -> None:
    commands = [" ".join(c[:2]) for c in walkthrough()]
    for step in ("registry import", "campaign approve", "run start", "ledger statement"):
        assert step in commands


@pytest.mark.parametrize("today", ["2026-11-30T09:00", "2027-05-01T09:00"])
def test_the_readme_walkthrough_works(
    today: str,
    tmp_path: Path,
    fresh_database: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    write_sample(tmp_path / "registry.xlsx", workers=600, seed=7, malformed=3)
    moment = datetime.fromisoformat(today).replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    with time_machine.travel(moment, tick=True):
        for argv in walkthrough():
            code, output = _run(argv, monkeypatch, capsys)
            assert "Traceback" not in output
            assert code == 0, f"outreach {shlex.join(argv)} exited {code}:\n{output}"
    assert (tmp_path / "rejects.csv").is_file()
    assert (tmp_path / "statement.pdf").read_bytes().startswith(b"%PDF")
