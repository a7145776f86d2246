"""Ad fees are income of the campaign period: booked once when the run's pieces are frozen, and the
statement shows cost, waived fees, ad income and the net."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.ledger import service as ledger
from outreach.ledger.models import LedgerEntry
from outreach.ledger.statement import write_statement_csv
from outreach.offers import service as offers
from tests.offers.helpers import artwork, book, offer_world, started_run


def test_ad_fees_are_the_periods_income_and_the_statement_nets_them(session: Session, tmp_path: Path) -> None:
    world = offer_world(session, women=10, fee_fen=50_000)
    campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
    book(
        session,
        campaign,
        merchant_id=world.other_merchant_id,
        slot="back-left",
        fee_fen=0,
        image=artwork((756, 472)),
    )
    campaigns.approve(session=session, campaign=campaign, period="2027-Q1")
    run = started_run(session, world.campaign_id)
    income = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "income")).all()
    # One entry, for the booking with a fee; none for the free one.
    assert [(e.run_id, e.piece_id, e.amount_fen, e.period) for e in income] == [
        (run.id, world.booking_id, 50_000, "2027-Q1")
    ]
    offers.on_frozen(session=session, run=run, campaign=campaign)  # a rerun books nothing twice
    assert session.scalar(select(func.count()).where(LedgerEntry.kind == "income")) == 1
    st = ledger.statement(session=session, campaign_id=world.campaign_id, period="2027-Q1")
    assert st.ad_income_fen == 50_000
    assert st.net_after_income_fen == st.spent_fen - 50_000
    # Income does not count as spending against the budget.
    assert st.quarters[0].spent_fen == st.spent_fen
    path = tmp_path / "statement.csv"
    write_statement_csv(st, path)
    text = path.read_text(encoding="utf-8-sig")
    assert "ad_income" in text and "500.00" in text and "net_after_ad_income" in text
