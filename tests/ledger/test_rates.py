"""Rate cards: the fee-spec grammar, the card a period is priced with, and one fee arithmetic for all."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outreach.errors import InputError, NotFound
from outreach.ledger import service
from outreach.ledger.models import LedgerEntry
from outreach.ledger.schemas import FeeLine
from tests.ledger import factories as f
from tests.ledger.conftest import freeze_today


def test_fee_specs() -> None:
    assert service.parse_fee("名址使用费=0.10:waived") == FeeLine("名址使用费", per_piece_fen=10, waived=True)
    assert service.parse_fee(" 设计费 = 300 : fixed ") == FeeLine("设计费", fixed_fen=30000)
    assert service.parse_fee("a=1:fixed:waived") == FeeLine("a", fixed_fen=100, waived=True)
    with pytest.raises(InputError, match="名称=元"):
        service.parse_fee("bad")
    with pytest.raises(InputError, match="未知标记 'free'"):
        service.parse_fee("a=1:free")
    with pytest.raises(InputError, match=r"费用 a '1\.234'"):
        service.parse_fee("a=1.234")
    with pytest.raises(InputError, match="超过允许的最大金额"):
        service.parse_fee("a=1000000.01")


def test_a_period_is_priced_on_its_planned_mailing_date(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_today(monkeypatch, date(2026, 11, 30))
    assert service.pricing_date("2027-Q1") == date(2027, 1, 1)
    assert service.pricing_date("2027") == date(2027, 1, 1)
    # A period whose mailing date has passed is priced today (a late run is mailed at today's prices).
    assert service.pricing_date("2026-Q4") == date(2026, 11, 30)
    assert service.pricing_date("2026-Q1") == date(2026, 11, 30)


def test_estimate_and_run_of_next_year_use_next_years_card(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README walkthrough on 2026-11-30: the card starts 2027-01-01, the period is 2027-Q1."""
    freeze_today(monkeypatch, date(2026, 11, 30))
    f.rate_card(session, effective_from=date(2027, 1, 1), letter_fen=100)
    camp = f.campaign(session)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=1_000_000)
    est = service.estimate(
        session=session, campaign_id=camp.id, period="2027-Q1", pieces=10, channel="letter"
    )
    assert (est.priced_on, est.rate_card_version, est.total_fen) == ("2027-01-01", 1, 1000)
    # Today's own quarter has no card in force yet: that is still refused, with the reason.
    with pytest.raises(NotFound, match="2026-11-30"):
        service.estimate(session=session, campaign_id=camp.id, period="2026-Q4", pieces=10, channel="letter")
    run = f.run(session, camp, "2027-Q1", created=datetime(2026, 11, 30, 2, tzinfo=UTC))
    f.pieces(session, run, 10)
    assert service.reserve(session=session, run_id=run.id, pieces=10).amount_fen == est.total_fen


def test_a_newer_version_for_the_period_wins(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    freeze_today(monkeypatch, date(2026, 11, 30))
    f.rate_card(session, effective_from=date(2020, 1, 1), letter_fen=80, fees=[])
    f.rate_card(session, effective_from=date(2027, 1, 1), letter_fen=120, fees=[])
    camp = f.campaign(session)
    now = service.estimate(session=session, campaign_id=camp.id, period="2026-Q4", pieces=1, channel="letter")
    later = service.estimate(
        session=session, campaign_id=camp.id, period="2027-Q1", pieces=1, channel="letter"
    )
    assert (now.unit_price_fen, now.rate_card_version) == (80, 1)
    assert (later.unit_price_fen, later.rate_card_version) == (120, 2)


@pytest.mark.parametrize(
    ("channel", "parts", "fees"),
    [
        ("letter", 1, f.QIAOJIAREN_FEES),
        (
            "letter",
            1,
            [FeeLine("设计费", fixed_fen=80000, waived=True), FeeLine("名址使用费", per_piece_fen=7)],
        ),
        ("sms", 3, [FeeLine("通道费", per_piece_fen=2), FeeLine("签名报备", fixed_fen=5000, waived=True)]),
    ],
)
def test_estimate_reservation_and_charges_agree_to_the_fen(
    session: Session, channel: str, parts: int, fees: list[FeeLine]
) -> None:
    f.rate_card(session, letter_fen=100, sms_part_fen=5, fees=fees)
    camp = f.campaign(session, channel=channel)
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=10_000_000)
    pieces = 37
    est = service.estimate(
        session=session,
        campaign_id=camp.id,
        period="2027-Q1",
        pieces=pieces,
        channel=channel,
        parts_per_piece=parts,
    )
    assert est.list_fen - est.waived_fen == est.total_fen
    assert est.list_fen == est.base_fen + sum(fee.list_fen for fee in est.fees)
    assert est.waived_fen == sum(fee.list_fen for fee in est.fees if fee.waived)
    run = f.run(session, camp, "2027-Q1")
    ids = [p.id for p in f.pieces(session, run, pieces, parts=parts)]
    reserved = service.reserve(session=session, run_id=run.id, pieces=pieces, parts_per_piece=parts)
    assert reserved.amount_fen == est.total_fen
    service.charge_bulk(session=session, run_id=run.id, charges=[(i, parts) for i in ids])
    bal = service.balance(session=session, run_id=run.id)
    assert bal.charged_fen + bal.fees_fen == est.total_fen and bal.outstanding_fen == 0
    assert (bal.list_fen, bal.waived_fen) == (est.list_fen, est.waived_fen)
    wrong = session.scalar(
        select(func.count())
        .select_from(LedgerEntry)
        .where(LedgerEntry.list_fen - LedgerEntry.waived_fen != LedgerEntry.amount_fen)
    )
    assert wrong == 0
