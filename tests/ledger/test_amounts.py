"""Names and amounts: bounded, clear refusals that store nothing; sums that cannot overflow."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outreach.errors import InputError
from outreach.ledger import service
from outreach.ledger.models import RUN_LEVEL, BudgetVersion, LedgerEntry, RateCard
from outreach.ledger.schemas import FeeLine
from outreach.money import MAX_AMOUNT_FEN, MAX_PRICE_FEN
from tests.ledger import factories as f


def _stored(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        session.scalar(select(func.count()).select_from(BudgetVersion)) or 0,
        session.scalar(select(func.count()).select_from(RateCard)) or 0,
    )


def test_amounts_above_the_bound_are_refused_and_nothing_is_stored(session: Session) -> None:
    f.rate_card(session)
    camp = f.campaign(session)
    before = _stored(session)
    with pytest.raises(
        InputError, match=re.escape("预算 ¥100,000,000.01 超过允许的最大金额（¥100,000,000.00）")
    ):
        service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=MAX_AMOUNT_FEN + 1)
    with pytest.raises(InputError, match="超过允许的最大金额"):
        service.adjust(
            session=session, campaign_id=camp.id, amount_fen=-(2**63), reason="x", period="2027-Q1"
        )
    with pytest.raises(InputError, match="整数分"):
        service.adjust(session=session, campaign_id=camp.id, amount_fen=1.5, reason="x")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="信函单价"):
        f.rate_card(session, code="big", letter_fen=MAX_PRICE_FEN + 1)
    with pytest.raises(InputError, match="费用 设计费"):
        f.rate_card(session, code="big", fees=[FeeLine("设计费", fixed_fen=2**40)])
    assert _stored(session) == before
    service.set_budget(session=session, campaign_id=camp.id, period="2027", amount_fen=MAX_AMOUNT_FEN)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("名" * 51, "最多允许 50 个"), ("  ", "为空"), ("a\x1bb", "U+001B"), ("a\u202eb", "U+202E")],
)
def test_fee_names_and_reasons_are_checked(session: Session, name: str, expected: str) -> None:
    camp = f.campaign(session)
    before = _stored(session)
    with pytest.raises(InputError, match=re.escape(expected)):
        f.rate_card(session, code="x", fees=[FeeLine(name, per_piece_fen=1)])
    if name.strip():
        with pytest.raises(InputError, match=re.escape(expected.replace("50", "500"))):
            service.adjust(
                session=session, campaign_id=camp.id, amount_fen=1, reason=name * 10, period="2027-Q1"
            )
    assert _stored(session) == before


def test_sums_of_huge_stored_amounts_do_not_break_the_campaign(session: Session) -> None:
    """Rows stored before amounts were bounded: two near the 64-bit limit, whose sum is beyond it."""
    f.rate_card(session, effective_from=date(2020, 1, 1))
    camp = f.campaign(session)
    huge = 5 * 10**18
    for amount, period in ((huge, "2027-Q1"), (huge, "2027-Q1"), (-huge, "2027-Q2"), (123, "2027-Q2")):
        session.add(
            LedgerEntry(
                campaign_id=camp.id,
                piece_id=RUN_LEVEL,
                kind="adjust",
                period=period,
                list_fen=amount,
                waived_fen=0,
                amount_fen=amount,
                reason="legacy",
            )
        )
    session.flush()
    assert service.committed(session=session, campaign_id=camp.id, periods=["2027-Q1"]) == 2 * huge
    assert service.committed(
        session=session, campaign_id=camp.id, periods=["2027", "2027-Q1", "2027-Q2"]
    ) == (huge + 123)
    st = service.statement(session=session, campaign_id=camp.id, period="2027")
    assert st.adjusted_fen == huge + 123
    assert {q.label: q.spent_fen for q in st.quarters}["Q1"] == 2 * huge
    est = service.estimate(session=session, campaign_id=camp.id, period="2027-Q3", pieces=1, channel="letter")
    assert est.budget_fen is None and est.total_fen == 100
    assert service.budget_lines(session=session, campaign_id=camp.id) == []
