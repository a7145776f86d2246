"""The campaigns table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from outreach.accounts.models import Organisation
from outreach.db import Base, UTCDateTime, utcnow
from outreach.runs.models import DEFAULT_BATCH_SIZE

CHANNELS = ("letter", "sms")
CAMPAIGN_STATES = ("draft", "approved", "active", "finished", "cancelled")
SCHEDULES = ("quarterly", "manual")


class Campaign(Base):
    """A campaign: who (saved audience), what (kit), how (channel), at what price (rate card), when."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(6))
    audience_id: Mapped[int] = mapped_column(ForeignKey("audiences.id"))
    kit: Mapped[str] = mapped_column(String(300))
    # A rate card is versioned by date (outreach.ledger); a run takes the version in force at approval.
    rate_card_code: Mapped[str] = mapped_column(String(50))
    schedule: Mapped[str] = mapped_column(String(10), default="manual")
    # The print shop (an organisation of kind printshop) its batches are handed to; None: not yet named, and
    # its batches are not handed out (outreach.runs.printshop).
    print_shop_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    print_shop: Mapped[Organisation | None] = relationship(lazy="joined")
    batch_size: Mapped[int] = mapped_column(Integer, default=DEFAULT_BATCH_SIZE)
    # SMS only: marketing (推广) or notice (通知), each with its sending window; the campaign's own hours
    # ('08:00-20:00') instead of the settings' for its kind; messages per number per day
    # (outreach/runs/sms.py).
    sms_kind: Mapped[str] = mapped_column(String(10), default="marketing", server_default="marketing")
    sms_hours: Mapped[str | None] = mapped_column(String(20))
    sms_daily_cap: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10), default="draft")
    # What was approved: a digest of the kit's files and the audience expression, and for which period.
    approved_hash: Mapped[str | None] = mapped_column(String(64))
    approved_period: Mapped[str | None] = mapped_column(String(7))
    # The first period ever approved: the quarterly schedule never runs a campaign for earlier quarters.
    first_period: Mapped[str | None] = mapped_column(String(7))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint(f"channel IN {CHANNELS!r}", name="channel"),
        CheckConstraint(f"state IN {CAMPAIGN_STATES!r}", name="state"),
        CheckConstraint(f"schedule IN {SCHEDULES!r}", name="schedule"),
    )
