"""`outreach offer ...` through the real entry point: a merchant, a booking, the slots an approver reads, a
refused booking that stores nothing, the report with its CSV."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from outreach import db
from outreach.accounts.auth_models import AuditEntry
from outreach.cli import output
from outreach.offers.models import AdBooking
from tests.cli.runner import run_cli
from tests.offers.helpers import artwork
from tests.runs.world import committed_world


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(output.console, "_width", 200)
    yield
    db.get_engine().dispose()


def test_booking_a_slot_from_the_command_line(
    committed_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    world = committed_world(committed_engine, women=4)
    good = tmp_path / "ad.jpg"
    good.write_bytes(artwork())
    small = tmp_path / "small.jpg"
    small.write_bytes(artwork((300, 196)))
    code, out = run_cli(
        monkeypatch, capsys, "offer", "merchant-add", "尤溪丽人美容院", "--licence", "91350426MA2XXXXX0M"
    )
    assert code == 0 and "已添加商家" in out
    book = ["offer", "book", world.campaign, "2027-Q1", "insert-1", "--merchant", "尤溪丽人美容院"]
    book += ["--offer", "凭函到店护理八折", "--from", "2027-03-01", "--until", "2027-05-31", "--fee", "500"]
    code, out = run_cli(monkeypatch, capsys, *book, "--artwork", str(small))
    assert code == 1 and "dpi" in out and "Traceback" not in out
    code, out = run_cli(monkeypatch, capsys, *book[:-2], "--until", "2027-02-01", "--artwork", str(good))
    assert code == 1 and "结束日期早于开始日期" in out
    code, out = run_cli(monkeypatch, capsys, *book, "--artwork", str(good))
    assert code == 0 and "需重新审批" in out, out
    code, out = run_cli(monkeypatch, capsys, "offer", "slots", world.campaign, "2027-Q1")
    assert code == 0 and "尤溪丽人美容院" in out and "500.00" in out and "工会自有画面" in out
    csv_path = tmp_path / "report.csv"
    code, out = run_cli(
        monkeypatch, capsys, "offer", "report", world.campaign, "2027-Q1", "--csv", str(csv_path)
    )
    assert (
        code == 0 and "核销 0 次" in out and csv_path.read_text(encoding="utf-8-sig").startswith("campaign,")
    )
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(AdBooking)) == 1
        assert session.scalar(select(func.count()).where(AuditEntry.action == "offer.booked")) == 1
