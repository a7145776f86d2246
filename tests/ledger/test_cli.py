"""`outreach ledger ...` end to end against the test database."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from outreach import db
from outreach.cli import app
from outreach.cli import ledger as ledger_cli
from outreach.ledger import service
from tests.ledger import factories as f

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Rich wraps tables to the terminal; a wide one keeps each amount on one line for the assertions.
    monkeypatch.setattr(ledger_cli.console, "_width", 200)
    yield
    # The CLI opens the settings' engine; close its pooled connections so none outlives the test.
    db.get_engine().dispose()


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_rates_budget_and_statement(committed_engine: Engine, tmp_path: Path) -> None:
    with db.session_scope(committed_engine) as session:
        camp = f.campaign(session, "俏佳人")
    out = _ok(
        "ledger",
        "rates",
        "set",
        "qiaojiaren",
        "--from",
        "2027-01-01",
        "--letter",
        "1.00",
        "--sms-part",
        "0.05",
        "--fee",
        "名址使用费=0.10:waived",
        "--fee",
        "设计费=300:fixed",
    )
    assert "version 1" in out
    _ok("ledger", "rates", "set", "qiaojiaren", "--from", "2027-04-01", "--letter", "1.20")
    shown = _ok("ledger", "rates", "show", "qiaojiaren", "--on", "2027-02-01")
    assert "¥1.00" in shown and "名址使用费" in shown and "waived" in shown
    assert "¥1.20" in _ok("ledger", "rates", "list")
    assert "version 1" in _ok("ledger", "budget", "set", "俏佳人", "6000", "--period", "2027")
    assert "version 2" in _ok(
        "ledger", "budget", "set", "俏佳人", "6,500.00", "--period", "2027", "--reason", "追加"
    )
    with db.session_scope(committed_engine) as session:
        run = f.run(session, session.merge(camp), "2027-Q1")
        ids = [p.id for p in f.pieces(session, run, 10)]
        service.reserve(session=session, run_id=run.id, pieces=10)
        service.charge_bulk(session=session, run_id=run.id, charges=[(i, 1) for i in ids])
    shown = _ok("ledger", "budget", "show", "俏佳人")
    assert "¥6,500.00" in shown and "¥310.00" in shown and "追加" in shown
    csv_out, pdf_out = tmp_path / "s.csv", tmp_path / "s.pdf"
    out = _ok(
        "ledger", "statement", "俏佳人", "--period", "2027-Q1", "--csv", str(csv_out), "--pdf", str(pdf_out)
    )
    assert "¥6,500.00" in out and "¥310.00" in out
    with csv_out.open(encoding="utf-8-sig") as handle:
        rows = {r["line"]: r for r in csv.DictReader(handle)}
    assert rows["total"]["net_yuan"] == "310.00" and rows["total"]["waived_yuan"] == "1.00"
    assert pdf_out.read_bytes().startswith(b"%PDF")


def test_clear_errors(committed_engine: Engine) -> None:
    result = runner.invoke(app, ["ledger", "budget", "set", "nobody", "10"])
    assert result.exit_code != 0 and "no campaign named 'nobody'" in str(result.exception)
    result = runner.invoke(app, ["ledger", "budget", "set", "nobody", "1.234"])
    assert "at most two decimals" in str(result.exception)
    result = runner.invoke(
        app, ["ledger", "rates", "set", "x", "--from", "2027-01-01", "--letter", "1", "--fee", "bad"]
    )
    assert "NAME=YUAN" in str(result.exception)
