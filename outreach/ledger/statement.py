"""Where a run's money stands (balance) and a campaign's statement for a period, computed from entries.

How a statement is shown (terminal, CSV, PDF) lives in `outreach.ledger.documents`; its three functions are
also importable from here, where callers have always found them, without this module loading Rich or the
renderer until one is asked for.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from outreach.db import utcnow
from outreach.i18n import _
from outreach.ledger import budgets
from outreach.ledger.entries import run_of
from outreach.ledger.models import LedgerEntry
from outreach.ledger.schemas import AdjustmentLine, QuarterLine, RunBalance, RunLine, Statement
from outreach.ledger.sql import fen_sums, fen_values
from outreach.periods import local_date, normalise_period, parse_period, year_periods
from outreach.runs.models import Run

__all__ = ["balance", "statement"]
_DOCUMENTS = ("rich_statement", "write_statement_csv", "write_statement_pdf")


def __getattr__(name: str) -> Any:
    if name in _DOCUMENTS:
        from outreach.ledger import documents

        return getattr(documents, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Per run and kind: (amount, pieces, units, list, waived).
_Sums = tuple[int, int, int, int, int]
_ZERO: _Sums = (0, 0, 0, 0, 0)


def _sums_by_run(session: Session, where: list[Any]) -> dict[int, dict[str, _Sums]]:
    """Per run and kind: (amount, pieces, units, list, waived)."""
    rows = session.execute(
        select(
            LedgerEntry.run_id,
            LedgerEntry.kind,
            func.sum(LedgerEntry.pieces),
            func.sum(LedgerEntry.units),
            *fen_sums(session, LedgerEntry.amount_fen, LedgerEntry.list_fen, LedgerEntry.waived_fen),
        )
        .where(LedgerEntry.run_id.is_not(None), *where)
        .group_by(LedgerEntry.run_id, LedgerEntry.kind)
    ).all()
    out: dict[int, dict[str, _Sums]] = {}
    for row in rows:
        amount, list_fen, waived = fen_values(session, row[4:])
        out.setdefault(int(row[0] or 0), {})[row[1]] = (
            amount,
            int(row[2] or 0),
            int(row[3] or 0),
            list_fen,
            waived,
        )
    return out


def _balance_of(run_id: int, kinds: dict[str, _Sums]) -> RunBalance:
    reserve_, charge_, fee_ = kinds.get("reserve", _ZERO), kinds.get("charge", _ZERO), kinds.get("fee", _ZERO)
    release_, refund_ = kinds.get("release", _ZERO), kinds.get("refund", _ZERO)
    return RunBalance(
        run_id=run_id,
        reserved_fen=reserve_[0],
        reserved_pieces=reserve_[1],
        charged_fen=charge_[0],
        charged_pieces=charge_[1],
        charged_units=charge_[2],
        fees_fen=fee_[0],
        released_fen=release_[0],
        refunded_fen=refund_[0],
        refunded_pieces=refund_[1],
        list_fen=charge_[3] + fee_[3],
        waived_fen=charge_[4] + fee_[4],
        closed="release" in kinds,
        returned_pieces=kinds.get("return", _ZERO)[1],
    )


def balance(*, session: Session, run_id: int) -> RunBalance:
    """Where a run's money stands: reserved, charged, released, returned, refunded, outstanding."""
    run_of(session, run_id)
    return _balance_of(run_id, _sums_by_run(session, [LedgerEntry.run_id == run_id]).get(run_id, {}))


def _spent_by_period(session: Session, campaign_id: int, periods: list[str]) -> dict[str, int]:
    """Net spend (charges + fees - refunds + adjustments) per period."""
    spent = case(
        (LedgerEntry.kind.in_(("charge", "fee", "adjust")), LedgerEntry.amount_fen),
        (LedgerEntry.kind == "refund", -LedgerEntry.amount_fen),
        else_=0,
    )
    rows = session.execute(
        select(LedgerEntry.period, *fen_sums(session, spent))
        .where(LedgerEntry.campaign_id == campaign_id, LedgerEntry.period.in_(periods))
        .group_by(LedgerEntry.period)
    ).all()
    return {str(row[0]): fen_values(session, row[1:])[0] for row in rows}


def statement(*, session: Session, campaign_id: int, period: str | None = None) -> Statement:
    """A campaign's statement for a period (a quarter, a year, or everything when None)."""
    campaign = budgets.campaign_of(session, campaign_id)
    if period is not None:
        period = normalise_period(period)
        year, quarter = parse_period(period)
        periods = [period] if quarter is not None else year_periods(year)
    else:
        all_periods = session.scalars(
            select(LedgerEntry.period).where(LedgerEntry.campaign_id == campaign_id).distinct()
        ).all()
        budget_periods = [b.period for b in budgets.budgets(session=session, campaign_id=campaign_id)]
        years = sorted({p[:4] for p in [*all_periods, *budget_periods]})
        year, quarter = (years[-1] if years else str(local_date().year)), None
        periods = [p for y in years for p in year_periods(y)]
    in_scope = [LedgerEntry.campaign_id == campaign_id, LedgerEntry.period.in_(periods)]
    sums = _sums_by_run(session, in_scope)
    run_periods = {
        int(i): str(p) for i, p in session.execute(select(Run.id, Run.period).where(Run.id.in_(list(sums))))
    }
    lines = []
    for run_id in sorted(sums):
        b = _balance_of(run_id, sums[run_id])
        lines.append(
            RunLine(
                run_id=run_id,
                period=run_periods.get(run_id, ""),
                pieces=b.charged_pieces,
                units=b.charged_units,
                list_fen=b.list_fen,
                waived_fen=b.waived_fen,
                net_fen=b.charged_fen + b.fees_fen,
                returned_pieces=b.returned_pieces,
                refunded_pieces=b.refunded_pieces,
                refunded_fen=b.refunded_fen,
                outstanding_fen=b.outstanding_fen,
            )
        )
    adjustments = tuple(
        AdjustmentLine(
            entry_id=e.id,
            period=e.period,
            amount_fen=e.amount_fen,
            reason=e.reason or "",
            created=local_date(e.created_at).isoformat(),
        )
        for e in session.scalars(
            select(LedgerEntry).where(*in_scope, LedgerEntry.kind == "adjust").order_by(LedgerEntry.id)
        )
    )
    # Opening budget: the quarter's own budget, else what the year's budget has left after earlier periods.
    budget_period: str | None = None
    opening: int | None = None
    quarter_budget = (
        budgets.budget_amount(session, campaign_id, period) if quarter is not None and period else None
    )
    if quarter_budget is not None:
        budget_period, opening = period, quarter_budget
    elif period is not None:
        year_amount = budgets.budget_amount(session, campaign_id, year)
        if year_amount is not None:
            budget_period = year
            earlier = [f"{year}-Q{q}" for q in range(1, quarter)] if quarter is not None else []
            opening = year_amount - sum(_spent_by_period(session, campaign_id, earlier).values())
    else:
        amounts = [
            b.amount_fen
            for b in budgets.budgets(session=session, campaign_id=campaign_id)
            if len(b.period) == 4
        ]
        if amounts:
            opening = sum(a for a in amounts if a is not None)
            budget_period = _("all years")
    spent = _spent_by_period(session, campaign_id, year_periods(year))
    quarters = [
        QuarterLine(
            label=f"Q{q}",
            budget_fen=budgets.budget_amount(session, campaign_id, f"{year}-Q{q}"),
            spent_fen=spent.get(f"{year}-Q{q}", 0),
        )
        for q in range(1, 5)
    ]
    quarters.append(
        QuarterLine(
            label=year,
            budget_fen=budgets.budget_amount(session, campaign_id, year),
            spent_fen=sum(spent.values()),
        )
    )
    income = session.execute(
        select(*fen_sums(session, LedgerEntry.amount_fen)).where(*in_scope, LedgerEntry.kind == "income")
    ).one()
    return Statement(
        ad_income_fen=fen_values(session, income)[0],
        campaign_id=campaign_id,
        campaign_name=campaign.name,
        period=period,
        budget_period=budget_period,
        opening_fen=opening,
        runs=tuple(lines),
        adjustments=adjustments,
        list_fen=sum(r.list_fen for r in lines),
        waived_fen=sum(r.waived_fen for r in lines),
        net_fen=sum(r.net_fen for r in lines),
        refunded_fen=sum(r.refunded_fen for r in lines),
        adjusted_fen=sum(a.amount_fen for a in adjustments),
        outstanding_fen=sum(r.outstanding_fen for r in lines),
        year=year,
        quarters=tuple(quarters),
        generated_at=utcnow(),
    )
