"""Runs, their pieces and their print batches: the frozen recipient list of one campaign period."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from outreach.db import Base, UTCDateTime, utcnow

# "stalled": the run stopped making progress (storage failing, or re-dispatched N times in vain); its
# note says why and what to do (runs' orchestration, outreach/runs/supervisor.py).
RUN_STATES = ("waiting", "rendering", "assembling", "done", "cancelled", "stalled")
# A piece moves pending -> rendered (its file is made) -> submitted (a live gateway took it) -> delivered (the
# gateway's receipt), or to failed at any step; which state a piece is charged at is its channel's say
# (outreach.channels: rendered for print and gateway files, submitted for a live gateway).
PIECE_STATES = ("pending", "rendered", "submitted", "delivered", "failed")
# Pieces per batch unless a campaign says otherwise: a print shop's usual run, and one gateway upload.
DEFAULT_BATCH_SIZE = 1000
BATCH_STATES = ("ready", "downloaded", "printed", "mailed")


class Run(Base):
    """One campaign for one period (e.g. 2027-Q1); never two for the same campaign and period.

    A 'waiting' run has no pieces yet: its period's content is not approved (the note says so).
    """

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    period: Mapped[str] = mapped_column(String(7))
    state: Mapped[str] = mapped_column(String(10), default="rendering")
    piece_count: Mapped[int] = mapped_column(Integer, default=0)
    batch_size: Mapped[int] = mapped_column(Integer, default=DEFAULT_BATCH_SIZE)
    # The rate card version in force when the run was reserved (outreach.ledger).
    rate_card_id: Mapped[int | None] = mapped_column(ForeignKey("rate_cards.id"))
    # The kit digest the pieces were rendered with: the approved content, frozen with the recipients.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Liveness (runs' orchestration: outreach/runs/executor.py and supervisor.py). dispatched_at is the atomic
    # dispatch claim (two racing starts queue the batches once); progress_at moves when a batch commits;
    # redispatches counts the supervisor's re-dispatches since the last progress.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    progress_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redispatches: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A live SMS run outside its sending window (or held by the per-number daily cap) waits until then; the
    # supervisor resumes it and never counts the wait as a stall (outreach/runs/sms.py).
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("campaign_id", "period"),
        CheckConstraint(f"state IN {RUN_STATES!r}", name="state"),
    )

    @property
    def batch_count(self) -> int:
        """How many print (or gateway) batches the run's pieces make."""
        return -(-self.piece_count // self.batch_size) if self.piece_count else 0


def piece_number(run_id: int, seq: int) -> str:
    """The number printed on a piece's envelope and letter: run and sequence, e.g. R000012-0000345."""
    return f"R{run_id:06d}-{seq:07d}"


class Piece(Base):
    """One letter or SMS to one recipient in one run: a snapshot of what is printed, frozen at run start.

    `seq` is the presort order (postcode, township, unit), which also decides its batch.
    """

    __tablename__ = "pieces"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
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
    # A live gateway's error code of a failed piece (e.g. its "MOBILE_NOT_ON_SERVICE"), beside the words.
    error_code: Mapped[str | None] = mapped_column(String(40))
    # The gateway's id of a submitted message: its delivery receipt names the piece by it.
    message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    pages: Mapped[int | None] = mapped_column(SmallInteger)
    parts: Mapped[int | None] = mapped_column(SmallInteger)
    # Consent evidence of a live SMS (kept at least six months): when the gateway took it, when its receipt
    # said it arrived (or failed).
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("run_id", "worker_id"),
        UniqueConstraint("run_id", "seq"),
        Index("ix_pieces_run_state", "run_id", "state"),
        CheckConstraint(f"state IN {PIECE_STATES!r}", name="state"),
    )

    @property
    def number(self) -> str:
        """The printed piece number."""
        return piece_number(self.run_id, self.seq)


class Batch(Base):
    """A print (or SMS gateway) batch of a run: its files, their checksums, and what the print shop reported.

    `files` maps a file name (its channel's delivery files, e.g. envelopes.pdf and letters.pdf or sms.csv;
    then manifest.csv, ticket.json, ticket.pdf, SHA256SUMS and the ZIP) to {"key": storage key, "sha256":
    ..., "bytes": ...}; it outlives the files themselves after purging.
    """

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    pieces: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    files: Mapped[dict[str, dict[str, object]]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(10), default="ready")
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    mailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("run_id", "seq"),
        CheckConstraint(f"state IN {BATCH_STATES!r}", name="state"),
    )


class RunEvent(Base):
    """An append-only record of what was done to carry out a run: dispatches, re-dispatches, stalls, resumes.

    `kind` is dispatch, redispatch, stalled, resumed or handed (to a local background process); `detail` says
    more (how many batches, the error, the process id). Never edited.
    """

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
