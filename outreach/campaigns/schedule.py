"""The quarterly schedule: at each quarter's start, run every active quarterly campaign once.

The beat calls `tick` every quarter of an hour. Each tick looks at the quarter whose start has passed, so a
scheduler that was down at the start catches up when it comes back; the one-run-per-campaign-and-period rule
makes that happen once. A quarter whose content is not approved gets a 'waiting' run that says so (the
planner sees it in `outreach campaign list`), and starts when approved: last quarter's advertising is never
sent again without an approval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.errors import BudgetExceeded, InputError
from outreach.periods import due_quarter, quarter_of
from outreach.runs import service as runs
from outreach.runs.models import Run
from outreach.settings import get_settings

log = logging.getLogger(__name__)


def tick(*, session: Session, now: datetime) -> list[int]:
    """Starts the due quarter's runs; returns the ids of runs that now need rendering."""
    settings = get_settings()
    quarter = due_quarter(
        now, day=settings.quarter_start_day, hour=settings.quarter_start_hour, tz=settings.timezone
    )
    if quarter is None:
        return []
    period = str(quarter)
    started: list[int] = []
    scheduled = session.scalars(
        select(Campaign).where(Campaign.schedule == "quarterly", Campaign.state.in_(("approved", "active")))
    ).all()
    for campaign in scheduled:
        if campaign.first_period is None or period < campaign.first_period:
            continue
        existing = runs.find(session=session, campaign=campaign, period=period)
        if existing is not None and existing.state != "waiting":
            continue
        run = _start_or_wait(session=session, campaign=campaign, period=period)
        if run.state == "waiting":
            log.warning("campaign %s, %s: waiting: %s", campaign.name, period, run.note)
        else:
            log.info(
                "campaign %s, %s: run %s started with %s pieces",
                campaign.name,
                period,
                run.id,
                run.piece_count,
            )
            started.append(run.id)
    return started


def _start_or_wait(*, session: Session, campaign: Campaign, period: str) -> Run:
    savepoint = session.begin_nested()
    try:
        run = runs.start(session=session, campaign=campaign, period=period)
        savepoint.commit()
        return run
    except (BudgetExceeded, InputError) as exc:
        savepoint.rollback()
        waiting = runs.find(session=session, campaign=campaign, period=period)
        if waiting is None:
            waiting = Run(
                campaign_id=campaign.id, period=period, state="waiting", batch_size=campaign.batch_size
            )
            session.add(waiting)
        waiting.note = str(exc)
        session.flush()
        return waiting


@dataclass(frozen=True)
class Upcoming:
    """A quarterly campaign's next scheduled run: the period, when the schedule starts it, and what would stop
    it (None when its content for that period is approved)."""

    campaign_id: int
    campaign: str
    period: str
    starts_at: datetime
    problem: str | None


def next_start(now: datetime) -> tuple[str, datetime]:
    """The next quarter the schedule starts after `now`, and when (in the union's time zone)."""
    settings = get_settings()
    day, hour, tz = settings.quarter_start_day, settings.quarter_start_hour, settings.timezone
    due = due_quarter(now, day=day, hour=hour, tz=tz)
    upcoming = due.next() if due is not None else quarter_of(now.date())
    return str(upcoming), upcoming.starts_at(day=day, hour=hour, tz=tz)


def upcoming(*, session: Session, now: datetime) -> list[Upcoming]:
    """Every scheduled campaign's next run, soonest first, with what would keep it waiting."""
    period, starts_at = next_start(now)
    scheduled = session.scalars(
        select(Campaign)
        .where(Campaign.schedule == "quarterly", Campaign.state.in_(("draft", "approved", "active")))
        .order_by(Campaign.name)
    ).all()
    return [
        Upcoming(
            campaign_id=c.id,
            campaign=c.name,
            period=period,
            starts_at=starts_at,
            problem=campaigns.approval_problem(session=session, campaign=c, period=period),
        )
        for c in scheduled
    ]
