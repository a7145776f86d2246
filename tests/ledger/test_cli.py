"""`outreach ledger ...` end to end against the test database, through the real entry point (exit codes)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from outreach import db
from outreach.cli import output
from outreach.ledger import service
from outreach.ledger.models import BudgetVersion, LedgerEntry, RateCard
from tests.cli.runner import run_cli
from tests.ledger import factories as f


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Rich fits tables to the terminal; a wide one keeps each table row on one line for the assertions.
    monkeypatch.setattr(output.console, "_width", 200)
    yield
    # The CLI opens the settings' engine; close its pooled connections so none outlives the test.
    db.get_engine().dispose()


def _counts(engine: Engine) -> tuple[int, int, int]:
    with db.session_scope(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
            session.scalar(select(func.count()).select_from(BudgetVersion)) or 0,
            session.scalar(select(func.count()).select_from(RateCard)) or 0,
        )


def test_rates_budget_and_statement(
    committed_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def ok(*args: str) -> str:
        code, text = run_cli(monkeypatch, capsys, *args)
        assert code == 0, text
        return text

    with db.session_scope(committed_engine) as session:
        camp = f.campaign(session, "俏佳人")
        camp_id = camp.id
    out = ok(
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
    assert "第 1 版" in out and "2027-01-01" in out
    ok("ledger", "rates", "set", "qiaojiaren", "--from", "2027-04-01", "--letter", "1.20")
    shown = ok("ledger", "rates", "show", "qiaojiaren", "--on", "2027-02-01")
    assert "¥1.00" in shown and "名址使用费" in shown and "减免" in shown and "¥300.00 固定" in shown
    assert "¥1.20" in ok("ledger", "rates", "list")
    assert "第 1 版" in ok("ledger", "budget", "set", "俏佳人", "6000", "--period", "2027")
    # The campaign by id works as well as by name.
    assert "第 2 版" in ok(
        "ledger", "budget", "set", str(camp_id), "6,500.00", "--period", "2027", "--reason", "追加"
    )
    with db.session_scope(committed_engine) as session:
        run = f.run(session, session.get(type(camp), camp_id), "2027-Q1")  # type: ignore[arg-type]
        ids = [p.id for p in f.pieces(session, run, 10)]
        service.reserve(session=session, run_id=run.id, pieces=10)
        service.charge_bulk(session=session, run_id=run.id, charges=[(i, 1) for i in ids])
    shown = ok("ledger", "budget", "show", "俏佳人")
    assert "¥6,500.00" in shown and "¥310.00" in shown and "追加" in shown and "已占用" in shown
    csv_out, pdf_out = tmp_path / "s.csv", tmp_path / "s.pdf"
    out = ok(
        "ledger", "statement", "俏佳人", "--period", "2027-Q1", "--csv", str(csv_out), "--pdf", str(pdf_out)
    )
    assert "¥6,500.00" in out and "¥310.00" in out and "费用对账单" in out and "退件" in out
    with csv_out.open(encoding="utf-8-sig") as handle:
        rows = {r["line"]: r for r in csv.DictReader(handle)}
    assert rows["total"]["net_yuan"] == "310.00" and rows["total"]["waived_yuan"] == "1.00"
    assert pdf_out.read_bytes().startswith(b"%PDF")
    out = ok(
        "ledger",
        "adjust",
        "#" + str(camp_id),
        "--amount",
        "-5",
        "--reason",
        "邮资补差",
        "--period",
        "2027-Q1",
    )
    assert "-¥5.00" in out and "邮资补差" in out


def test_clear_errors_are_one_line_exit_1_and_store_nothing(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with db.session_scope(committed_engine) as session:
        f.campaign(session, "俏佳人")
        f.rate_card(session)
    before = _counts(committed_engine)
    cases = [
        (("ledger", "budget", "set", "nobody", "10"), "没有活动 'nobody'"),
        (("ledger", "budget", "set", "俏佳人", "1.234"), "最多两位小数"),
        (("ledger", "budget", "set", "俏佳人", "100000000.01", "--period", "2027"), "超过允许的最大金额"),
        (("ledger", "budget", "set", "俏佳人", "9" * 40, "--period", "2027"), "数额过大"),
        (("ledger", "adjust", "俏佳人", "--amount", "-100000001", "--reason", "x"), "超过允许的最大金额"),
        (("ledger", "adjust", "俏佳人", "--amount", "5", "--reason", "a\x1b[31mb"), "U+001B"),
        (("ledger", "rates", "set", "x", "--from", "2027-01-01", "--letter", "1", "--fee", "bad"), "名称=元"),
        (
            ("ledger", "rates", "set", "x", "--from", "2027-01-01", "--letter", "1000001"),
            "超过允许的最大金额",
        ),
        (
            (
                "ledger",
                "rates",
                "set",
                "x",
                "--from",
                "2027-01-01",
                "--letter",
                "1",
                "--fee",
                "名" * 51 + "=1",
            ),
            "51",
        ),
        (("ledger", "rates", "set", "x", "--from", "1 Jan", "--letter", "1"), "2027-01-01"),
    ]
    for args, expected in cases:
        code, text = run_cli(monkeypatch, capsys, *args)
        assert code == 1, (args, text)
        assert expected in text, (args, text)
        assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
        assert "\x1b" not in text
    assert _counts(committed_engine) == before
