"""Offer tables: a merchant's booking of a kit's ad slot for a campaign period, each piece's redemption
code, each redemption at a merchant's counter, and the counter's failed look-ups (throttled)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from outreach.db import Base, UTCDateTime, utcnow

_BIGINT = BigInteger().with_variant(Integer, "sqlite")


class AdBooking(Base):
    """A merchant's booking of one ad slot of a campaign's kit for one period: artwork, offer, validity, fee.

    The artwork is kept here (bytes and digest), so the approval digest and every render worker see the same
    file; a slot without a booking prints the union's own artwork named in the kit.
    """

    __tablename__ = "ad_bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    period: Mapped[str] = mapped_column(String(7))
    slot: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    offer_text: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    artwork: Mapped[bytes] = mapped_column(LargeBinary)
    artwork_name: Mapped[str] = mapped_column(String(200))
    artwork_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("campaign_id", "period", "slot"),
        CheckConstraint("fee_fen >= 0", name="fee"),
        CheckConstraint("valid_from <= valid_until", name="validity"),
    )


class RedemptionCode(Base):
    """The short random code printed (as a QR code) on one piece; unique within its run, looked up by code."""

    __tablename__ = "redemption_codes"

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    piece_id: Mapped[int] = mapped_column(ForeignKey("pieces.id", ondelete="CASCADE"), unique=True)
    code: Mapped[str] = mapped_column(String(16))

    # Unique per run, and led by the code: the one index serves the counter's look-up by code as well.
    __table_args__ = (UniqueConstraint("code", "run_id"),)


class Redemption(Base):
    """A code brought to a merchant's counter and accepted for its offer: once per code and merchant."""

    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("redemption_codes.id", ondelete="CASCADE"))
    booking_id: Mapped[int] = mapped_column(ForeignKey("ad_bookings.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    account_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("code_id", "merchant_id"),)


class CodeLookupFailure(Base):
    """One refused look-up at a counter; more than a few per account in ten minutes are throttled."""

    __tablename__ = "code_lookup_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_code_lookup_failures_account_at", "account_id", "at"),)
