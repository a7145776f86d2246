"""Per-period content of a campaign: the letter's text for a quarter, its review (submitted, sent back,
approved, by whom), every change with who made it, and the artwork versions a change put in a slot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
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

CONTENT_STATES = ("draft", "submitted", "returned", "approved")


class PeriodContent(Base):
    """One campaign period's content and its review.

    `blocks` holds the letter's text blocks the planners rewrote for the period (kit template file -> text);
    a block not in it prints as the kit has it. `changed_by_id` is the account that made the last change of
    the content (text or artwork): four eyes, it may not approve it. `approved_snapshot` is what the last
    approval of this period covered (text and artwork digests), kept through later edits for the diff.
    """

    __tablename__ = "campaign_periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    period: Mapped[str] = mapped_column(String(7))
    blocks: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(10), default="draft")
    changed_by_id: Mapped[int | None] = mapped_column(Integer)
    changed_by: Mapped[str | None] = mapped_column(String(100))
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_by: Mapped[str | None] = mapped_column(String(100))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by_id: Mapped[int | None] = mapped_column(Integer)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    comment: Mapped[str | None] = mapped_column(Text)
    approved_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("campaign_id", "period"),
        CheckConstraint(f"state IN {CONTENT_STATES!r}", name="state"),
    )


class ContentChange(Base):
    """Who changed what in a campaign period's content, and when (also submissions and reviews)."""

    __tablename__ = "campaign_content_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    period: Mapped[str] = mapped_column(String(7))
    account_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # "text:<block>", "artwork:<slot>", "submitted", "returned", "approved"
    what: Mapped[str] = mapped_column(String(80))
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_campaign_content_changes_period", "campaign_id", "period"),)


class ArtworkVersion(Base):
    """Artwork a slot held at some time, by its digest: the approval shows the old beside the new."""

    __tablename__ = "campaign_artwork"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
