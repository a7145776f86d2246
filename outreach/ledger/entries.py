"""Ledger entries: the estimate of a run, and reserve / charge / release / return / refund / adjust.

Entries are append-only; (run, piece, kind) is unique, so retried charges, releases, returns and refunds are
no-ops. Every amount comes from `rates.Price`. Charges take a shared lock on the run's reserve entry and
release an exclusive one, so no charge lands after the unused reservation was released. Charges are bounded
per piece: units <= the parts reserved per piece, and the piece must belong to the run (whose piece count the
reservation froze).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from outreach.campaigns.models import CHANNELS, Campaign
from outreach.campaigns.names import clean_name
from outreach.db import UTCDateTime, utcnow
from outreach.errors import BudgetExceeded, Conflict, InputError, NotFound, StateError
from outreach.i18n import _
from outreach.ledger import budgets, rates
from outreach.ledger.models import RUN_LEVEL, LedgerEntry, RateCard
from outreach.ledger.schemas import Estimate
from outreach.ledger.sql import (
    CHARGE_CHUNK,
    CHARGE_CHUNK_SQL_POSTGRES,
    CHARGE_CHUNK_SQL_SQLITE,
    PIECES_OF_RUN_SQL_SQLITE,
    fen_sums,
    fen_values,
)
from outreach.money import check_amount, format_fen
from outreach.periods import local_date, normalise_period, parse_period, quarter_of
from outreach.runs.models import Piece, Run


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
    """Estimates a run's cost (list, waived, net) and what it leaves of the budget.

    Priced with the card in force on the period's planned mailing date (`rates.pricing_date`), or on `on`.
    """
    campaign = budgets.campaign_of(session, campaign_id)
    period = normalise_period(period)
    if channel not in CHANNELS:
        raise InputError(_("channel {channel!r}: expected letter or sms", channel=channel))
    if pieces < 0:
        raise InputError(_("pieces {pieces}: must not be negative", pieces=pieces))
    rates.check_parts(channel, parts_per_piece)
    day = on or rates.pricing_date(period)
    card = rates.rate_card_in_force(session=session, code=campaign.rate_card_code, on=day)
    price = rates.price_of(card, channel)
    total = price.run_net(pieces, parts_per_piece)
    limits = budgets.limits(session, campaign_id, period)
    # The tightest budget governs what the planner is told.
    tight = min(limits, key=lambda lim: lim.left_fen - total) if limits else None
    return Estimate(
        campaign_id=campaign_id,
        period=period,
        channel=channel,
        pieces=pieces,
        parts_per_piece=parts_per_piece,
        units=pieces * parts_per_piece,
        priced_on=day.isoformat(),
        rate_card_id=card.id,
        rate_card_code=card.code,
        rate_card_version=card.version,
        unit_price_fen=price.rate_fen,
        base_fen=pieces * parts_per_piece * price.rate_fen,
        fees=price.fee_costs(pieces),
        list_fen=price.run_list(pieces, parts_per_piece),
        waived_fen=price.run_waived(pieces),
        total_fen=total,
        budget_period=tight.period if tight else None,
        budget_fen=tight.budget_fen if tight else None,
        committed_fen=tight.committed_fen if tight else 0,
        remaining_before_fen=tight.left_fen if tight else None,
        remaining_after_fen=tight.left_fen - total if tight else None,
        over_by_fen=max(0, total - tight.left_fen) if tight else total,
    )


def run_of(session: Session, run_id: int) -> Run:
    """The run with this id (NotFound otherwise)."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(_("no run with id {id}", id=run_id))
    return run


def entry_of(
    session: Session, run_id: int, kind: str, piece_id: int = RUN_LEVEL, lock: str = ""
) -> LedgerEntry | None:
    """A run's entry of one kind (for one piece), optionally locked ('share' or 'update')."""
    query = select(LedgerEntry).where(
        LedgerEntry.run_id == run_id, LedgerEntry.piece_id == piece_id, LedgerEntry.kind == kind
    )
    if lock:
        query = query.with_for_update(read=lock == "share")
    return session.scalars(query.execution_options(populate_existing=True)).first()


def run_card(session: Session, run: Run, campaign: Campaign) -> RateCard:
    """The rate card version a run is priced with, frozen on the run at its first use."""
    if run.rate_card_id is None:
        card = rates.rate_card_for_period(
            session=session, code=campaign.rate_card_code, period=run.period, today=local_date(run.created_at)
        )
        run.rate_card_id = card.id
        session.flush()
        return card
    card_or_none = session.get(RateCard, run.rate_card_id)
    if card_or_none is None:
        raise NotFound(_("run {run}: rate card {card} does not exist", run=run.id, card=run.rate_card_id))
    return card_or_none


def reserve(*, session: Session, run_id: int, pieces: int, parts_per_piece: int = 1) -> LedgerEntry:
    """Reserves a run's cost against its budgets (BudgetExceeded if it would overspend); once per run."""
    run = run_of(session, run_id)
    campaign = budgets.campaign_of(session, run.campaign_id)
    year, _quarter = parse_period(run.period)
    if pieces < 0:
        raise InputError(_("run {run}: pieces {pieces} must not be negative", run=run_id, pieces=pieces))
    rates.check_parts(campaign.channel, parts_per_piece)
    card = run_card(session, run, campaign)
    price = rates.price_of(card, campaign.channel)
    budgets.lock_year(session, campaign.id, year)
    # Looked up only after the lock, so a racing reserve of the same run is seen here.
    existing = entry_of(session, run_id, "reserve")
    if existing is not None:
        if existing.pieces != pieces or existing.units != pieces * parts_per_piece:
            raise Conflict(
                _(
                    "run {run} already reserved {pieces:,} pieces ({units:,} units); a reservation is never"
                    " changed",
                    run=run_id,
                    pieces=existing.pieces,
                    units=existing.units,
                )
            )
        return existing
    amount = price.run_net(pieces, parts_per_piece)
    limits = budgets.limits(session, campaign.id, run.period)
    if not limits:
        raise BudgetExceeded(
            _(
                "campaign {campaign} has no budget for {period} or {year}: this run needs {amount}; set one"
                " with `outreach ledger budget set`",
                campaign=campaign.name,
                period=run.period,
                year=year,
                amount=format_fen(amount),
            )
        )
    for limit in limits:
        if limit.committed_fen + amount > limit.budget_fen:
            what = _("run {run} ({period})", run=run_id, period=run.period)
            raise BudgetExceeded(
                budgets.over_message(campaign, what, limit, amount, pieces, price, parts_per_piece)
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
                amount_fen=price.fixed_net_fen,
            )
        )
    session.flush()
    return entry


def charge_bulk(*, session: Session, run_id: int, charges: Sequence[tuple[int, int]]) -> int:
    """Charges pieces (piece_id, units) of a run, one statement per chunk; returns how many were new."""
    if not charges:
        return 0
    run = run_of(session, run_id)
    campaign = budgets.campaign_of(session, run.campaign_id)
    # A shared lock: charges of many workers go together, while release() waits for them (and vice versa).
    reservation = entry_of(session, run_id, "reserve", lock="share")
    if reservation is None:
        raise StateError(_("run {run} has no reservation; reserve() it before charging pieces", run=run_id))
    if entry_of(session, run_id, "release") is not None:
        raise StateError(_("run {run} is closed: its unused reservation was released", run=run_id))
    price = rates.price_of(run_card(session, run, campaign), campaign.channel)
    max_units = reservation.units // reservation.pieces if reservation.pieces else 1
    by_piece: dict[int, int] = {}
    for piece_id, units in charges:
        if piece_id <= RUN_LEVEL:
            raise InputError(_("run {run}: piece id {piece} is not a piece", run=run_id, piece=piece_id))
        if units < 1 or units > max_units or (campaign.channel == "letter" and units != 1):
            raise InputError(
                _(
                    "run {run}: piece {piece} charged {units} units; the reservation allows 1..{max}",
                    run=run_id,
                    piece=piece_id,
                    units=units,
                    max=max_units,
                )
            )
        if by_piece.setdefault(piece_id, units) != units:
            raise InputError(
                _("run {run}: piece {piece} given twice with different units", run=run_id, piece=piece_id)
            )
    items = list(by_piece.items())
    # Units take few values (1 for letters, 1..max parts for SMS): each list price is computed once.
    list_of = {u: price.piece_list(u) for u in set(by_piece.values())}
    postgres = session.get_bind().dialect.name == "postgresql"
    new = 0
    for start in range(0, len(items), CHARGE_CHUNK):
        chunk = items[start : start + CHARGE_CHUNK]
        ids = [p for p, _u in chunk]
        bad = _(
            "run {run}: some of pieces {first}..{last} are not pieces of this run; nothing of the chunk was"
            " charged",
            run=run_id,
            first=ids[0],
            last=ids[-1],
        )
        common = {
            "campaign_id": campaign.id,
            "run_id": run_id,
            "period": run.period,
            "waived_fen": price.per_piece_waived_fen,
            "now": utcnow(),
        }
        if postgres:
            stmt = text(CHARGE_CHUNK_SQL_POSTGRES).bindparams(bindparam("now", type_=UTCDateTime()))
            params = {
                **common,
                "piece_ids": ids,
                "units": [u for _p, u in chunk],
                "list_fen": [list_of[u] for _p, u in chunk],
            }
            valid, inserted = session.execute(stmt, params).one()
            if valid != len(ids):
                raise InputError(bad)
            new += int(inserted)
            continue
        found = session.execute(
            text(PIECES_OF_RUN_SQL_SQLITE), {"run_id": run_id, "piece_ids": json.dumps(ids)}
        )
        if found.scalar_one() != len(ids):
            raise InputError(bad)
        stmt = text(CHARGE_CHUNK_SQL_SQLITE).bindparams(bindparam("now", type_=UTCDateTime()))
        triples = json.dumps([(p, u, list_of[u]) for p, u in chunk])
        result = session.execute(stmt, {**common, "charges": triples})
        new += int(getattr(result, "rowcount", 0) or 0)
    return new


def charge(*, session: Session, run_id: int, piece_id: int, units: int = 1) -> bool:
    """Charges one piece (units = 1 for a letter, its parts for an SMS); False if it was already charged."""
    return charge_bulk(session=session, run_id=run_id, charges=[(piece_id, units)]) == 1


def _charged_total(session: Session, run_id: int) -> tuple[int, int, int]:
    row = session.execute(
        select(
            func.count().filter(LedgerEntry.kind == "charge"),
            func.coalesce(func.sum(LedgerEntry.units), 0),
            *fen_sums(session, LedgerEntry.amount_fen),
        ).where(LedgerEntry.run_id == run_id, LedgerEntry.kind.in_(("charge", "fee")))
    ).one()
    return fen_values(session, row[2:])[0], int(row[0]), int(row[1])


def _book(
    session: Session,
    *,
    campaign_id: int,
    run_id: int | None,
    piece_id: int,
    kind: str,
    period: str,
    amount_fen: int,
    pieces: int = 0,
    units: int = 0,
    reason: str | None = None,
) -> LedgerEntry:
    """Adds one entry at its full amount (nothing waived) and flushes it."""
    entry = LedgerEntry(
        campaign_id=campaign_id,
        run_id=run_id,
        piece_id=piece_id,
        kind=kind,
        period=period,
        pieces=pieces,
        units=units,
        list_fen=amount_fen,
        waived_fen=0,
        amount_fen=amount_fen,
        reason=reason,
    )
    session.add(entry)
    session.flush()
    return entry


def release(*, session: Session, run_id: int) -> LedgerEntry | None:
    """Releases what a run's reservation did not use (run end or cancel); None if nothing was reserved."""
    run_of(session, run_id)
    reservation = entry_of(session, run_id, "reserve", lock="update")
    if reservation is None:
        return None
    existing = entry_of(session, run_id, "release")
    if existing is not None:
        return existing
    charged_fen, charged_pieces, charged_units = _charged_total(session, run_id)
    unused = reservation.amount_fen - charged_fen
    if unused < 0:  # pragma: no cover - charges are bounded per piece; this guards the invariant
        raise StateError(
            _("run {run} charged {amount}, more than it reserved", run=run_id, amount=format_fen(charged_fen))
        )
    return _book(
        session,
        campaign_id=reservation.campaign_id,
        run_id=run_id,
        piece_id=RUN_LEVEL,
        kind="release",
        period=reservation.period,
        amount_fen=unused,
        pieces=max(0, reservation.pieces - charged_pieces),
        units=max(0, reservation.units - charged_units),
    )


def record_return(*, session: Session, run_id: int, piece_id: int, reason: str) -> LedgerEntry | None:
    """Records an undeliverable piece (a letter the post returned, an SMS the gateway failed), and refunds it
    if the run's offer refunds undeliverable pieces.

    The return is a 'return' entry (no money) whatever the offer, so statements count returned pieces apart
    from refunds; the refund, if any, is a 'refund' entry, which is what this returns (None when the offer
    does not refund). Both are booked once per piece.
    """
    run = run_of(session, run_id)
    campaign = budgets.campaign_of(session, run.campaign_id)
    card = run_card(session, run, campaign)
    reason = clean_name(reason, what=_("reason"), max_length=500, multiline=True)
    charged = entry_of(session, run_id, "charge", piece_id)
    if card.refund_undeliverable and charged is None:
        raise StateError(
            _(
                "run {run}: piece {piece} was never charged, so it cannot be refunded",
                run=run_id,
                piece=piece_id,
            )
        )
    if entry_of(session, run_id, "return", piece_id) is None:
        session.add(
            LedgerEntry(
                campaign_id=campaign.id,
                run_id=run_id,
                piece_id=piece_id,
                kind="return",
                period=run.period,
                pieces=1,
                units=charged.units if charged is not None else 0,
                list_fen=0,
                waived_fen=0,
                amount_fen=0,
                reason=reason,
            )
        )
        session.flush()
    if not card.refund_undeliverable or charged is None:
        return None
    existing = entry_of(session, run_id, "refund", piece_id)
    if existing is not None:
        return existing
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


# The print shop's returns call it by this name.
refund = record_return


def record_ad_income(
    *, session: Session, run_id: int, booking_id: int, amount_fen: int, reason: str
) -> LedgerEntry:
    """Books a merchant's ad fee for the run's letters as income of the run's period, once per booking."""
    existing = entry_of(session, run_id, "income", booking_id)
    if existing is not None:
        return existing
    check_amount(amount_fen, what=_("ad fee"))
    run = run_of(session, run_id)
    return _book(
        session,
        campaign_id=run.campaign_id,
        run_id=run_id,
        piece_id=booking_id,
        kind="income",
        period=run.period,
        amount_fen=amount_fen,
        reason=reason,
    )


def adjust(
    *, session: Session, campaign_id: int, amount_fen: int, reason: str, period: str | None = None
) -> LedgerEntry:
    """Books a finance adjustment (+ cost, - credit) with a reason; default period: this quarter."""
    budgets.campaign_of(session, campaign_id)
    if not isinstance(reason, str) or not reason.strip():
        raise InputError(_("an adjustment needs a reason"))
    reason = clean_name(reason, what=_("reason"), max_length=500, multiline=True)
    check_amount(amount_fen, what=_("adjustment"))
    if amount_fen == 0:
        raise InputError(_("adjustment {amount}: must not be zero", amount=format_fen(0)))
    period = normalise_period(period or str(quarter_of(local_date())))
    year, _quarter = parse_period(period)
    budgets.lock_year(session, campaign_id, year)
    return _book(
        session,
        campaign_id=campaign_id,
        run_id=None,
        piece_id=RUN_LEVEL,
        kind="adjust",
        period=period,
        amount_fen=amount_fen,
        reason=reason,
    )


def produced_pieces(*, session: Session, run_id: int) -> int:
    """How many pieces of a run exist (what reconciliation compares charges with)."""
    return int(session.scalar(select(func.count()).select_from(Piece).where(Piece.run_id == run_id)) or 0)
