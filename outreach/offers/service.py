"""Offer service: merchants, bookings of ad slots per campaign period, what a run takes of them when its
pieces are frozen (codes, ad income) and rendered (booked artwork), and the counter's look-up of a code.

A merchant learns of a code only whether it is good for its own offer, and when it was used there: never the
name, unit or address of the woman who brought it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from outreach.accounts import audit
from outreach.accounts import service as accounts
from outreach.accounts.errors import Throttled
from outreach.accounts.models import Organisation
from outreach.campaigns.models import Campaign
from outreach.db import utcnow
from outreach.errors import Conflict, InputError, NotFound, StateError
from outreach.i18n import _
from outreach.ledger import entries as ledger_entries
from outreach.offers import codes
from outreach.offers.models import AdBooking, CodeLookupFailure, Redemption, RedemptionCode
from outreach.offers.slots import artwork_problems, slot_named, slots_of, with_artwork
from outreach.periods import local_date, parse_quarter
from outreach.render import Kit, KitOptions, load_kit_cached
from outreach.runs.models import Piece, Run
from outreach.settings import get_settings

MAX_ARTWORK_BYTES = 20 * 1024 * 1024
MAX_OFFER_TEXT = 200
# The guessing throttle: refused look-ups of codes that do not exist, per account, in a sliding window.
LOOKUP_WINDOW = timedelta(minutes=10)
MAX_UNKNOWN_LOOKUPS = 10
# Pieces whose letter left for the post (a failed piece was never printed, its code never seen).
MAILED_STATES = ("rendered", "submitted", "delivered")


# --- merchants -----------------------------------------------------------------------------------------


def add_merchant(
    *,
    session: Session,
    name: str,
    licence_no: str,
    address: str | None = None,
    contact: str | None = None,
    phone: str | None = None,
) -> Organisation:
    """Adds a merchant (an organisation of kind merchant); its licence number is the 统一社会信用代码."""
    if not licence_no or not licence_no.strip():
        raise InputError(_("a merchant needs its licence number (统一社会信用代码)"))
    return accounts.add_organisation(
        session=session,
        kind="merchant",
        name=name,
        address=address,
        contact=contact,
        phone=phone,
        licence_no=licence_no,
    )


def merchant_by_name(*, session: Session, name: str) -> Organisation:
    """The merchant called `name`; NotFound names the merchants there are."""
    try:
        return accounts.get_organisation_by_name(session=session, name=name, kind="merchant")
    except NotFound:
        known = [m.name for m in accounts.list_organisations(session=session, kind="merchant")[:20]]
        raise NotFound(
            _("no merchant named {name} (merchants: {known})", name=name, known=", ".join(known) or _("none"))
        ) from None


# --- bookings ------------------------------------------------------------------------------------------


def _kit(campaign: Campaign) -> Kit:
    return load_kit_cached(campaign.kit, KitOptions.from_settings(get_settings()))


def _check_open(session: Session, campaign: Campaign, period: str) -> None:
    run = session.scalar(select(Run).where(Run.campaign_id == campaign.id, Run.period == period))
    if run is not None and run.state != "waiting":
        raise StateError(
            _(
                "run {run} of {campaign} for {period} has started: its bookings are printed as they were",
                run=run.id,
                campaign=campaign.name,
                period=period,
            )
        )


def state_of(booking: AdBooking) -> dict[str, object]:
    """What the approval digest and the audit log take of a booking (the artwork by its digest)."""
    return {
        "slot": booking.slot,
        "merchant_id": booking.merchant_id,
        "offer_text": booking.offer_text,
        "valid_from": booking.valid_from.isoformat(),
        "valid_until": booking.valid_until.isoformat(),
        "fee_fen": booking.fee_fen,
        "artwork_sha256": booking.artwork_sha256,
    }


def book(
    *,
    session: Session,
    campaign: Campaign,
    period: str,
    slot: str,
    merchant: Organisation,
    artwork: bytes,
    artwork_name: str,
    offer_text: str,
    valid_from: date,
    valid_until: date,
    fee_fen: int = 0,
    replace: bool = False,
) -> AdBooking:
    """Books a slot of the campaign's kit for a period; the artwork must pass the kit's preflight there."""
    quarter = str(parse_quarter(period))
    if campaign.channel != "letter":
        raise InputError(_("campaign {name} sends SMS: it has no ad slots", name=campaign.name))
    if merchant.kind != "merchant" or not merchant.active:
        raise InputError(_("{name} is not an active merchant", name=merchant.name))
    text = " ".join(offer_text.split())
    if not text or len(text) > MAX_OFFER_TEXT:
        raise InputError(_("the offer text needs 1 to {n} characters", n=MAX_OFFER_TEXT))
    if valid_from > valid_until:
        raise InputError(
            _(
                "the offer is valid from {start} until {end}: the end lies before the start",
                start=valid_from.isoformat(),
                end=valid_until.isoformat(),
            )
        )
    if fee_fen < 0:
        raise InputError(_("an ad fee cannot be negative"))
    if not artwork or len(artwork) > MAX_ARTWORK_BYTES:
        raise InputError(_("the artwork file must hold 1 byte to {mb} MB", mb=MAX_ARTWORK_BYTES // (1 << 20)))
    _check_open(session, campaign, quarter)
    kit = _kit(campaign)
    found = slot_named(kit, slot)
    suffix = Path(artwork_name).suffix.lower() or ".img"
    with tempfile.TemporaryDirectory(prefix="outreach-artwork-") as tmp:
        file = Path(tmp) / f"artwork{suffix}"
        file.write_bytes(artwork)
        problems = artwork_problems(kit, found, file)
    if problems:
        raise InputError(
            _("the artwork for slot {slot} cannot be printed:", slot=found.name)
            + "\n  "
            + "\n  ".join(problems)
        )
    existing = session.scalar(
        select(AdBooking).where(
            AdBooking.campaign_id == campaign.id, AdBooking.period == quarter, AdBooking.slot == found.name
        )
    )
    if existing is not None:
        if not replace:
            raise Conflict(
                _(
                    "slot {slot} of {campaign} for {period} is booked already (booking {id}); "
                    "replace it knowingly, or unbook it first",
                    slot=found.name,
                    campaign=campaign.name,
                    period=quarter,
                    id=existing.id,
                )
            )
        session.delete(existing)
        session.flush()
    booking = AdBooking(
        campaign_id=campaign.id,
        period=quarter,
        slot=found.name,
        merchant_id=merchant.id,
        offer_text=text,
        valid_from=valid_from,
        valid_until=valid_until,
        fee_fen=fee_fen,
        artwork=artwork,
        artwork_name=Path(artwork_name).name[:200],
        artwork_sha256=hashlib.sha256(artwork).hexdigest(),
    )
    session.add(booking)
    session.flush()
    return booking


def unbook(*, session: Session, campaign: Campaign, period: str, slot: str) -> AdBooking:
    """Removes a period's booking of a slot (before its run starts); the slot prints the union's artwork."""
    quarter = str(parse_quarter(period))
    _check_open(session, campaign, quarter)
    booking = session.scalar(
        select(AdBooking).where(
            AdBooking.campaign_id == campaign.id, AdBooking.period == quarter, AdBooking.slot == slot
        )
    )
    if booking is None:
        raise NotFound(
            _(
                "slot {slot} of {campaign} is not booked for {period}",
                slot=slot,
                campaign=campaign.name,
                period=quarter,
            )
        )
    if session.scalar(select(func.count()).where(Redemption.booking_id == booking.id)):
        raise StateError(_("booking {id} has redemptions and stays", id=booking.id))
    session.delete(booking)
    session.flush()
    return booking


def bookings(*, session: Session, campaign_id: int, period: str) -> Sequence[AdBooking]:
    """A campaign period's bookings, by slot."""
    return session.scalars(
        select(AdBooking)
        .where(AdBooking.campaign_id == campaign_id, AdBooking.period == period)
        .order_by(AdBooking.slot)
    ).all()


def bookings_digest(*, session: Session, campaign_id: int, period: str | None) -> str | None:
    """A digest of a period's bookings for the approval digest, or None when the period has none."""
    if period is None:
        return None
    found = [state_of(b) for b in bookings(session=session, campaign_id=campaign_id, period=period)]
    if not found:
        return None
    text = json.dumps(found, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SlotLine:
    """One slot of a period: booked (by whom, which offer, what fee) or the union's own artwork."""

    slot: str
    label: str
    side: str
    merchant: str | None
    offer_text: str | None
    valid_from: date | None
    valid_until: date | None
    fee_fen: int
    artwork_sha256: str | None


def slot_lines(*, session: Session, campaign: Campaign, period: str) -> list[SlotLine]:
    """Every slot of the campaign's kit for a period, booked or not (what the approver reads)."""
    quarter = str(parse_quarter(period))
    booked = {b.slot: b for b in bookings(session=session, campaign_id=campaign.id, period=quarter)}
    names = {
        int(i): str(n)
        for i, n in session.execute(
            select(Organisation.id, Organisation.name).where(
                Organisation.id.in_([b.merchant_id for b in booked.values()])
            )
        )
    }
    lines = []
    for slot in slots_of(_kit(campaign)) if campaign.channel == "letter" else ():
        b = booked.get(slot.name)
        lines.append(
            SlotLine(
                slot=slot.name,
                label=slot.label,
                side=slot.side,
                merchant=names.get(b.merchant_id) if b else None,
                offer_text=b.offer_text if b else None,
                valid_from=b.valid_from if b else None,
                valid_until=b.valid_until if b else None,
                fee_fen=b.fee_fen if b else 0,
                artwork_sha256=b.artwork_sha256 if b else None,
            )
        )
    return lines


# --- what a run takes --------------------------------------------------------------------------------


def on_frozen(*, session: Session, run: Run, campaign: Campaign) -> int:
    """When a letter run's pieces are frozen: a code for every piece, and the period's ad fees as income."""
    if campaign.channel != "letter":
        return 0
    issued = codes.issue(session=session, run_id=run.id)
    for booking in bookings(session=session, campaign_id=campaign.id, period=run.period):
        if booking.fee_fen > 0:
            ledger_entries.record_ad_income(
                session=session,
                run_id=run.id,
                booking_id=booking.id,
                amount_fen=booking.fee_fen,
                reason=f"ad slot {booking.slot}",
            )
    return issued


def _artwork_dir() -> Path:
    folder = get_settings().data_dir / "offer-artwork"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def artwork_file(booking: AdBooking) -> Path:
    """The booking's artwork as a file a render worker can place (written once, named by its digest)."""
    suffix = Path(booking.artwork_name).suffix.lower() or ".img"
    path = _artwork_dir() / f"{booking.artwork_sha256}{suffix}"
    if not path.is_file():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".artwork-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(booking.artwork)
        os.replace(tmp, path)  # atomic: parallel workers never place a half-written file
    return path


def booked_kit(*, session: Session, run: Run, kit: Kit) -> Kit:
    """The kit as the run prints it: the period's booked artwork in its slots, the union's own elsewhere."""
    if kit.channel != "letter":
        return kit
    found = bookings(session=session, campaign_id=run.campaign_id, period=run.period)
    return with_artwork(kit, {b.slot: artwork_file(b) for b in found})


# --- the counter ---------------------------------------------------------------------------------------

OUTCOMES = (
    "recorded",
    "already",
    "malformed",
    "unknown",
    "other_period",
    "other_merchant",
    "not_yet",
    "expired",
)


@dataclass(frozen=True)
class Lookup:
    """The counter's answer: what happened (one of OUTCOMES), the words for the merchant, the offer."""

    outcome: str
    message: str
    code: str
    offer_text: str | None = None
    at: datetime | None = None

    @property
    def recorded(self) -> bool:
        """Whether this look-up recorded a redemption."""
        return self.outcome == "recorded"


def check_throttle(*, session: Session, account_id: int) -> None:
    """Refuses look-ups after too many unknown codes from this account lately (no guessing codes)."""
    since = utcnow() - LOOKUP_WINDOW
    failures = session.scalar(
        select(func.count()).where(CodeLookupFailure.account_id == account_id, CodeLookupFailure.at >= since)
    )
    if (failures or 0) >= MAX_UNKNOWN_LOOKUPS:
        raise Throttled(
            _(
                "too many unknown codes from this account; try again in {minutes} minutes",
                minutes=int(LOOKUP_WINDOW.total_seconds() // 60),
            ),
            retry_after=int(LOOKUP_WINDOW.total_seconds()),
        )


def _refuse(session: Session, actor: audit.Actor, outcome: str, code: str, message: str) -> Lookup:
    if outcome == "unknown" and actor.account_id is not None:
        now = utcnow()
        # The throttle looks back ten minutes; older failures of the account are of no more use.
        session.execute(
            delete(CodeLookupFailure).where(
                CodeLookupFailure.account_id == actor.account_id,
                CodeLookupFailure.at < now - timedelta(days=1),
            )
        )
        session.add(CodeLookupFailure(account_id=actor.account_id, at=now))
    audit.record(
        session=session,
        actor=actor,
        action="offer.code_refused",
        object_type="code",
        object_id=code[:64],
        detail=outcome,
    )
    return Lookup(outcome=outcome, message=message, code=code)


def redeem(
    *, session: Session, actor: audit.Actor, merchant_id: int, typed: str, today: date | None = None
) -> Lookup:
    """Looks a code up for the merchant's offer and records its redemption once; a refusal is audited."""
    if actor.account_id is not None:
        check_throttle(session=session, account_id=actor.account_id)
    code = codes.normalise(typed)[:64]
    if not codes.well_formed(code):
        if code.startswith("R") and "-" in typed:
            message = _("this is the piece number; scan the square QR code beside it")
        else:
            message = _("{code} is not a redemption code (10 letters and digits)", code=code or "—")
        return _refuse(session, actor, "malformed", code, message)
    day = today or local_date()
    candidates = session.execute(
        select(RedemptionCode.id, Run.campaign_id, Run.period, Piece.state)
        .join(Run, Run.id == RedemptionCode.run_id)
        .join(Piece, Piece.id == RedemptionCode.piece_id)
        .where(RedemptionCode.code == code)
        .order_by(Run.period.desc(), RedemptionCode.id)
    ).all()
    candidates = [c for c in candidates if c.state in MAILED_STATES]
    if not candidates:
        return _refuse(
            session,
            actor,
            "unknown",
            code,
            _("code {code} does not exist; check it and scan again", code=code),
        )
    mine = session.scalars(
        select(AdBooking).where(AdBooking.merchant_id == merchant_id).order_by(AdBooking.id)
    ).all()
    for candidate in candidates:
        offers = [b for b in mine if b.campaign_id == candidate.campaign_id and b.period == candidate.period]
        if offers:
            return _redeem(session, actor, merchant_id, code, candidate.id, offers, day)
    first = candidates[0]
    if any(b.campaign_id == first.campaign_id for b in mine):
        periods = sorted({b.period for b in mine if b.campaign_id == first.campaign_id})
        message = _(
            "code {code} is from the {period} letter; your offer is in the letters of {periods}",
            code=code,
            period=first.period,
            periods="、".join(periods),
        )
        return _refuse(session, actor, "other_period", code, message)
    return _refuse(
        session,
        actor,
        "other_merchant",
        code,
        _("code {code} is from a letter that does not carry your offer", code=code),
    )


def _redeem(
    session: Session,
    actor: audit.Actor,
    merchant_id: int,
    code: str,
    code_id: int,
    offers: Sequence[AdBooking],
    day: date,
) -> Lookup:
    used = session.scalar(
        select(Redemption).where(Redemption.code_id == code_id, Redemption.merchant_id == merchant_id)
    )
    if used is not None:
        booking = session.get(AdBooking, used.booking_id)
        return Lookup(
            outcome="already",
            message=_("code {code} was already used here", code=code),
            code=code,
            offer_text=booking.offer_text if booking else None,
            at=used.at,
        )
    current = [b for b in offers if b.valid_from <= day <= b.valid_until]
    if not current:
        booking = offers[0]
        if day < booking.valid_from:
            message = _(
                "your offer starts on {start}; code {code} cannot be used before",
                start=booking.valid_from.isoformat(),
                code=code,
            )
            return _refuse(session, actor, "not_yet", code, message)
        message = _(
            "your offer ended on {end}; code {code} has expired",
            end=booking.valid_until.isoformat(),
            code=code,
        )
        return _refuse(session, actor, "expired", code, message)
    booking = current[0]
    redemption = Redemption(
        code_id=code_id,
        booking_id=booking.id,
        merchant_id=merchant_id,
        account_id=actor.account_id,
        at=utcnow(),
    )
    session.add(redemption)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="offer.redeemed",
        object_type="redemption",
        object_id=redemption.id,
        detail=f"booking {booking.id}",
    )
    return Lookup(
        outcome="recorded",
        message=_("valid: the offer is recorded for code {code}", code=code),
        code=code,
        offer_text=booking.offer_text,
        at=redemption.at,
    )


def current_offers(*, session: Session, merchant_id: int, today: date | None = None) -> Sequence[AdBooking]:
    """The merchant's bookings whose validity has not ended, soonest first."""
    day = today or local_date()
    return session.scalars(
        select(AdBooking)
        .where(AdBooking.merchant_id == merchant_id, AdBooking.valid_until >= day)
        .order_by(AdBooking.valid_from, AdBooking.id)
    ).all()
