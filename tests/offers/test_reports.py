"""Redemption reports: planners' counts and shares per offer, township, unit kind and age band by week; a
merchant's own weekly figures under the privacy floor (no count under 5 shown, none to be worked out)."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from outreach.accounts import audit
from outreach.campaigns import service as campaigns
from outreach.offers import reports
from outreach.offers import service as offers
from outreach.offers.models import Redemption
from outreach.runs.models import Piece
from tests.offers.helpers import a_code, book, offer_world, started_run
from tests.offers.test_counter import TODAY

WEEK_10 = datetime(2027, 3, 9, 4, 0, tzinfo=UTC)  # 2027-W10 in Beijing time
WEEK_11 = datetime(2027, 3, 16, 4, 0, tzinfo=UTC)  # 2027-W11


def test_the_floor_never_shows_a_count_under_five_nor_lets_one_be_worked_out() -> None:
    for size in range(1, 5):
        for counts in itertools.product(range(0, 9), repeat=size):
            shown = reports.floor(list(counts))
            assert all(s is None or s >= reports.MIN_CELL for s in shown)
            hidden = [c for c, s in zip(counts, shown, strict=True) if s is None]
            # What the total less the shown cells gives away is the sum of the hidden ones: 0, or at least 5.
            if any(s is not None for s in shown):
                assert sum(hidden) == 0 or sum(hidden) >= reports.MIN_CELL, (counts, shown)
            assert [s for s in shown if s is not None] == [c for c, s in zip(counts, shown, strict=True) if s]


def _redeem_many(session: Session, merchant_id: int, run_id: int, seqs: range, at: datetime) -> None:
    who = audit.Actor(username="test", address="test")
    before = session.scalar(select(func.max(Redemption.id))) or 0
    for seq in seqs:
        said = offers.redeem(
            session=session,
            actor=who,
            merchant_id=merchant_id,
            typed=a_code(session, run_id, seq),
            today=TODAY,
        )
        assert said.recorded
    session.execute(update(Redemption).where(Redemption.id > before).values(at=at))
    session.flush()


def test_a_merchant_sees_its_weeks_only_at_five_or_more(session: Session) -> None:
    world = offer_world(session, women=20)
    run = started_run(session, world.campaign_id)
    _redeem_many(session, world.merchant_id, run.id, range(1, 8), WEEK_10)
    _redeem_many(session, world.merchant_id, run.id, range(8, 10), WEEK_11)
    (offer,) = reports.merchant_report(session=session, merchant_id=world.merchant_id)
    # 7 and 2: the 2 is hidden, and the 7 with it (else 9 - 7 would give the 2 away); the total 9 shows.
    assert offer.weeks == (("2027-W10", None), ("2027-W11", None)) and offer.total == 9
    rows = list(csv.reader(io.StringIO(reports.merchant_csv([offer]))))
    assert [r[3:] for r in rows[1:]] == [["2027-W10", "<5"], ["2027-W11", "<5"], ["all", "9"]]
    _redeem_many(session, world.merchant_id, run.id, range(10, 15), WEEK_11)
    (offer,) = reports.merchant_report(session=session, merchant_id=world.merchant_id)
    assert offer.weeks == (("2027-W10", 7), ("2027-W11", 7)) and offer.total == 14
    # The other merchant sees none of it.
    assert reports.merchant_report(session=session, merchant_id=world.other_merchant_id) == []
    chart = str(reports.bar_chart_svg(["2027-W10", "<W11>"], [7, None], title="a & b"))
    assert chart.startswith("<svg") and "&lt;W11&gt;" in chart and "a &amp; b" in chart and "&lt;5" in chart


def test_planners_see_counts_and_shares_per_offer_township_unit_kind_and_age_band(session: Session) -> None:
    world = offer_world(session, women=12)
    campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
    second = book(session, campaign, merchant_id=world.other_merchant_id, slot="insert-2", fee_fen=0)
    campaigns.approve(session=session, campaign=campaign, period="2027-Q1")
    run = started_run(session, world.campaign_id)
    _redeem_many(session, world.merchant_id, run.id, range(1, 4), WEEK_10)
    _redeem_many(session, world.other_merchant_id, run.id, range(1, 3), WEEK_11)
    report = reports.planner_report(session=session, campaign=campaign, period="2027-Q1")
    assert report.mailed == 12 and report.redemptions == 5
    assert report.weeks == ("2027-W10", "2027-W11") and report.by_week == {"2027-W10": 3, "2027-W11": 2}
    by = {(r.dimension, r.value): r for r in report.rows}
    offers_rows = [r for r in report.rows if r.dimension == "offer"]
    assert sorted(r.redemptions for r in offers_rows) == [2, 3] and {r.mailed for r in offers_rows} == {12}
    assert any(r.value.endswith("(insert-2)") and r.by_week == {"2027-W11": 2} for r in offers_rows)
    assert second.id
    for dimension in ("township", "unit_kind", "age_band"):
        rows = [r for r in report.rows if r.dimension == dimension]
        assert sum(r.redemptions for r in rows) == 5 and sum(r.mailed for r in rows) == 12, dimension
    # Pieces 1-3 sort first by postcode: the township of postcode 365100 (城关镇).
    townships = dict(
        session.execute(
            select(Piece.township, func.count()).where(Piece.run_id == run.id).group_by(Piece.township)
        ).all()
    )
    assert {r.value: r.mailed for r in report.rows if r.dimension == "township"} == townships
    first = by[("township", "城关镇")]
    assert first.redemptions == 5 and first.share == 5 / townships["城关镇"]
    lines = list(csv.DictReader(io.StringIO(reports.planner_csv(report))))
    total = [
        ln
        for ln in lines
        if ln["dimension"] == "township" and ln["value"] == "城关镇" and ln["week"] == "all"
    ]
    assert total[0]["redemptions"] == "5" and float(total[0]["share"]) == first.share
