"""Runs and their pieces: the frozen recipient list of one campaign period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from outreach.db import Base, UTCDateTime, utcnow

RUN_STATES = ("waiting", "rendering", "assembling", "done", "failed", "cancelled")
PIECE_STATES = ("pending", "rendered", "failed")


class Run(Base):
    """One campaign for one period (e.g. 2027-Q1); never two for the same campaign and period."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    period: Mapped[str] = mapped_column(String(7))
    state: Mapped[str] = mapped_column(String(10), default="rendering")
    piece_count: Mapped[int] = mapped_column(Integer, default=0)
    chunk_size: Mapped[int] = mapped_column(Integer, default=500)
    rate_card_id: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("campaign_id", "period"),
        CheckConstraint(f"state IN {RUN_STATES!r}", name="state"),
    )


class Piece(Base):
    """One letter or SMS to one recipient in one run: a snapshot of what is printed, frozen at run start.

    `seq` is the presort order (postcode, township, unit); `number` is printed on envelope and letter.
    """

    __tablename__ = "pieces"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(30))
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id"))
    name: Mapped[str] = mapped_column(String(50))
    gender: Mapped[str] = mapped_column(String(1))
    unit_name: Mapped[str] = mapped_column(String(200))
    township: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(300))
    postcode: Mapped[str | None] = mapped_column(String(6))
    # Only SMS runs keep the mobile; letter pieces never carry it (privacy: print shops see what is printed).
    mobile: Mapped[str | None] = mapped_column(String(11))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    pages: Mapped[int | None] = mapped_column(SmallInteger)
    parts: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        UniqueConstraint("run_id", "worker_id"),
        UniqueConstraint("run_id", "seq"),
        Index("ix_pieces_run_state", "run_id", "state"),
        CheckConstraint(f"state IN {PIECE_STATES!r}", name="state"),
    )
