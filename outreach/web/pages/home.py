"""工作台 (the union's home page): this quarter's campaigns and their state, the next scheduled runs, budget
used and left per campaign, recent registry imports, and what needs a person (failed pieces, batches not
downloaded by their due date, returned mail, stalled runs).

Every figure comes from a service (campaigns, schedule, runs, ledger budgets, audiences.browse); the few
look-ups that no service has yet are plain reads named here, each bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences import browse
from audiences.models import Suppression
from outreach.accounts import permissions
from outreach.campaigns import schedule
from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.db import utcnow
from outreach.i18n import N_, _, translate
from outreach.ledger import budgets
from outreach.periods import local_date, quarter_of
from outreach.runs import service as runs
from outreach.runs.models import Batch, Piece, Run, RunEvent
from outreach.runs.states import run_state_label
from outreach.settings import get_settings
from outreach.web.dependencies import Principal
from outreach.web.pages.render import render

RUNNING = ("rendering", "assembling")
# How far back the page looks for things that need a person.
ATTENTION_DAYS = 30
MAX_ATTENTION = 20
RECENT_IMPORTS = 5
ROLE_LABELS = {
    "admin": N_("role: administrator"),
    "planner": N_("role: planner"),
    "approver": N_("role: approver"),
    "finance": N_("role: finance"),
}


@dataclass(frozen=True)
class CampaignLine:
    """One campaign as the home page shows it for this quarter."""

    id: int
    name: str
    channel: str
    state: str  # waiting | scheduled | running | done | cancelled | stalled | not_scheduled
    label: str
    why: str | None
    done: int
    total: int
    run_id: int | None


@dataclass(frozen=True)
class BudgetBar:
    """A campaign's budget for a period: committed and left, and the bar's length (of 100)."""

    campaign: str
    period: str
    budget_fen: int
    committed_fen: int
    left_fen: int
    length: float
    over: bool


@dataclass(frozen=True)
class Attention:
    """Something that needs a person: what, where to look."""

    text: str
    href: str | None


def _why_waiting(campaign: Campaign, period: str) -> str:
    """Why a campaign's period is not approved, in the planner's words (campaigns.approval_problem decides
    that it is not; this names which of its cases it is)."""
    if campaign.state not in ("approved", "active"):
        return _("the campaign has never been approved")
    if campaign.approved_period != period:
        return _(
            "the content for {period} is not approved yet (last approved: {approved})",
            period=period,
            approved=campaign.approved_period or "-",
        )
    return _("the campaign changed after its approval and needs approving again")


def _campaign_lines(session: Session, period: str) -> list[CampaignLine]:
    lines = []
    for c in campaigns.list_all(session=session):
        if c.state in ("finished", "cancelled"):
            continue
        run = runs.find(session=session, campaign=c, period=period)
        done = total = 0
        why = None
        if run is not None and run.state in RUNNING:
            status = runs.status(session=session, run_id=run.id, max_errors=0)
            state, label, done, total = "running", run_state_label(run.state), status.done, status.total
        elif run is not None and run.state == "waiting":
            state, label = "waiting", _("waiting for approval")
            why = (
                _why_waiting(c, period)
                if campaigns.approval_problem(session=session, campaign=c, period=period)
                else (run.note or None)
            )
        elif run is not None:
            state, label = run.state, run_state_label(run.state)
            done = total = run.piece_count
            why = run.note if run.state == "stalled" else None
        elif campaigns.approval_problem(session=session, campaign=c, period=period) is not None:
            state, label, why = "waiting", _("waiting for approval"), _why_waiting(c, period)
        elif c.schedule == "quarterly":
            state, label = "scheduled", _("approved, waiting for the schedule")
        else:
            state, label = "not_scheduled", _("approved, to be started by hand")
        lines.append(
            CampaignLine(c.id, c.name, c.channel, state, label, why, done, total, run.id if run else None)
        )
    return lines


def _budget_bars(session: Session, period: str) -> list[BudgetBar]:
    year = period.split("-")[0]
    bars = []
    for c in campaigns.list_all(session=session):
        if c.state in ("finished", "cancelled"):
            continue
        for line in budgets.budget_lines(session=session, campaign_id=c.id):
            if line.period not in (period, year):
                continue
            used = line.committed_fen
            length = 100.0 * min(used, line.budget_fen) / line.budget_fen if line.budget_fen else 100.0
            bars.append(
                BudgetBar(
                    campaign=c.name,
                    period=line.period,
                    budget_fen=line.budget_fen,
                    committed_fen=used,
                    left_fen=line.budget_fen - used,
                    length=length,
                    over=used > line.budget_fen,
                )
            )
    return bars


def _attention(session: Session, now: datetime) -> list[Attention]:
    """What needs a person: stalled runs, runs with failed pieces, batches not downloaded in time, returns."""
    since = now - timedelta(days=ATTENTION_DAYS)
    found: list[Attention] = []
    names = dict(session.execute(select(Campaign.id, Campaign.name)).all())
    stalled = session.scalars(
        select(Run).where(Run.state == "stalled").order_by(Run.id.desc()).limit(MAX_ATTENTION)
    ).all()
    for run in stalled:
        last = session.scalar(
            select(RunEvent.detail)
            .where(RunEvent.run_id == run.id, RunEvent.kind == "stalled")
            .order_by(RunEvent.id.desc())
            .limit(1)
        )
        found.append(
            Attention(
                _(
                    "run {run} of {campaign} ({period}) stalled: {reason}",
                    run=run.id,
                    campaign=names.get(run.campaign_id, "?"),
                    period=run.period,
                    reason=run.note or last or "-",
                ),
                f"/runs/{run.id}",
            )
        )
    recent = select(Run.id).where(Run.created_at >= since)
    failed = session.execute(
        select(Piece.run_id, func.count())
        .where(Piece.state == "failed", Piece.run_id.in_(recent))
        .group_by(Piece.run_id)
        .limit(MAX_ATTENTION)
    ).all()
    for run_id, n in failed:
        found_run = session.get(Run, run_id)
        assert found_run is not None
        found.append(
            Attention(
                _(
                    "run {run} of {campaign} ({period}): {n} pieces failed",
                    run=run_id,
                    campaign=names.get(found_run.campaign_id, "?"),
                    period=found_run.period,
                    n=n,
                ),
                f"/runs/{run_id}",
            )
        )
    due = now - timedelta(days=get_settings().batch_ack_days)
    late = session.execute(
        select(Batch.run_id, func.count())
        .join(Run, Batch.run_id == Run.id)
        .where(Batch.state == "ready", Run.finished_at.is_not(None), Run.finished_at < due)
        .group_by(Batch.run_id)
        .limit(MAX_ATTENTION)
    ).all()
    for run_id, n in late:
        found_run = session.get(Run, run_id)
        assert found_run is not None
        found.append(
            Attention(
                _(
                    "run {run} of {campaign}: {n} batches not downloaded within {days} days",
                    run=run_id,
                    campaign=names.get(found_run.campaign_id, "?"),
                    n=n,
                    days=get_settings().batch_ack_days,
                ),
                f"/runs/{run_id}",
            )
        )
    returned = session.scalar(
        select(func.count())
        .select_from(Suppression)
        .where(Suppression.reason == "returned_mail", Suppression.created_at >= since)
    )
    if returned:
        found.append(
            Attention(
                _(
                    "{n} letters came back as undeliverable in the last {days} days",
                    n=returned,
                    days=ATTENTION_DAYS,
                ),
                None,
            )
        )
    return found


def home_page(request: Request, session: Session, principal: Principal) -> Response:
    """The union's home page."""
    now = utcnow()
    period = str(quarter_of(local_date(now)))
    reads_registry = permissions.allowed(principal.role, "registry.read")
    return render(
        request,
        "home.html",
        principal=principal,
        section="home",
        role=translate(ROLE_LABELS[principal.role]) if principal.role in ROLE_LABELS else principal.role,
        period=period,
        campaigns=_campaign_lines(session, period),
        upcoming=schedule.upcoming(session=session, now=now),
        budgets=_budget_bars(session, period),
        imports=browse.recent_imports(session=session, limit=RECENT_IMPORTS) if reads_registry else (),
        reads_registry=reads_registry,
        attention=_attention(session, now),
        can_read_audit=permissions.allowed(principal.role, "audit.read"),
    )
