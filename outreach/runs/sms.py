"""Live SMS beside a run: when a batch may send (quiet hours, the per-number daily cap), pausing a run until
its next window, the gateway's receipts and replies as they are pushed to us (stored once each, kept as
evidence), and the SMS side of a run's status.

A receipt is applied to its piece at most once: the receipt's key (gateway id, number, status) is unique in
`sms_receipts`, so a push sent twice finds its rows there. A receipt that arrives before its piece's
submission is recorded waits in the table and is applied when the batch commits. A failed receipt refunds
the piece's charge once (a ledger refund is keyed by piece), also after the run has closed, when the run's
rate card refunds undeliverable pieces.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar, cast

from sqlalchemy import Boolean, ForeignKey, String, Table, Text, bindparam, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from audiences import suppression
from audiences.privacy import mask_mobile
from outreach.campaigns.models import Campaign
from outreach.channels import PieceResult
from outreach.channels.gateways.base import DeliveryReceipt, Reply
from outreach.channels.quiet_hours import SendWindow, parse_hours, sms_kind, window_for
from outreach.db import Base, UTCDateTime, dialect_insert, utcnow
from outreach.errors import InputError
from outreach.i18n import _
from outreach.ledger import service as ledger
from outreach.runs.models import Piece, Run, RunEvent
from outreach.settings import get_settings

log = logging.getLogger(__name__)

T = TypeVar("T")
# Gateways allow at most 50 messages a day to one number per signature and template.
MAX_DAILY_CAP = 50
# Message ids per query (an IN list both PostgreSQL and SQLite take comfortably).
_CHUNK = 500


class SmsReceipt(Base):
    """A delivery receipt as a gateway pushed it, once per key; `applied_at` once it moved its piece."""

    __tablename__ = "sms_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    gateway: Mapped[str] = mapped_column(String(10))
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    piece_id: Mapped[int | None] = mapped_column(ForeignKey("pieces.id", ondelete="SET NULL"), index=True)
    delivered: Mapped[bool] = mapped_column(Boolean)
    error_code: Mapped[str | None] = mapped_column(String(60))
    error: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SmsReply(Base):
    """A reply a recipient sent (上行短信), kept as it came: a stop reply is the evidence of its suppression;
    any other reply waits for a person to read it."""

    __tablename__ = "sms_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    gateway: Mapped[str] = mapped_column(String(10))
    mobile: Mapped[str] = mapped_column(String(20), index=True)
    text: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    stop: Mapped[bool] = mapped_column(Boolean)
    suppression_id: Mapped[int | None] = mapped_column(ForeignKey("suppressions.id", ondelete="SET NULL"))


# --- sending: quiet hours and the daily cap -----------------------------------------------------------------


def window_of(campaign: Campaign) -> SendWindow:
    """The campaign's sending window: its own hours, else the settings' for its kind of message."""
    return window_for(campaign.sms_kind or "marketing", campaign.sms_hours)


@dataclass
class Sending:
    """How a campaign's SMS may leave: its kind, its window and its per-number daily cap."""

    campaign: str
    kind: str
    window: str
    daily_cap: int
    own_hours: bool


def sending(*, session: Session, campaign: Campaign) -> Sending:
    """The campaign's sending rules as they apply now (its own, else the settings')."""
    return Sending(
        campaign=campaign.name,
        kind=campaign.sms_kind,
        window=window_of(campaign).describe(),
        daily_cap=campaign.sms_daily_cap or get_settings().sms_daily_cap,
        own_hours=campaign.sms_hours is not None,
    )


def set_sending(
    *,
    session: Session,
    campaign: Campaign,
    kind: str | None = None,
    hours: str | None = None,
    daily_cap: int | None = None,
) -> Sending:
    """Sets an SMS campaign's kind (marketing/notice, 推广/通知), own hours ('08:00-20:00', or '' for the
    kind's default) and per-number daily cap (1-50); InputError naming the campaign when one is wrong."""
    if campaign.channel != "sms":
        raise InputError(
            _("campaign {name} sends letters: sending hours are for SMS campaigns", name=campaign.name)
        )
    if kind is not None:
        campaign.sms_kind = sms_kind(kind)
    if hours is not None:
        text = hours.strip()
        if text:
            parse_hours(text, zone=get_settings().timezone, where=_("campaign {name}", name=campaign.name))
        campaign.sms_hours = text or None
    if daily_cap is not None:
        if not 1 <= daily_cap <= MAX_DAILY_CAP:
            raise InputError(
                _(
                    "campaign {name}: the daily cap per number must be 1 to {max}, not {value}",
                    name=campaign.name,
                    max=MAX_DAILY_CAP,
                    value=daily_cap,
                )
            )
        campaign.sms_daily_cap = daily_cap
    session.flush()
    return sending(session=session, campaign=campaign)


@dataclass
class Gate:
    """Which of a batch's pending pieces may be sent now, until when, and when the others may go."""

    send: list[Piece]
    until: datetime | None
    resume_at: datetime | None


def gate(*, session: Session, campaign: Campaign, pieces: Sequence[Piece], now: datetime) -> Gate:
    """The batch's pending pieces that may go now: none outside the window; inside it, none to a number that
    already had the campaign's daily cap of messages today (those wait for the next day's window)."""
    pending = [p for p in pieces if p.state == "pending"]
    window = window_of(campaign)
    if not window.is_open(now):
        return Gate([], None, window.next_open(now))
    cap = campaign.sms_daily_cap or get_settings().sms_daily_cap
    start, end = window.day_bounds(now)
    sent: Counter[str] = Counter()
    for chunk in _chunks(sorted({p.mobile for p in pending if p.mobile})):
        rows = session.execute(
            select(Piece.mobile, func.count())
            .join(Run, Run.id == Piece.run_id)
            .where(
                Run.campaign_id == campaign.id,
                Piece.mobile.in_(chunk),
                Piece.submitted_at >= start,
                Piece.submitted_at < end,
            )
            .group_by(Piece.mobile)
        )
        sent.update({str(m): int(n) for m, n in rows})
    send: list[Piece] = []
    held = 0
    for p in pending:
        if p.mobile and sent[p.mobile] >= cap:
            held += 1
            continue
        if p.mobile:
            sent[p.mobile] += 1
        send.append(p)
    return Gate(send, window.closes_at(now), window.next_open(end) if held else None)


def settle_batch(
    *,
    session: Session,
    run: Run,
    campaign: Campaign,
    pieces: Sequence[Piece],
    gate: Gate,
    results: Sequence[PieceResult] = (),
) -> None:
    """After a batch's results are recorded: stamps when its pieces were taken, applies receipts that came
    before the commit, and pauses the run until the next window when some of its pieces still wait."""
    now = utcnow()
    ids = [p.id for p in pieces]
    by_number = {p.number: p.id for p in pieces}
    taken_at = [{"pid": by_number[r.number], "at": r.at} for r in results if r.at and r.number in by_number]
    if taken_at:
        table = cast(Table, Piece.__table__)
        # Core executemany: one statement, each piece its own time.
        session.execute(
            update(table)
            .where(table.c.id == bindparam("pid"), table.c.state != "pending", table.c.submitted_at.is_(None))
            .values(submitted_at=bindparam("at")),
            taken_at,
        )
    for chunk in _chunks(ids):
        session.execute(
            update(Piece)
            .where(Piece.id.in_(chunk), Piece.state != "pending", Piece.state != "failed")
            .where(Piece.submitted_at.is_(None))
            .values(submitted_at=now)
        )
        # Found delivered already by the query after a crash: the receipt's time is not known, now is close.
        session.execute(
            update(Piece)
            .where(Piece.id.in_(chunk), Piece.state == "delivered", Piece.delivered_at.is_(None))
            .values(delivered_at=now)
        )
    waiting_ids = [
        m
        for chunk in _chunks(ids)
        for m in session.scalars(
            select(Piece.message_id).where(Piece.id.in_(chunk), Piece.message_id.is_not(None))
        )
        if m is not None
    ]
    apply_waiting(session=session, message_ids=waiting_ids)
    left = 0
    for chunk in _chunks(ids):
        left += session.scalar(select(func.count()).where(Piece.id.in_(chunk), Piece.state == "pending")) or 0
    if left:
        window = window_of(campaign)
        resume = gate.resume_at or window.next_open(max(now, gate.until or now))
        if gate.until is not None and now < gate.until and gate.resume_at is None:
            resume = now  # nothing held them back: go on at once
        pause(session=session, run_id=run.id, until=resume, waiting=left)


def pause(*, session: Session, run_id: int, until: datetime, waiting: int) -> None:
    """Marks a run as waiting for its next sending window (the supervisor resumes it then)."""
    session.execute(update(Run).where(Run.id == run_id, Run.state == "rendering").values(paused_until=until))
    session.add(
        RunEvent(
            run_id=run_id, kind="paused", detail=json.dumps({"until": until.isoformat(), "pieces": waiting})
        )
    )
    session.flush()
    log.info("run %s: %d piece(s) wait for the sending window at %s", run_id, waiting, until.isoformat())


def due_to_resume(*, session: Session, run_id: int, now: datetime) -> bool | None:
    """None if the run is not paused; True (and the pause cleared) once its time has come; else False."""
    until = session.scalar(select(Run.paused_until).where(Run.id == run_id))
    if until is None:
        return None
    if until > now:
        return False
    session.execute(update(Run).where(Run.id == run_id).values(paused_until=None, progress_at=now))
    session.add(RunEvent(run_id=run_id, kind="resumed", detail="sending window open"))
    session.flush()
    return True


# --- receipts --------------------------------------------------------------------------------------------


@dataclass
class ReceiptsTaken:
    """What a pushed batch of receipts did: new (stored now), repeated (seen before), applied to pieces,
    refunded, and waiting (their piece is not recorded as submitted yet)."""

    new: int = 0
    repeated: int = 0
    delivered: int = 0
    failed: int = 0
    refunded: int = 0
    waiting: int = 0


def take_receipts(*, session: Session, receipts: Sequence[DeliveryReceipt]) -> ReceiptsTaken:
    """Stores each pushed receipt once (by its key) and applies the new ones to their pieces."""
    taken = ReceiptsTaken()
    unique = {r.key: r for r in receipts}
    insert = dialect_insert(session)
    new_ids: list[str] = []
    for keys in _chunks(list(unique)):
        rows = [
            {
                "key": k,
                "gateway": unique[k].gateway,
                "message_id": unique[k].message_id[:64],
                "delivered": unique[k].delivered,
                "error_code": (unique[k].error_code or None) and str(unique[k].error_code)[:60],
                "error": unique[k].error,
                "reported_at": _aware(unique[k].reported_at),
                "received_at": utcnow(),
            }
            for k in keys
        ]
        stored = session.scalars(
            insert(SmsReceipt).values(rows).on_conflict_do_nothing().returning(SmsReceipt.message_id)
        ).all()
        new_ids.extend(stored)
    taken.new = len(new_ids)
    taken.repeated = len(receipts) - taken.new
    applied = apply_waiting(session=session, message_ids=new_ids)
    taken.delivered, taken.failed, taken.refunded = applied.delivered, applied.failed, applied.refunded
    taken.waiting = taken.new - applied.delivered - applied.failed - applied.ignored
    return taken


@dataclass
class _Applied:
    delivered: int = 0
    failed: int = 0
    refunded: int = 0
    ignored: int = 0


def apply_waiting(*, session: Session, message_ids: Sequence[str]) -> _Applied:
    """Applies the stored, not yet applied receipts of these messages to their submitted pieces."""
    done = _Applied()
    now = utcnow()
    for chunk in _chunks(sorted(set(message_ids))):
        rows = session.execute(
            select(SmsReceipt, Piece)
            .join(Piece, Piece.message_id == SmsReceipt.message_id)
            .where(SmsReceipt.message_id.in_(chunk), SmsReceipt.applied_at.is_(None))
            .order_by(SmsReceipt.id)
        ).all()
        for receipt, piece in rows:
            receipt.applied_at = now
            receipt.piece_id = piece.id
            if piece.state != "submitted":
                done.ignored += 1  # delivered or failed already: the first word stands
                continue
            piece.delivered_at = receipt.reported_at or now
            if receipt.delivered:
                piece.state = "delivered"
                done.delivered += 1
                continue
            piece.state = "failed"
            piece.error_code = receipt.error_code or "FAILED"
            piece.error = receipt.error or receipt.error_code or "FAILED"
            done.failed += 1
            refund = ledger.refund(
                session=session, run_id=piece.run_id, piece_id=piece.id, reason=piece.error_code
            )
            done.refunded += refund is not None
    session.flush()
    return done


def apply_stranded(*, session: Session, older_than: float = 30.0) -> _Applied:
    """Applies stored receipts whose piece was committed after them (a receipt that raced its batch's
    commit); the supervisor's beat calls this every minute."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    ids = session.scalars(
        select(SmsReceipt.message_id)
        .join(Piece, Piece.message_id == SmsReceipt.message_id)
        .where(SmsReceipt.applied_at.is_(None), SmsReceipt.received_at < cutoff)
        .limit(10 * _CHUNK)
    ).all()
    return apply_waiting(session=session, message_ids=ids)


# --- replies -----------------------------------------------------------------------------------------------


@dataclass
class RepliesTaken:
    """What a pushed batch of replies did: new, repeated, and how many stopped a number."""

    new: int = 0
    repeated: int = 0
    stopped: int = 0
    to_read: int = 0


def take_replies(*, session: Session, replies: Sequence[Reply]) -> RepliesTaken:
    """Keeps each reply once; a stop reply (R, T, TD, N, 退订...) suppresses the number on every channel."""
    taken = RepliesTaken()
    insert = dialect_insert(session)
    for reply in replies:
        row = session.scalar(
            insert(SmsReply)
            .values(
                key=reply.key[:200],
                gateway=reply.gateway,
                mobile=reply.mobile[:20],
                text=reply.text,
                sent_at=_aware(reply.received_at),
                received_at=utcnow(),
                stop=reply.is_stop,
            )
            .on_conflict_do_nothing()
            .returning(SmsReply.id)
        )
        if row is None:
            taken.repeated += 1
            continue
        taken.new += 1
        if not reply.is_stop:
            taken.to_read += 1
            continue
        try:
            blocked = suppression.record_sms_reply(session=session, mobile=reply.mobile, text=reply.text)
        except InputError as exc:
            # Not a mainland mobile: kept for a person to read, with the reason.
            log.warning("stop reply from %s not suppressed: %s", mask_mobile(reply.mobile), exc)
            taken.to_read += 1
            continue
        if blocked is not None:
            session.execute(update(SmsReply).where(SmsReply.id == row).values(suppression_id=blocked.id))
            taken.stopped += 1
    session.flush()
    return taken


def replies(*, session: Session, include_stops: bool = False, limit: int = 100) -> Sequence[SmsReply]:
    """The latest replies, newest first: those for a person to read, or all with `include_stops`."""
    stmt = select(SmsReply).order_by(SmsReply.id.desc()).limit(limit)
    if not include_stops:
        stmt = stmt.where((SmsReply.stop.is_(False)) | SmsReply.suppression_id.is_(None))
    return session.scalars(stmt).all()


# --- status ------------------------------------------------------------------------------------------------


@dataclass
class SmsStatus:
    """A live SMS run's pieces: submitted and awaiting receipts, delivered, failed (by error code)."""

    pending: int = 0
    submitted: int = 0
    delivered: int = 0
    failed: int = 0
    failures: list[tuple[str, int]] = field(default_factory=list)
    paused_until: datetime | None = None

    @property
    def awaiting_receipts(self) -> int:
        """Pieces the gateway took whose receipt has not come."""
        return self.submitted

    @property
    def taken(self) -> int:
        """Pieces the gateway took (whatever their receipt said since)."""
        return self.submitted + self.delivered + sum(n for code, n in self.failures if code != NOT_SENT)


# The error-code group of failed pieces that never reached the gateway (no mobile, a render error).
NOT_SENT = "-"


def status(*, session: Session, run_id: int) -> SmsStatus:
    """The run's pieces by state, and its failures grouped by error code (most first)."""
    counts = dict(
        session.execute(
            select(Piece.state, func.count()).where(Piece.run_id == run_id).group_by(Piece.state)
        ).all()
    )
    by_code: Counter[str] = Counter()
    for code, n in session.execute(
        select(Piece.error_code, func.count())
        .where(Piece.run_id == run_id, Piece.state == "failed")
        .group_by(Piece.error_code)
    ):
        by_code[code or NOT_SENT] += int(n)
    return SmsStatus(
        pending=int(counts.get("pending", 0)),
        submitted=int(counts.get("submitted", 0)),
        delivered=int(counts.get("delivered", 0)),
        failed=int(counts.get("failed", 0)),
        failures=sorted(by_code.items(), key=lambda item: (-item[1], item[0])),
        paused_until=session.scalar(select(Run.paused_until).where(Run.id == run_id)),
    )


# --- helpers -----------------------------------------------------------------------------------------------


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _aware(at: datetime | None) -> datetime | None:
    """A gateway's local (Beijing) time as an aware datetime; aware ones as they are."""
    if at is None or at.tzinfo is not None:
        return at
    from zoneinfo import ZoneInfo

    return at.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
