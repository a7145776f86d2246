"""The append-only audit log: who (account, organisation, address), when, what (action, object, before/after
digest). Every state change, sign-in, failed sign-in, token use, download and approval writes one line."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach.accounts.auth_models import AuditEntry
from outreach.db import utcnow
from outreach.settings import get_settings

MAX_PAGE = 500


@dataclass(frozen=True)
class Actor:
    """Who acted, and from where; every field may be unknown (a failed sign-in, a script)."""

    account_id: int | None = None
    username: str | None = None
    organisation_id: int | None = None
    address: str | None = None


def digest(state: Mapping[str, Any] | None) -> str | None:
    """The SHA-256 of an object's state as canonical JSON, or None when there is no state."""
    if state is None:
        return None
    text = json.dumps(state, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def record(
    *,
    session: Session,
    actor: Actor,
    action: str,
    object_type: str | None = None,
    object_id: object = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    detail: str | None = None,
) -> AuditEntry:
    """Appends one line to the audit log (in the caller's transaction)."""
    entry = AuditEntry(
        at=utcnow(),
        account_id=actor.account_id,
        username=actor.username,
        organisation_id=actor.organisation_id,
        address=actor.address,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        before_digest=digest(before),
        after_digest=digest(after),
        detail=detail,
    )
    session.add(entry)
    session.flush()
    return entry


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(get_settings().timezone))


def query(
    *,
    session: Session,
    username: str | None = None,
    action: str | None = None,
    since: date | None = None,
    until: date | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> Sequence[AuditEntry]:
    """Audit lines, newest first, filtered; keyset paging: pass the last id seen as `before_id`.

    `since` and `until` are days in the union's time zone, both included.
    """
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, MAX_PAGE)))
    if username:
        stmt = stmt.where(AuditEntry.username == username)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if since:
        stmt = stmt.where(AuditEntry.at >= _local_midnight(since))
    if until:
        stmt = stmt.where(AuditEntry.at < _local_midnight(until + timedelta(days=1)))
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return session.scalars(stmt).all()


def iter_all(
    *,
    session: Session,
    username: str | None = None,
    action: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Iterator[AuditEntry]:
    """Every matching line, newest first, read a page at a time (for the CSV export)."""
    before_id: int | None = None
    while True:
        page = query(
            session=session,
            username=username,
            action=action,
            since=since,
            until=until,
            before_id=before_id,
            limit=MAX_PAGE,
        )
        yield from page
        if len(page) < MAX_PAGE:
            return
        before_id = page[-1].id


CSV_COLUMNS = (
    "id",
    "at",
    "username",
    "account_id",
    "organisation_id",
    "address",
    "action",
    "object_type",
    "object_id",
    "before_digest",
    "after_digest",
    "detail",
)


def _cell(value: object) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    # A cell that starts like a formula would run in a spreadsheet (CSV injection): make it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """The audit lines as CSV text, a header first, one line at a time (for streaming)."""
    buffer = StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for entry in entries:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_cell(getattr(entry, column)) for column in CSV_COLUMNS])
        yield buffer.getvalue()
