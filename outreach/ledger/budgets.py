"""Budgets: per year ('2027') or quarterly issue ('2027-Q1'), versioned, and what is committed against them.

Setting a budget again appends a version (history stays). A reservation for 2027-Q1 must fit the 2027-Q1
budget if one is set AND the 2027 budget if one is set (the year caps the sum of its quarters); at least one
must exist. What counts against a budget is what is committed: reservations less releases less refunds, plus
adjustments. Charges draw on the run's reservation, so they never count twice. A budget cannot be set below
what is already committed.

Races. Every reservation, budget change and adjustment of a campaign's year first locks that year's budget
row (SELECT ... FOR UPDATE on PostgreSQL; SQLite runs one writer at a time), so two runs cannot together
overspend.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from outreach.campaigns.models import Campaign
from outreach.campaigns.names import clean_name
from outreach.db import dialect_insert, utcnow
from outreach.errors import Conflict, NotFound
from outreach.i18n import _
from outreach.ledger.models import Budget, BudgetVersion, LedgerEntry
from outreach.ledger.rates import Price
from outreach.ledger.schemas import BudgetLine
from outreach.ledger.sql import fen_sums, fen_values
from outreach.money import check_amount, format_fen
from outreach.periods import normalise_period, parse_period, year_periods


def campaign_of(session: Session, campaign_id: int) -> Campaign:
    """The campaign with this id (NotFound otherwise)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(_("no campaign with id {id}", id=campaign_id))
    return campaign


def lock_year(session: Session, campaign_id: int, year: str) -> Budget:
    """Takes the lock of a campaign's year: its year budget row, created (without an amount) if missing."""
    insert = dialect_insert(session)
    session.execute(
        insert(Budget)
        .values(campaign_id=campaign_id, period=year, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["campaign_id", "period"])
    )
    return session.scalars(
        select(Budget)
        .where(Budget.campaign_id == campaign_id, Budget.period == year)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def budget_amount(session: Session, campaign_id: int, period: str) -> int | None:
    """The amount in force of a campaign's budget for a period (None when none is set)."""
    return session.scalar(
        select(BudgetVersion.amount_fen)
        .join(Budget)
        .where(Budget.campaign_id == campaign_id, Budget.period == period)
        .order_by(BudgetVersion.id.desc())
        .limit(1)
    )


# What counts against a budget: reservations less releases less refunds, plus adjustments.
_COMMITTED = case(
    (LedgerEntry.kind.in_(("reserve", "adjust")), LedgerEntry.amount_fen),
    (LedgerEntry.kind.in_(("release", "refund")), -LedgerEntry.amount_fen),
    else_=0,
)


def committed(*, session: Session, campaign_id: int, periods: Iterable[str]) -> int:
    """What is committed against a campaign's budgets in the given periods, in fen."""
    row = session.execute(
        select(*fen_sums(session, _COMMITTED)).where(
            LedgerEntry.campaign_id == campaign_id, LedgerEntry.period.in_(list(periods))
        )
    ).one()
    return fen_values(session, row)[0]


def scope_of(period: str) -> list[str]:
    """The periods a budget for `period` covers: a quarter itself, or a year and its quarters."""
    year, quarter = parse_period(period)
    return [period] if quarter is not None else year_periods(year)


@dataclass(frozen=True)
class Limit:
    """One budget a spend must fit, and what is committed against it."""

    period: str
    budget_fen: int
    committed_fen: int

    @property
    def left_fen(self) -> int:
        return self.budget_fen - self.committed_fen


def limits(session: Session, campaign_id: int, period: str) -> list[Limit]:
    """The budgets a spend in `period` must fit: the quarter's own (if set), then the year's (if set)."""
    year, quarter = parse_period(period)
    out = []
    if quarter is not None:
        amount = budget_amount(session, campaign_id, period)
        if amount is not None:
            out.append(
                Limit(period, amount, committed(session=session, campaign_id=campaign_id, periods=[period]))
            )
    amount = budget_amount(session, campaign_id, year)
    if amount is not None:
        spent = committed(session=session, campaign_id=campaign_id, periods=year_periods(year))
        out.append(Limit(year, amount, spent))
    return out


def set_budget(
    *, session: Session, campaign_id: int, period: str, amount_fen: int, reason: str | None = None
) -> Budget:
    """Sets (raises or lowers) a campaign's budget for a period by appending a version."""
    campaign = campaign_of(session, campaign_id)
    period = normalise_period(period)  # stored in its one form: 2027年第一季度 -> 2027-Q1
    year, _quarter = parse_period(period)
    check_amount(amount_fen, what=_("budget"), allow_negative=False)
    if reason is not None:
        reason = clean_name(reason, what=_("reason"), max_length=500, multiline=True)
    lock_year(session, campaign_id, year)
    already = committed(session=session, campaign_id=campaign_id, periods=scope_of(period))
    if amount_fen < already:
        raise Conflict(
            _(
                "campaign {campaign}: a {period} budget of {amount} is below what is already committed"
                " ({committed})",
                campaign=campaign.name,
                period=period,
                amount=format_fen(amount_fen),
                committed=format_fen(already),
            )
        )
    insert = dialect_insert(session)
    session.execute(
        insert(Budget)
        .values(campaign_id=campaign_id, period=period, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["campaign_id", "period"])
    )
    budget = session.scalars(
        select(Budget)
        .where(Budget.campaign_id == campaign_id, Budget.period == period)
        .execution_options(populate_existing=True)
    ).one()
    session.add(BudgetVersion(budget_id=budget.id, amount_fen=amount_fen, reason=reason))
    session.flush()
    session.refresh(budget)
    return budget


def budgets(*, session: Session, campaign_id: int) -> list[Budget]:
    """Lists a campaign's budgets that have an amount, by period."""
    rows = session.scalars(
        select(Budget).where(Budget.campaign_id == campaign_id).order_by(Budget.period)
    ).all()
    return [b for b in rows if b.versions]


def budget_lines(*, session: Session, campaign_id: int) -> list[BudgetLine]:
    """A campaign's budgets with what is committed against each and what is left."""
    campaign_of(session, campaign_id)
    return [
        BudgetLine(
            period=b.period,
            budget_fen=b.amount_fen or 0,
            committed_fen=committed(session=session, campaign_id=campaign_id, periods=scope_of(b.period)),
            versions=len(b.versions),
            last_reason=b.versions[-1].reason,
        )
        for b in budgets(session=session, campaign_id=campaign_id)
    ]


def over_message(
    campaign: Campaign, what: str, limit: Limit, amount_fen: int, pieces: int, price: Price, parts: int
) -> str:
    """Why a spend does not fit a budget, and what would: fewer pieces or a larger budget."""
    over = limit.committed_fen + amount_fen - limit.budget_fen
    unit = price.piece_net(parts)
    room = limit.left_fen - price.fixed_net_fen
    fit = max(0, min(pieces, room // unit)) if unit > 0 else pieces
    return _(
        "{what} of campaign {campaign} would overspend the {period} budget ({budget}, {left} left) by "
        "{over}: it would take {fewer:,} fewer pieces (at most {fit:,}) or a {period} budget of {needed}",
        what=what,
        campaign=campaign.name,
        period=limit.period,
        budget=format_fen(limit.budget_fen),
        left=format_fen(max(limit.left_fen, 0)),
        over=format_fen(over),
        fewer=pieces - fit,
        fit=fit,
        needed=format_fen(limit.budget_fen + over),
    )
