"""`outreach campaign ...` through the real entry point: Chinese output, exit codes, nothing half-stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, func, select

from outreach import db
from outreach.campaigns.models import Campaign
from outreach.cli import output
from outreach.ledger import service as ledger
from tests.campaigns.test_service import absent_character
from tests.cli.runner import run_cli
from tests.ledger.conftest import freeze_today
from tests.runs.world import committed_world


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(output.console, "_width", 160)
    yield
    db.get_engine().dispose()


def _campaign(engine: Engine, campaign_id: int) -> Campaign:
    with db.session_scope(engine) as session:
        found = session.get(Campaign, campaign_id)
        assert found is not None
        session.expunge(found)
        return found


def test_estimate_and_approve_next_year_on_a_november_day(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: `campaign approve 俏佳人 --period 2027-Q1` on 2026-11-30 with a card from 2027-01-01."""
    freeze_today(monkeypatch, date(2026, 11, 30))
    world = committed_world(committed_engine, women=8, period=None)
    with db.session_scope(committed_engine) as session:
        ledger.set_rate_card(
            session=session, code="qjr", effective_from=date(2027, 1, 1), letter_fen=100, sms_part_fen=5
        )
        session.get(Campaign, world.campaign_id).rate_card_code = "qjr"  # type: ignore[union-attr]
    code, text = run_cli(monkeypatch, capsys, "campaign", "estimate", "俏佳人", "--period", "2027-Q1")
    assert code == 0, text
    assert "费用估算" in text and "可送达件数" in text and "2027-01-01" in text and "¥8.00" in text
    code, text = run_cli(
        monkeypatch, capsys, "campaign", "approve", str(world.campaign_id), "--period", "2027-Q1"
    )
    assert code == 0, text
    assert "已批准用于 2027-Q1" in text
    assert _campaign(committed_engine, world.campaign_id).approved_period == "2027-Q1"


def test_approve_lists_unprintable_recipients_first_and_refuses_without_force(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rare = absent_character()
    world = committed_world(committed_engine, women=5, period=None, extra_names=(f"李{rare}",))
    code, text = run_cli(monkeypatch, capsys, "campaign", "approve", "俏佳人", "--period", "2027-Q1")
    assert code == 1
    assert "Traceback" not in text
    listed, estimate = text.index(f"李{rare}"), text.index("费用估算")
    assert listed < estimate  # the recipients come before the money
    assert f"U+{ord(rare):04X}" in text and "--force" in text.splitlines()[-1]
    assert _campaign(committed_engine, world.campaign_id).approved_period is None
    code, text = run_cli(monkeypatch, capsys, "campaign", "estimate", "俏佳人", "--period", "2027-Q1")
    assert code == 0 and f"李{rare}" in text
    code, text = run_cli(
        monkeypatch, capsys, "campaign", "approve", "俏佳人", "--period", "2027-Q1", "--force"
    )
    assert code == 0, text
    assert _campaign(committed_engine, world.campaign_id).approved_period == "2027-Q1"


def test_show_list_and_bad_names(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = committed_world(committed_engine, women=3, name="[bold]俏佳人[/]")
    code, text = run_cli(monkeypatch, capsys, "campaign", "show", str(world.campaign_id), "--json")
    assert code == 0, text
    data = json.loads(text)
    assert (data["name"], data["approved_period"], data["print_shop"]) == (
        "[bold]俏佳人[/]",
        "2027-Q1",
        "尤溪县邮政商函印制中心",
    )
    code, text = run_cli(monkeypatch, capsys, "campaign", "show", f"#{world.campaign_id}")
    assert code == 0 and "[bold]俏佳人[/]" in text and "已批准期间" in text
    code, text = run_cli(monkeypatch, capsys, "campaign", "list")
    assert code == 0 and "[bold]俏佳人[/]" in text and "已批准" in text
    with db.session_scope(committed_engine) as session:
        before = session.scalar(select(func.count()).select_from(Campaign))
    for name, expected in (("名" * 101, "最多允许 100 个"), ("2027", "活动编号")):
        code, text = run_cli(
            monkeypatch,
            capsys,
            "campaign",
            "create",
            name,
            "--audience",
            "x",
            "--kit",
            "qiaojiaren",
            "--rate-card",
            "qjr",
        )
        assert code == 1 and expected in text and len(text.strip().splitlines()) == 1, text
    with db.session_scope(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == before
