"""The suppression list (opt-outs, returned mail, numbers that replied R/T/退订) that every audience honours.

Opt-outs hold across channels and runs (DESIGN, PIPL), so an SMS reply is stored with channel 'all'; returned
mail says only that the address fails, so it suppresses letters alone. Channels are named as campaigns name
them (letter, sms); the old word 'mail' is taken on input and stored as 'letter'.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Literal

from sqlalchemy import ColumnElement, exists, false, func, or_, select
from sqlalchemy.orm import Session

from audiences import normalise
from audiences.models import Suppression, Worker
from audiences.privacy import mask_mobile
from outreach.errors import InputError, NotFound
from outreach.i18n import N_, _

if TYPE_CHECKING:
    from audiences.schemas import SuppressionEntry, SuppressionIn

Reason = Literal["opt_out", "returned_mail", "sms_reply"]
SuppressionChannel = Literal["letter", "sms", "all"]
Channel = Literal["letter", "sms"]

REASONS: tuple[Reason, ...] = ("opt_out", "returned_mail", "sms_reply")
CHANNELS: tuple[SuppressionChannel, ...] = ("letter", "sms", "all")
# The word people typed before letter/sms was the one word; never stored.
OLD_WORDS = {"mail": "letter"}
# How each channel and reason reads in a listing (translate when shown).
CHANNEL_NAMES: dict[str, str] = {
    "letter": N_("letters"),
    "sms": N_("text messages"),
    "all": N_("every channel"),
}
REASON_NAMES: dict[str, str] = {
    "opt_out": N_("opted out"),
    "returned_mail": N_("letter returned"),
    "sms_reply": N_("replied to stop"),
}
# Replies that mean 'stop', after NFKC (full-width Ｒ -> R, ideographic space -> space), trimming spaces and
# trailing punctuation (退订。 T!) and upper-casing. N is what some gateways' templates ask for (回N退订).
STOP_REPLIES = frozenset({"R", "T", "TD", "N", "退订", "退訂", "拒收"})
_PADDING = " \t\r\n.。!！,，;；~～\"'“”‘’【】[]()（）"


def _mobile(value: str) -> str:
    try:
        mobile = normalise.mobile(value)
    except normalise.Malformed as exc:
        raise InputError(str(exc)) from None
    if mobile is None:
        raise InputError(_("a mobile number is required"))
    return mobile


def suppress(
    *,
    session: Session,
    reason: Reason,
    channel: SuppressionChannel | None = None,
    worker_id: int | None = None,
    mobile: str | None = None,
    note: str | None = None,
) -> Suppression:
    """Adds a suppression, or returns the identical one already on the list.

    Without a channel, the reason's default applies (default_channel): returned mail blocks letters only.
    """
    if reason not in REASONS:
        raise InputError(
            _("reason {reason} is not one of {reasons}", reason=repr(reason), reasons=", ".join(REASONS))
        )
    if channel is None:
        channel = default_channel(reason)
    channel = OLD_WORDS.get(channel, channel)  # type: ignore[assignment]
    if channel not in CHANNELS:
        raise InputError(
            _(
                "channel {channel} is not one of {channels}",
                channel=repr(channel),
                channels=", ".join(CHANNELS),
            )
        )
    if worker_id is None and mobile is None:
        raise InputError(_("a suppression needs a worker id or a mobile"))
    number = _mobile(mobile) if mobile is not None else None
    if worker_id is not None and session.get(Worker, worker_id) is None:
        raise NotFound(_("no worker with id {id}", id=worker_id))
    # The unique constraint cannot catch repeats where a column is NULL (NULLs are distinct), so look first.
    existing = session.scalar(
        select(Suppression).where(
            Suppression.channel == channel,
            Suppression.reason == reason,
            Suppression.worker_id.is_(None) if worker_id is None else Suppression.worker_id == worker_id,
            Suppression.mobile.is_(None) if number is None else Suppression.mobile == number,
        )
    )
    if existing is not None:
        return existing
    row = Suppression(channel=channel, reason=reason, worker_id=worker_id, mobile=number, note=note)
    session.add(row)
    session.flush()
    return row


def default_channel(reason: Reason) -> SuppressionChannel:
    """The channel a suppression blocks when none is named: letters for returned mail, else every channel.

    Returned mail says only that an address fails; opt-outs and stop replies hold across channels (PIPL).
    """
    return "letter" if reason == "returned_mail" else "all"


def is_stop_reply(text: str) -> bool:
    """Whether an SMS reply asks to stop (R, T, TD, N, 退订, 拒收; full-width, padded and case folded)."""
    folded = unicodedata.normalize("NFKC", text).strip(_PADDING).upper()
    return folded in STOP_REPLIES


def add(*, session: Session, request: SuppressionIn) -> SuppressionEntry:
    """Adds a suppression as the CLI or the web API asks; the entry comes back with its mobile masked."""
    row = suppress(
        session=session,
        reason=request.reason,
        channel=request.channel,
        worker_id=request.worker_id,
        mobile=request.mobile,
        note=request.note,
    )
    return list_suppressions(session=session, entry_id=row.id)[0]


def record_sms_reply(*, session: Session, mobile: str, text: str) -> Suppression | None:
    """Suppresses a number on every channel when its reply asks to stop; other replies return None."""
    number = _mobile(mobile)
    if not is_stop_reply(text):
        return None
    return suppress(
        session=session, reason="sms_reply", channel="all", mobile=number, note=f"reply: {text.strip()[:50]}"
    )


def record_returned_mail(*, session: Session, worker_id: int, note: str | None = None) -> Suppression:
    """Stops mail to a worker whose letter came back (her mobile stays reachable by SMS)."""
    return suppress(session=session, reason="returned_mail", channel="letter", worker_id=worker_id, note=note)


def channels_blocking(channel: Channel | None) -> tuple[SuppressionChannel, ...]:
    """Suppression channels that block sending on `channel` ('all' alone when only the audience is asked)."""
    if channel is None:
        return ("all",)
    return (OLD_WORDS.get(channel, channel), "all")  # type: ignore[return-value]


def not_suppressed(channel: Channel | None) -> ColumnElement[bool]:
    """SQL: no suppression blocks this worker on `channel`, neither by her id nor by her mobile.

    Two NOT EXISTS, one per indexed column (suppressions.worker_id, suppressions.mobile), so each becomes an
    anti-join instead of an OR that defeats both indexes.
    """
    blocking = channels_blocking(channel)
    by_worker = exists().where(Suppression.worker_id == Worker.id, Suppression.channel.in_(blocking))
    by_mobile = exists().where(Suppression.mobile == Worker.mobile, Suppression.channel.in_(blocking))
    return ~by_worker & ~by_mobile


def suppressed_on_own(channel: Channel) -> ColumnElement[bool]:
    """SQL: a suppression of `channel` itself (not 'all') blocks this worker, by her id or by her mobile.

    For counting per channel inside one aggregate (`not_suppressed(None)` having excluded 'all' already):
    there an anti-join is not possible, and `IN (subquery)` lets PostgreSQL hash each list once (a hashed
    SubPlan) instead of probing per row. Never NULL, so that NOT of it is safe.
    """
    own = OLD_WORDS.get(channel, channel)
    by_worker = Worker.id.in_(
        select(Suppression.worker_id).where(Suppression.channel == own, Suppression.worker_id.is_not(None))
    )
    by_mobile = Worker.mobile.in_(
        select(Suppression.mobile).where(Suppression.channel == own, Suppression.mobile.is_not(None))
    )
    return or_(by_worker, func.coalesce(by_mobile, false()))


def is_suppressed(
    *, session: Session, channel: Channel | None, worker_id: int | None = None, mobile: str | None = None
) -> bool:
    """Whether a worker (by id) or a number is suppressed on `channel`."""
    conditions = []
    blocking = channels_blocking(channel)
    if worker_id is not None:
        conditions.append(Suppression.worker_id == worker_id)
    if mobile is not None:
        conditions.append(Suppression.mobile == _mobile(mobile))
    if not conditions:
        raise InputError(_("give a worker id or a mobile"))
    found = session.scalar(
        select(Suppression.id).where(or_(*conditions), Suppression.channel.in_(blocking)).limit(1)
    )
    return found is not None


def list_suppressions(
    *, session: Session, limit: int = 100, entry_id: int | None = None
) -> list[SuppressionEntry]:
    """The most recent suppressions (or the one `entry_id`), newest first, mobiles masked."""
    from audiences.schemas import SuppressionEntry  # schemas import this module's channel types

    stmt = select(Suppression).order_by(Suppression.id.desc()).limit(limit)
    if entry_id is not None:
        stmt = stmt.where(Suppression.id == entry_id)
    rows = session.scalars(stmt)
    return [
        SuppressionEntry(
            id=row.id,
            channel=row.channel,  # type: ignore[arg-type]
            reason=row.reason,  # type: ignore[arg-type]
            worker_id=row.worker_id,
            mobile=mask_mobile(row.mobile),
            note=row.note,
            created_at=row.created_at,
        )
        for row in rows
    ]
