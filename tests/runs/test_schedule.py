"""The quarterly schedule: runs at the quarter's start, waits for approval, catches up once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from outreach.campaigns import schedule
from outreach.campaigns import service as campaigns
from outreach.runs.models import Run
from tests.runs.world import committed_world

# 1 April 2027 08:00 in Shanghai (the default start: day 1, 08:00) is midnight UTC.
Q2_START = datetime(2027, 4, 1, 0, 0, tzinfo=UTC)


def tick(engine: Engine, now: datetime) -> list[int]:
    with Session(engine) as session, session.begin():
        return schedule.tick(session=session, now=now)


def runs_of(engine: Engine) -> list[tuple[str, str, str | None]]:
    with Session(engine) as session:
        return [(r.period, r.state, r.note) for r in session.scalars(select(Run).order_by(Run.period))]


def test_quarter_start_runs_an_approved_campaign_once(committed_engine: Engine) -> None:
    committed_world(committed_engine, women=4, schedule="quarterly", period="2027-Q2")
    assert (
        tick(committed_engine, datetime(2027, 3, 31, 23, 45, tzinfo=UTC)) == []
    )  # Q1: before its first period
    started = tick(committed_engine, Q2_START)
    assert len(started) == 1
    assert runs_of(committed_engine) == [("2027-Q2", "rendering", None)]
    # Every later tick in the quarter finds the run and does nothing.
    assert tick(committed_engine, datetime(2027, 4, 1, 0, 15, tzinfo=UTC)) == []
    assert tick(committed_engine, datetime(2027, 5, 20, tzinfo=UTC)) == []
    assert len(runs_of(committed_engine)) == 1


def test_a_missed_quarter_start_is_caught_up_once(committed_engine: Engine) -> None:
    committed_world(committed_engine, women=4, schedule="quarterly", period="2027-Q2")
    # The scheduler was down from March to mid-May: its first tick back starts Q2's run, once.
    assert len(tick(committed_engine, datetime(2027, 5, 14, 9, tzinfo=UTC))) == 1
    assert tick(committed_engine, datetime(2027, 5, 14, 9, 15, tzinfo=UTC)) == []
    assert [p for p, _s, _n in runs_of(committed_engine)] == ["2027-Q2"]


def test_unapproved_quarter_waits_and_never_resends_last_quarters_content(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=4, schedule="quarterly", period="2027-Q1")
    assert len(tick(committed_engine, datetime(2027, 1, 1, 0, 0, tzinfo=UTC))) == 1
    # Q2 begins; Q1's content is the approved one, so Q2 waits and says why.
    assert tick(committed_engine, Q2_START) == []
    (q1, q2) = runs_of(committed_engine)
    assert q1[:2] == ("2027-Q1", "rendering")
    assert q2[:2] == ("2027-Q2", "waiting") and "2027-Q2 的内容尚未批准" in (q2[2] or "")
    assert tick(committed_engine, datetime(2027, 4, 2, tzinfo=UTC)) == []  # still waiting
    with Session(committed_engine) as session, session.begin():
        c = campaigns.get_by_name(session=session, name=world.campaign)
        campaigns.approve(session=session, campaign=c, period="2027-Q2")
    assert len(tick(committed_engine, datetime(2027, 4, 2, 0, 15, tzinfo=UTC))) == 1
    assert runs_of(committed_engine)[1][:2] == ("2027-Q2", "rendering")


def test_a_changed_kit_or_audience_needs_a_new_approval(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=4, schedule="quarterly", period="2027-Q2")
    with Session(committed_engine) as session, session.begin():
        c = campaigns.get_by_name(session=session, name=world.campaign)
        campaigns.change(session=session, campaign=c, kit="notice")
    assert tick(committed_engine, Q2_START) == []
    assert runs_of(committed_engine)[0][1] == "waiting"


def test_over_budget_waits_with_the_reason(committed_engine: Engine) -> None:
    committed_world(committed_engine, women=30, schedule="quarterly", period="2027-Q2", budget_fen=500)
    assert tick(committed_engine, Q2_START) == []
    ((period, state, note),) = runs_of(committed_engine)
    assert (period, state) == ("2027-Q2", "waiting") and "超出" in (note or "")
