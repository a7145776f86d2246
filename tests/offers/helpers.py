"""Artwork and a small world for offer tests: a campaign with women, two merchants, a booked slot."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from outreach.accounts import service as accounts
from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.offers import service as offers
from outreach.offers.models import AdBooking
from outreach.runs import service as runs
from outreach.runs.models import Piece, Run
from tests.runs.world import build_world

# The insert page's first slot is 86 × 56 mm; the union's own artwork there is 1016 × 661 pixels. Booked
# artwork of another size can be told apart in the rendered PDF.
INSERT_PX = (1100, 716)
PERIOD = "2027-Q1"
VALID = (date(2027, 3, 1), date(2027, 5, 31))


def artwork(
    size: tuple[int, int] = INSERT_PX, *, mode: str = "CMYK", colour: tuple[int, ...] = (0, 200, 40, 0)
) -> bytes:
    """A flat JPEG at 300 dpi."""
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="JPEG", dpi=(300, 300), quality=80)
    return buffer.getvalue()


@dataclass
class OfferWorld:
    campaign_id: int
    merchant_id: int
    other_merchant_id: int
    booking_id: int


def offer_world(
    session: Session, *, women: int = 12, fee_fen: int = 50_000, name: str = "俏佳人"
) -> OfferWorld:
    """An approved campaign whose 2027-Q1 letters carry merchant A's offer in slot insert-1 (re-approved)."""
    world = build_world(session, name=name, women=women, batch_size=10)
    campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
    a = offers.add_merchant(session=session, name=f"{name}美容院", licence_no="91350426MA2XXXXX0M")
    b = offers.add_merchant(session=session, name=f"{name}超市", licence_no="91350426MA2YYYYY11")
    booking = book(session, campaign, merchant_id=a.id, fee_fen=fee_fen)
    campaigns.approve(session=session, campaign=campaign, period=PERIOD)
    return OfferWorld(campaign.id, a.id, b.id, booking.id)


def book(
    session: Session,
    campaign: Campaign,
    *,
    merchant_id: int,
    slot: str = "insert-1",
    fee_fen: int = 50_000,
    period: str = PERIOD,
    valid: tuple[date, date] = VALID,
    image: bytes | None = None,
    text: str = "凭函到店护理八折",
    replace: bool = False,
) -> AdBooking:
    merchant = accounts.get_organisation(session=session, organisation_id=merchant_id)
    return offers.book(
        session=session,
        campaign=campaign,
        period=period,
        slot=slot,
        merchant=merchant,
        artwork=image if image is not None else artwork(),
        artwork_name="ad.jpg",
        offer_text=text,
        valid_from=valid[0],
        valid_until=valid[1],
        fee_fen=fee_fen,
        replace=replace,
    )


def started_run(session: Session, campaign_id: int, period: str = PERIOD, *, mailed: bool = True) -> Run:
    """The period's run, started; its pieces marked rendered (as if printed) unless told otherwise."""
    campaign = campaigns.get(session=session, campaign_id=campaign_id)
    run = runs.start(session=session, campaign=campaign, period=period)
    if mailed:
        session.execute(update(Piece).where(Piece.run_id == run.id).values(state="rendered"))
    session.flush()
    return run


def a_code(session: Session, run_id: int, seq: int = 1) -> str:
    """The redemption code of one piece of a run."""
    from outreach.offers.models import RedemptionCode

    code = session.scalar(
        select(RedemptionCode.code)
        .join(Piece, Piece.id == RedemptionCode.piece_id)
        .where(Piece.run_id == run_id, Piece.seq == seq)
    )
    assert code is not None
    return code
