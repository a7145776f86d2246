"""The ledger's service functions: rate cards, budgets, and reserve / charge / release / refund / adjust.

Pricing. A run pays, per piece, the channel's unit price (a letter piece, or an SMS part times the parts)
plus the rate card's per-piece fees, and once per run its fixed fees (design). A waived fee is booked at list
price and as waived (list - waived = net), so statements show what the offer saved. A run is priced by the
rate card version in force (for campaign.rate_card_code) on the run's creation date, frozen in
run.rate_card_id at reservation; later versions never reprice it.

Budgets. A budget is set for a year ('2027') or a quarterly issue ('2027-Q1'); setting it again appends a
version (history stays). A reservation for 2027-Q1 must fit the 2027-Q1 budget if one is set AND the 2027
budget if one is set (the year caps the sum of its quarters); at least one must exist. What counts against a
budget is what is committed: reservations less releases less refunds, plus adjustments. Charges draw on the
run's reservation, so they never count twice. A budget cannot be set below what is already committed.

Races. Every reservation, budget change and adjustment of a campaign's year first locks that year's budget
row (SELECT ... FOR UPDATE on PostgreSQL; SQLite runs one writer at a time), so two runs cannot together
overspend. Charges take a shared lock on the run's reserve entry and release an exclusive one, so no charge
lands after the unused reservation was released. Charges are bounded per piece: units <= the parts reserved
per piece, and the piece must belong to the run (whose piece count the reservation froze).

Entries are append-only; (run, piece, kind) is unique, so retried charges, releases and refunds are no-ops.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, case, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from outreach.campaigns.models import Campaign
from outreach.db import UTCDateTime, utcnow
from outreach.errors import BudgetExceeded, Conflict, InputError, NotFound, StateError
from outreach.ledger.models import RUN_LEVEL, Budget, BudgetVersion, LedgerEntry, RateCard, RateCardFee
from outreach.ledger.schemas import (
    AdjustmentLine,
    Estimate,
    FeeCost,
    FeeLine,
    QuarterLine,
    RunBalance,
    RunLine,
    Statement,
)
from outreach.money import format_fen
from outreach.periods import local_date, normalise_period, parse_period, quarter_of, year_periods
from outreach.runs.models import Piece, Run

CHARGE_CHUNK = 5000

# Heavy SQL, named here. Each charges one chunk of pieces in ONE statement; the unique key
# (run_id, piece_id, kind) makes a retried chunk insert nothing, and rowcount says how many were new.
CHARGE_CHUNK_SQL_POSTGRES = """
WITH chunk AS (
    SELECT * FROM unnest(CAST(:piece_ids AS bigint[]), CAST(:units AS integer[])) AS c(piece_id, units)
), valid AS (
    SELECT chunk.piece_id, chunk.units
    FROM chunk JOIN pieces p ON p.id = chunk.piece_id AND p.run_id = :run_id
), inserted AS (
    INSERT INTO ledger_entries (campaign_id, run_id, piece_id, kind, period, pieces, units,
                                list_fen, waived_fen, amount_fen, created_at)
    SELECT :campaign_id, :run_id, v.piece_id, 'charge', :period, 1, v.units,
           v.units * :rate_fen + :fee_list_fen, :fee_waived_fen,
           v.units * :rate_fen + :fee_list_fen - :fee_waived_fen, :now
    FROM valid AS v
    -- All or nothing: a chunk naming a piece of another run inserts no row at all.
    WHERE (SELECT count(*) FROM valid) = (SELECT count(*) FROM chunk)
    ON CONFLICT (run_id, piece_id, kind) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM valid) AS valid, (SELECT count(*) FROM inserted) AS new
"""
# SQLite has no arrays: the chunk travels as one JSON text of [piece_id, units] pairs. `WHERE true` is
# SQLite's documented way to let ON CONFLICT follow INSERT ... SELECT.
CHARGE_CHUNK_SQL_SQLITE = """
INSERT INTO ledger_entries
    (campaign_id, run_id, piece_id, kind, period, pieces, units, list_fen, waived_fen, amount_fen, created_at)
SELECT :campaign_id, :run_id, json_extract(c.value, '$[0]'), 'charge', :period, 1,
       json_extract(c.value, '$[1]'),
       json_extract(c.value, '$[1]') * :rate_fen + :fee_list_fen, :fee_waived_fen,
       json_extract(c.value, '$[1]') * :rate_fen + :fee_list_fen - :fee_waived_fen, :now
FROM json_each(:charges) AS c WHERE true
ON CONFLICT (run_id, piece_id, kind) DO NOTHING
"""
# SQLite: how many of a chunk's piece ids belong to the run (a charge for another run's piece is refused).
PIECES_OF_RUN_SQL_SQLITE = (
    "SELECT count(*) FROM pieces WHERE run_id = :run_id AND id IN (SELECT value FROM json_each(:piece_ids))"
)


# --- periods and dates -------------------------------------------------------------------------------

# --- rate cards --------------------------------------------------------------------------------------


def rate_card_in_force(*, session: Session, code: str, on: date) -> RateCard:
    """Gets the rate card version in force on a date (NotFound if none)."""
    card = session.scalars(
        select(RateCard)
        .where(RateCard.code == code, RateCard.effective_from <= on)
        .order_by(RateCard.effective_from.desc(), RateCard.version.desc())
        .limit(1)
    ).first()
    if card is not None:
        return card
    first = session.scalar(select(func.min(RateCard.effective_from)).where(RateCard.code == code))
    if first is None:
        raise NotFound(f"no rate card {code!r}; set one with `outreach ledger rates set {code} ...`")
    raise NotFound(
        f"rate card {code!r} is not in force on {on.isoformat()} (its first version is from {first})"
    )


def rate_card_versions(*, session: Session, code: str | None = None) -> list[RateCard]:
    """Lists rate card versions (of one code, or all), oldest first."""
    query = select(RateCard).order_by(RateCard.code, RateCard.effective_from, RateCard.version)
    if code is not None:
        query = query.where(RateCard.code == code)
    return list(session.scalars(query))


def set_rate_card(
    *,
    session: Session,
    code: str,
    effective_from: date,
    letter_fen: int,
    sms_part_fen: int,
    fees: Sequence[FeeLine] = (),
    refund_undeliverable: bool = False,
    note: str | None = None,
) -> RateCard:
    """Adds a new version of a rate card, in force from `effective_from`."""
    code = code.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,50}", code):
        raise InputError(f"rate card code {code!r}: use 1-50 letters, digits, '-', '_' or '.'")
    for label, value in (("letter price", letter_fen), ("SMS part price", sms_part_fen)):
        if not isinstance(value, int) or value < 0:
            raise InputError(f"rate card {code}: {label} must be a whole number of fen >= 0, got {value!r}")
    seen: set[str] = set()
    for fee in fees:
        name = fee.name.strip()
        if not name or name in seen:
            raise InputError(f"rate card {code}: fee name {fee.name!r} is empty or given twice")
        seen.add(name)
        if (fee.per_piece_fen is None) == (fee.fixed_fen is None):
            raise InputError(f"rate card {code}: fee {name} needs exactly one of per-piece or fixed price")
        price = fee.per_piece_fen if fee.per_piece_fen is not None else fee.fixed_fen
        if price is None or price < 0:
            raise InputError(f"rate card {code}: fee {name} must not be negative")
    version = (session.scalar(select(func.max(RateCard.version)).where(RateCard.code == code)) or 0) + 1
    card = RateCard(
        code=code,
        version=version,
        effective_from=effective_from,
        letter_fen=letter_fen,
        sms_part_fen=sms_part_fen,
        refund_undeliverable=refund_undeliverable,
        note=note,
    )
    card.fees = [
        RateCardFee(
            position=i,
            name=fee.name.strip(),
            per_piece_fen=fee.per_piece_fen,
            fixed_fen=fee.fixed_fen,
            waived=fee.waived,
        )
        for i, fee in enumerate(fees)
    ]
    session.add(card)
    session.flush()
    return card


@dataclass(frozen=True)
class _Price:
    """A rate card applied to a channel: the one place that knows the fee arithmetic."""

    rate_fen: int  # per unit: a letter piece, or one SMS part
    per_piece_list_fen: int
    per_piece_waived_fen: int
    fixed_list_fen: int
    fixed_waived_fen: int

    def piece_list(self, units: int) -> int:
        return units * self.rate_fen + self.per_piece_list_fen

    def piece_net(self, units: int) -> int:
        return self.piece_list(units) - self.per_piece_waived_fen

    def run_net(self, pieces: int, parts: int) -> int:
        return pieces * self.piece_net(parts) + self.fixed_list_fen - self.fixed_waived_fen


def _price(card: RateCard, channel: str) -> _Price:
    per_piece = [f for f in card.fees if f.per_piece_fen is not None]
    fixed = [f for f in card.fees if f.fixed_fen is not None]
    return _Price(
        rate_fen=card.letter_fen if channel == "letter" else card.sms_part_fen,
        per_piece_list_fen=sum(f.per_piece_fen or 0 for f in per_piece),
        per_piece_waived_fen=sum(f.per_piece_fen or 0 for f in per_piece if f.waived),
        fixed_list_fen=sum(f.fixed_fen or 0 for f in fixed),
        fixed_waived_fen=sum(f.fixed_fen or 0 for f in fixed if f.waived),
    )


def _check_parts(channel: str, parts: int) -> None:
    if parts < 1 or (channel == "letter" and parts != 1):
        raise InputError(f"parts per piece {parts}: a letter is 1 unit, an SMS 1 or more parts")


# --- budgets -----------------------------------------------------------------------------------------


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign with id {campaign_id}")
    return campaign


def campaign_by_name(*, session: Session, name: str) -> Campaign:
    """Gets a campaign by its name (or, for digits, its id)."""
    campaign = session.scalars(select(Campaign).where(Campaign.name == name.strip())).first()
    if campaign is None and name.strip().isdigit():
        campaign = session.get(Campaign, int(name))
    if campaign is None:
        known = list(session.scalars(select(Campaign.name).order_by(Campaign.name).limit(10)))
        hint = f"; campaigns: {', '.join(known)}" if known else "; there are no campaigns yet"
        raise NotFound(f"no campaign named {name!r}{hint}")
    return campaign


def _dialect_insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _lock_year(session: Session, campaign_id: int, year: str) -> Budget:
    """Takes the lock of a campaign's year: its year budget row, created (without an amount) if missing."""
    insert = _dialect_insert(session)
    session.execute(
        insert(Budget)
        .values(campaign_id=campaign_id, period=year, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["campaign_id", "period"])
    )
    budget = session.scalars(
        select(Budget)
        .where(Budget.campaign_id == campaign_id, Budget.period == year)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return budget


def _budget(session: Session, campaign_id: int, period: str) -> Budget | None:
    return session.scalars(
        select(Budget)
        .where(Budget.campaign_id == campaign_id, Budget.period == period)
        .execution_options(populate_existing=True)
    ).first()


def _budget_amount(session: Session, campaign_id: int, period: str) -> int | None:
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
    total = session.scalar(
        select(func.coalesce(func.sum(_COMMITTED), 0)).where(
            LedgerEntry.campaign_id == campaign_id, LedgerEntry.period.in_(list(periods))
        )
    )
    return int(total or 0)


@dataclass(frozen=True)
class _Limit:
    period: str
    budget_fen: int
    committed_fen: int

    @property
    def left_fen(self) -> int:
        return self.budget_fen - self.committed_fen


def _limits(session: Session, campaign_id: int, period: str) -> list[_Limit]:
    """The budgets a spend in `period` must fit: the quarter's own (if set), then the year's (if set)."""
    year, quarter = parse_period(period)
    limits = []
    if quarter is not None:
        amount = _budget_amount(session, campaign_id, period)
        if amount is not None:
            limits.append(
                _Limit(period, amount, committed(session=session, campaign_id=campaign_id, periods=[period]))
            )
    amount = _budget_amount(session, campaign_id, year)
    if amount is not None:
        spent = committed(session=session, campaign_id=campaign_id, periods=year_periods(year))
        limits.append(_Limit(year, amount, spent))
    return limits


def set_budget(
    *, session: Session, campaign_id: int, period: str, amount_fen: int, reason: str | None = None
) -> Budget:
    """Sets (raises or lowers) a campaign's budget for a period by appending a version."""
    campaign = _campaign(session, campaign_id)
    period = normalise_period(period)
    year, quarter = parse_period(period)
    if not isinstance(amount_fen, int) or amount_fen < 0:
        raise InputError(f"budget {amount_fen!r}: must be a whole number of fen >= 0")
    _lock_year(session, campaign_id, year)
    scope = [period] if quarter is not None else year_periods(year)
    already = committed(session=session, campaign_id=campaign_id, periods=scope)
    if amount_fen < already:
        raise Conflict(
            f"campaign {campaign.name}: a {period} budget of {format_fen(amount_fen)} is below what is "
            f"already committed ({format_fen(already)})"
        )
    insert = _dialect_insert(session)
    session.execute(
        insert(Budget)
        .values(campaign_id=campaign_id, period=period, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["campaign_id", "period"])
    )
    budget = _budget(session, campaign_id, period)
    assert budget is not None
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


def _over_message(
    campaign: Campaign, what: str, limit: _Limit, amount_fen: int, pieces: int, price: _Price, parts: int
) -> str:
    over = limit.committed_fen + amount_fen - limit.budget_fen
    unit = price.piece_net(parts)
    fixed = price.fixed_list_fen - price.fixed_waived_fen
    room = limit.left_fen - fixed
    fit = max(0, min(pieces, room // unit)) if unit > 0 else pieces
    return (
        f"{what} of campaign {campaign.name} would overspend the {limit.period} budget "
        f"({format_fen(limit.budget_fen)}, {format_fen(max(limit.left_fen, 0))} left) by {format_fen(over)}: "
        f"it would take {pieces - fit:,} fewer pieces (at most {fit:,}) "
        f"or a {limit.period} budget of {format_fen(limit.budget_fen + over)}"
    )


# --- estimate and reservation ------------------------------------------------------------------------


def estimate(
    *,
    session: Session,
    campaign_id: int,
    period: str,
    pieces: int,
    channel: str,
    parts_per_piece: int = 1,
    on: date | None = None,
) -> Estimate:
    """Estimates a run's cost (list, waived, net) and what it leaves of the budget."""
    _campaign(session, campaign_id)
    period = normalise_period(period)
    if channel not in ("letter", "sms"):
        raise InputError(f"channel {channel!r}: expected letter or sms")
    if pieces < 0:
        raise InputError(f"pieces {pieces}: must not be negative")
    _check_parts(channel, parts_per_piece)
    campaign = _campaign(session, campaign_id)
    card = rate_card_in_force(session=session, code=campaign.rate_card_code, on=on or local_date())
    price = _price(card, channel)
    fees = tuple(
        FeeCost(
            name=f.name,
            per_piece_fen=f.per_piece_fen,
            fixed_fen=f.fixed_fen,
            list_fen=pieces * f.per_piece_fen if f.per_piece_fen is not None else (f.fixed_fen or 0),
            waived=f.waived,
        )
        for f in card.fees
    )
    base = pieces * parts_per_piece * price.rate_fen
    list_total = base + sum(f.list_fen for f in fees)
    waived = sum(f.list_fen for f in fees if f.waived)
    total = list_total - waived
    limits = _limits(session, campaign_id, period)
    # The tightest budget governs what the planner is told.
    tight = min(limits, key=lambda lim: lim.left_fen - total) if limits else None
    return Estimate(
        campaign_id=campaign_id,
        period=period,
        channel=channel,
        pieces=pieces,
        parts_per_piece=parts_per_piece,
        units=pieces * parts_per_piece,
        rate_card_id=card.id,
        rate_card_code=card.code,
        rate_card_version=card.version,
        unit_price_fen=price.rate_fen,
        base_fen=base,
        fees=fees,
        list_fen=list_total,
        waived_fen=waived,
        total_fen=total,
        budget_period=tight.period if tight else None,
        budget_fen=tight.budget_fen if tight else None,
        committed_fen=tight.committed_fen if tight else 0,
        remaining_before_fen=tight.left_fen if tight else None,
        remaining_after_fen=tight.left_fen - total if tight else None,
        over_by_fen=max(0, total - tight.left_fen) if tight else total,
    )


def _run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run with id {run_id}")
    return run


def _entry(
    session: Session, run_id: int, kind: str, piece_id: int = RUN_LEVEL, lock: str = ""
) -> LedgerEntry | None:
    query = select(LedgerEntry).where(
        LedgerEntry.run_id == run_id, LedgerEntry.piece_id == piece_id, LedgerEntry.kind == kind
    )
    if lock:
        query = query.with_for_update(read=lock == "share")
    return session.scalars(query.execution_options(populate_existing=True)).first()


def _run_card(session: Session, run: Run, campaign: Campaign) -> RateCard:
    if run.rate_card_id is None:
        card = rate_card_in_force(
            session=session, code=campaign.rate_card_code, on=local_date(run.created_at)
        )
        run.rate_card_id = card.id
        session.flush()
        return card
    card_or_none = session.get(RateCard, run.rate_card_id)
    if card_or_none is None:
        raise NotFound(f"run {run.id}: rate card {run.rate_card_id} does not exist")
    return card_or_none


def reserve(*, session: Session, run_id: int, pieces: int, parts_per_piece: int = 1) -> LedgerEntry:
    """Reserves a run's cost against its budgets (BudgetExceeded if it would overspend); once per run."""
    run = _run(session, run_id)
    campaign = _campaign(session, run.campaign_id)
    year, _ = parse_period(run.period)
    if pieces < 0:
        raise InputError(f"run {run_id}: pieces {pieces} must not be negative")
    _check_parts(campaign.channel, parts_per_piece)
    card = _run_card(session, run, campaign)
    price = _price(card, campaign.channel)
    _lock_year(session, campaign.id, year)
    # Looked up only after the lock, so a racing reserve of the same run is seen here.
    existing = _entry(session, run_id, "reserve")
    if existing is not None:
        if existing.pieces != pieces or existing.units != pieces * parts_per_piece:
            raise Conflict(
                f"run {run_id} already reserved {existing.pieces:,} pieces ({existing.units:,} units); "
                "a reservation is never changed"
            )
        return existing
    amount = price.run_net(pieces, parts_per_piece)
    limits = _limits(session, campaign.id, run.period)
    if not limits:
        raise BudgetExceeded(
            f"campaign {campaign.name} has no budget for {run.period} or {year}: "
            f"this run needs {format_fen(amount)}; set one with `outreach ledger budget set`"
        )
    for limit in limits:
        if limit.committed_fen + amount > limit.budget_fen:
            raise BudgetExceeded(
                _over_message(
                    campaign, f"run {run_id} ({run.period})", limit, amount, pieces, price, parts_per_piece
                )
            )
    entry = LedgerEntry(
        campaign_id=campaign.id,
        run_id=run_id,
        piece_id=RUN_LEVEL,
        kind="reserve",
        period=run.period,
        pieces=pieces,
        units=pieces * parts_per_piece,
        list_fen=amount,
        waived_fen=0,
        amount_fen=amount,
    )
    session.add(entry)
    if price.fixed_list_fen:
        # Fixed fees (design) are owed once the run is approved: charged now, against the reservation.
        session.add(
            LedgerEntry(
                campaign_id=campaign.id,
                run_id=run_id,
                piece_id=RUN_LEVEL,
                kind="fee",
                period=run.period,
                list_fen=price.fixed_list_fen,
                waived_fen=price.fixed_waived_fen,
                amount_fen=price.fixed_list_fen - price.fixed_waived_fen,
            )
        )
    session.flush()
    return entry


# --- charges -----------------------------------------------------------------------------------------


def charge_bulk(*, session: Session, run_id: int, charges: Sequence[tuple[int, int]]) -> int:
    """Charges pieces (piece_id, units) of a run, one statement per chunk; returns how many were new."""
    if not charges:
        return 0
    run = _run(session, run_id)
    campaign = _campaign(session, run.campaign_id)
    # A shared lock: charges of many workers go together, while release() waits for them (and vice versa).
    reservation = _entry(session, run_id, "reserve", lock="share")
    if reservation is None:
        raise StateError(f"run {run_id} has no reservation; reserve() it before charging pieces")
    if _entry(session, run_id, "release") is not None:
        raise StateError(f"run {run_id} is closed: its unused reservation was released")
    card = _run_card(session, run, campaign)
    price = _price(card, campaign.channel)
    max_units = reservation.units // reservation.pieces if reservation.pieces else 1
    by_piece: dict[int, int] = {}
    for piece_id, units in charges:
        if piece_id <= RUN_LEVEL:
            raise InputError(f"run {run_id}: piece id {piece_id} is not a piece")
        if units < 1 or units > max_units or (campaign.channel == "letter" and units != 1):
            raise InputError(
                f"run {run_id}: piece {piece_id} charged {units} units; the reservation allows 1..{max_units}"
            )
        if by_piece.setdefault(piece_id, units) != units:
            raise InputError(f"run {run_id}: piece {piece_id} given twice with different units")
    items = list(by_piece.items())
    postgres = session.get_bind().dialect.name == "postgresql"
    new = 0
    bad = f"run {run_id}: some of pieces %s..%s are not pieces of this run; nothing of the chunk was charged"
    for start in range(0, len(items), CHARGE_CHUNK):
        chunk = items[start : start + CHARGE_CHUNK]
        ids = [p for p, _ in chunk]
        common = {
            "campaign_id": campaign.id,
            "run_id": run_id,
            "period": run.period,
            "rate_fen": price.rate_fen,
            "fee_list_fen": price.per_piece_list_fen,
            "fee_waived_fen": price.per_piece_waived_fen,
            "now": utcnow(),
        }
        if postgres:
            stmt = text(CHARGE_CHUNK_SQL_POSTGRES).bindparams(bindparam("now", type_=UTCDateTime()))
            valid, inserted = session.execute(
                stmt, {**common, "piece_ids": ids, "units": [u for _, u in chunk]}
            ).one()
            if valid != len(ids):
                raise InputError(bad % (ids[0], ids[-1]))
            new += int(inserted)
            continue
        found = session.execute(
            text(PIECES_OF_RUN_SQL_SQLITE), {"run_id": run_id, "piece_ids": json.dumps(ids)}
        )
        if found.scalar_one() != len(ids):
            raise InputError(bad % (ids[0], ids[-1]))
        stmt = text(CHARGE_CHUNK_SQL_SQLITE).bindparams(bindparam("now", type_=UTCDateTime()))
        result = session.execute(stmt, {**common, "charges": json.dumps(chunk)})
        new += int(getattr(result, "rowcount", 0) or 0)
    return new


def charge(*, session: Session, run_id: int, piece_id: int, units: int = 1) -> bool:
    """Charges one piece (units = 1 for a letter, its parts for an SMS); False if it was already charged."""
    return charge_bulk(session=session, run_id=run_id, charges=[(piece_id, units)]) == 1


def _charged_total(session: Session, run_id: int) -> tuple[int, int, int]:
    row = session.execute(
        select(
            func.coalesce(func.sum(LedgerEntry.amount_fen), 0),
            func.count().filter(LedgerEntry.kind == "charge"),
            func.coalesce(func.sum(LedgerEntry.units), 0),
        ).where(LedgerEntry.run_id == run_id, LedgerEntry.kind.in_(("charge", "fee")))
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def release(*, session: Session, run_id: int) -> LedgerEntry | None:
    """Releases what a run's reservation did not use (run end or cancel); None if nothing was reserved."""
    _run(session, run_id)
    reservation = _entry(session, run_id, "reserve", lock="update")
    if reservation is None:
        return None
    existing = _entry(session, run_id, "release")
    if existing is not None:
        return existing
    charged_fen, charged_pieces, charged_units = _charged_total(session, run_id)
    unused = reservation.amount_fen - charged_fen
    if unused < 0:  # pragma: no cover - charges are bounded per piece; this guards the invariant
        raise StateError(f"run {run_id} charged {format_fen(charged_fen)}, more than it reserved")
    entry = LedgerEntry(
        campaign_id=reservation.campaign_id,
        run_id=run_id,
        piece_id=RUN_LEVEL,
        kind="release",
        period=reservation.period,
        pieces=max(0, reservation.pieces - charged_pieces),
        units=max(0, reservation.units - charged_units),
        list_fen=unused,
        waived_fen=0,
        amount_fen=unused,
    )
    session.add(entry)
    session.flush()
    return entry


def refund(*, session: Session, run_id: int, piece_id: int, reason: str) -> LedgerEntry | None:
    """Refunds a charged piece returned as undeliverable, if the run's offer refunds (else None)."""
    run = _run(session, run_id)
    campaign = _campaign(session, run.campaign_id)
    card = _run_card(session, run, campaign)
    if not card.refund_undeliverable:
        return None
    existing = _entry(session, run_id, "refund", piece_id)
    if existing is not None:
        return existing
    charged = _entry(session, run_id, "charge", piece_id)
    if charged is None:
        raise StateError(f"run {run_id}: piece {piece_id} was never charged, so it cannot be refunded")
    entry = LedgerEntry(
        campaign_id=charged.campaign_id,
        run_id=run_id,
        piece_id=piece_id,
        kind="refund",
        period=charged.period,
        pieces=1,
        units=charged.units,
        list_fen=charged.list_fen,
        waived_fen=charged.waived_fen,
        amount_fen=charged.amount_fen,
        reason=reason,
    )
    session.add(entry)
    session.flush()
    return entry


def adjust(
    *, session: Session, campaign_id: int, amount_fen: int, reason: str, period: str | None = None
) -> LedgerEntry:
    """Books a finance adjustment (+ cost, - credit) with a reason; default period: this quarter."""
    _campaign(session, campaign_id)
    if not reason or not reason.strip():
        raise InputError("an adjustment needs a reason")
    if not isinstance(amount_fen, int) or amount_fen == 0:
        raise InputError(f"adjustment {amount_fen!r}: must be a non-zero whole number of fen")
    period = normalise_period(period or str(quarter_of(local_date())))
    year, _ = parse_period(period)
    _lock_year(session, campaign_id, year)
    entry = LedgerEntry(
        campaign_id=campaign_id,
        run_id=None,
        piece_id=RUN_LEVEL,
        kind="adjust",
        period=period,
        list_fen=amount_fen,
        waived_fen=0,
        amount_fen=amount_fen,
        reason=reason.strip(),
    )
    session.add(entry)
    session.flush()
    return entry


# --- balances and statements -------------------------------------------------------------------------


def _sums_by_run(session: Session, where: list[Any]) -> dict[int, dict[str, tuple[int, int, int, int, int]]]:
    """Per run and kind: (amount, pieces, units, list, waived)."""
    rows = session.execute(
        select(
            LedgerEntry.run_id,
            LedgerEntry.kind,
            func.sum(LedgerEntry.amount_fen),
            func.sum(LedgerEntry.pieces),
            func.sum(LedgerEntry.units),
            func.sum(LedgerEntry.list_fen),
            func.sum(LedgerEntry.waived_fen),
        )
        .where(LedgerEntry.run_id.is_not(None), *where)
        .group_by(LedgerEntry.run_id, LedgerEntry.kind)
    ).all()
    out: dict[int, dict[str, tuple[int, int, int, int, int]]] = {}
    for run_id, kind, amount, pieces, units, list_fen, waived in rows:
        out.setdefault(int(run_id or 0), {})[kind] = (
            int(amount or 0),
            int(pieces or 0),
            int(units or 0),
            int(list_fen or 0),
            int(waived or 0),
        )
    return out


def _balance_of(run_id: int, kinds: dict[str, tuple[int, int, int, int, int]]) -> RunBalance:
    zero = (0, 0, 0, 0, 0)
    reserve_, charge_, fee_ = kinds.get("reserve", zero), kinds.get("charge", zero), kinds.get("fee", zero)
    release_, refund_ = kinds.get("release", zero), kinds.get("refund", zero)
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
    )


def balance(*, session: Session, run_id: int) -> RunBalance:
    """Where a run's money stands: reserved, charged, released, refunded, outstanding."""
    _run(session, run_id)
    return _balance_of(run_id, _sums_by_run(session, [LedgerEntry.run_id == run_id]).get(run_id, {}))


def _spent_by_period(session: Session, campaign_id: int, periods: list[str]) -> dict[str, int]:
    """Net spend (charges + fees - refunds + adjustments) per period."""
    spent = case(
        (LedgerEntry.kind.in_(("charge", "fee", "adjust")), LedgerEntry.amount_fen),
        (LedgerEntry.kind == "refund", -LedgerEntry.amount_fen),
        else_=0,
    )
    rows = session.execute(
        select(LedgerEntry.period, func.sum(spent))
        .where(LedgerEntry.campaign_id == campaign_id, LedgerEntry.period.in_(periods))
        .group_by(LedgerEntry.period)
    ).all()
    return {str(p): int(s or 0) for p, s in rows}


def statement(*, session: Session, campaign_id: int, period: str | None = None) -> Statement:
    """A campaign's statement for a period (a quarter, a year, or everything when None)."""
    campaign = _campaign(session, campaign_id)
    if period is not None:
        period = normalise_period(period)
        year, quarter = parse_period(period)
        periods = [period] if quarter is not None else year_periods(year)
    else:
        all_periods = session.scalars(
            select(LedgerEntry.period).where(LedgerEntry.campaign_id == campaign_id).distinct()
        ).all()
        budget_periods = [b.period for b in budgets(session=session, campaign_id=campaign_id)]
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
    if (
        period is not None
        and quarter is not None
        and _budget_amount(session, campaign_id, period) is not None
    ):
        budget_period, opening = period, _budget_amount(session, campaign_id, period)
    elif period is not None:
        year_amount = _budget_amount(session, campaign_id, year)
        if year_amount is not None:
            budget_period = year
            earlier = [f"{year}-Q{q}" for q in range(1, quarter)] if quarter is not None else []
            opening = year_amount - sum(_spent_by_period(session, campaign_id, earlier).values())
    else:
        amounts = [
            b.amount_fen for b in budgets(session=session, campaign_id=campaign_id) if len(b.period) == 4
        ]
        if amounts:
            opening = sum(a for a in amounts if a is not None)
            budget_period = "all years"
    spent = _spent_by_period(session, campaign_id, year_periods(year))
    quarters = [
        QuarterLine(
            label=f"Q{q}",
            budget_fen=_budget_amount(session, campaign_id, f"{year}-Q{q}"),
            spent_fen=spent.get(f"{year}-Q{q}", 0),
        )
        for q in range(1, 5)
    ]
    quarters.append(
        QuarterLine(
            label=year, budget_fen=_budget_amount(session, campaign_id, year), spent_fen=sum(spent.values())
        )
    )
    return Statement(
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
    )


def produced_pieces(*, session: Session, run_id: int) -> int:
    """How many pieces of a run exist (what reconciliation compares charges with)."""
    return int(session.scalar(select(func.count()).select_from(Piece).where(Piece.run_id == run_id)) or 0)
