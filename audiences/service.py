"""Audiences: compile an expression to the recipients it selects, count and preview them, save it by name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from audiences import query
from audiences.fields import FIELDS, closest, lookup
from audiences.models import Audience, Unit, Worker
from audiences.privacy import mask_mobile
from audiences.suppression import not_suppressed
from outreach.errors import InputError, NotFound, QueryError
from outreach.periods import local_date

# One word per channel, as campaigns say it (outreach.channels); 'mail', the old word, is still taken.
Channel = Literal["letter", "sms"]
PREVIEW_BREAKDOWNS = ("unit.township", "unit.kind", "category")
MAX_SAMPLE = 1000
MAX_NAME = 100


@dataclass(frozen=True)
class BreakdownRow:
    """One group of a breakdown: the field's value (None when missing) and how many recipients have it."""

    value: str | int | bool | None
    count: int

    def percent(self, total: int) -> float:
        """Share of `total`, in percent (for display only)."""
        return 100.0 * self.count / total if total else 0.0


@dataclass(frozen=True)
class AudienceCount:
    """How many recipients an expression selects on a channel, and the breakdown by one field."""

    expression: str
    channel: Channel | None
    by: str | None
    total: int
    rows: tuple[BreakdownRow, ...]


@dataclass(frozen=True)
class RecipientSample:
    """A recipient as a preview shows her: the mobile masked."""

    worker_id: int
    name: str
    gender: str
    unit_name: str
    township: str | None
    address: str | None
    postcode: str | None
    mobile: str


@dataclass(frozen=True)
class AudiencePreview:
    """The count, breakdowns by township, unit kind and category, and a few recipients."""

    expression: str
    channel: Channel | None
    total: int
    breakdowns: dict[str, tuple[BreakdownRow, ...]]
    sample: tuple[RecipientSample, ...]


def compile_audience(expression: str, *, today: date | None = None) -> ColumnElement[bool]:
    """The expression as a SQL condition over Worker and Unit (literals bound); QueryError if it is wrong."""
    return query.compile_expression(expression, today=today or local_date())


def _has_home_address() -> ColumnElement[bool]:
    # Letters go to the unit unless a home address AND its postcode are on file. Postcodes are checked
    # (6 digits) on import, so presence is the test here; length() would also blind the planner's estimates.
    return and_(
        Worker.home_address.is_not(None),
        Worker.home_address != "",
        Worker.home_postcode.is_not(None),
    )


def _reachable(channel: Channel | None) -> list[ColumnElement[bool]]:
    if channel in ("letter", "mail"):
        unit_address = and_(Unit.address.is_not(None), Unit.address != "", Unit.postcode.is_not(None))
        return [or_(_has_home_address(), unit_address), Worker.mail_opt_out.is_(False)]
    if channel == "sms":
        return [Worker.mobile.is_not(None), Worker.consent_sms.is_(True)]
    if channel is None:
        return []
    raise InputError(f"channel {channel!r} is not letter or sms")


def _conditions(expression: str, channel: Channel | None, today: date | None) -> list[ColumnElement[bool]]:
    return [compile_audience(expression, today=today), *_reachable(channel), not_suppressed(channel)]


def recipient_select(*, expression: str, channel: Channel | None, today: date | None = None) -> Select[Any]:
    """Recipients: worker_id, name, gender, unit_id, unit_name, township, address, postcode, mobile.

    Only workers reachable on `channel` and not suppressed on it; each worker once; unordered (add your own).
    """
    home = _has_home_address()
    return (
        select(
            Worker.id.label("worker_id"),
            Worker.name.label("name"),
            Worker.gender.label("gender"),
            Unit.id.label("unit_id"),
            Unit.name.label("unit_name"),
            Unit.township.label("township"),
            case((home, Worker.home_address), else_=Unit.address).label("address"),
            case((home, Worker.home_postcode), else_=Unit.postcode).label("postcode"),
            Worker.mobile.label("mobile"),
        )
        .select_from(Worker)
        .join(Unit, Worker.unit_id == Unit.id)
        .where(*_conditions(expression, channel, today))
    )


def _breakdown_field(by: str) -> Any:
    field = lookup(by)
    if field is None:
        hint = closest(by)
        raise QueryError(
            f"unknown field {by!r} to break down by" + (f"; did you mean {hint}?" if hint else ""),
            text=by,
            position=0,
        )
    if not field.groupable:
        raise QueryError(f"cannot break down by {field.name}", text=by, position=0)
    return field


def _breakdown(
    session: Session, *, expression: str, channel: Channel | None, by: str, today: date
) -> tuple[BreakdownRow, ...]:
    field = _breakdown_field(by)
    # Group on the stored column (birth_year for age) so the GROUP BY has no bound parameter in it.
    column = field.column
    stmt = (
        select(column, func.count())
        .select_from(Worker)
        .join(Unit, Worker.unit_id == Unit.id)
        .where(*_conditions(expression, channel, today))
        .group_by(column)
    )
    counts: dict[Any, int] = {}
    for value, n in session.execute(stmt):
        key = today.year - value if field.is_age and value is not None else value
        counts[key] = counts.get(key, 0) + n
    rows = (BreakdownRow(value, n) for value, n in counts.items())
    return tuple(sorted(rows, key=lambda r: (-r.count, r.value is None, str(r.value))))


def count(
    *,
    session: Session,
    expression: str,
    channel: Channel | None = None,
    by: str | None = None,
    today: date | None = None,
) -> AudienceCount:
    """How many recipients `expression` selects on `channel`; with `by`, one GROUP BY whose groups sum up."""
    today = today or local_date()
    if by is None:
        stmt = (
            select(func.count())
            .select_from(Worker)
            .join(Unit, Worker.unit_id == Unit.id)
            .where(*_conditions(expression, channel, today))
        )
        return AudienceCount(expression, channel, None, session.scalar(stmt) or 0, ())
    rows = _breakdown(session, expression=expression, channel=channel, by=by, today=today)
    by_name = FIELDS[by.lower()].name
    return AudienceCount(expression, channel, by_name, sum(r.count for r in rows), rows)


def preview(
    *,
    session: Session,
    expression: str,
    channel: Channel | None = None,
    sample: int = 10,
    today: date | None = None,
) -> AudiencePreview:
    """Breakdowns by township, unit kind and category, and the first `sample` recipients, mobiles masked."""
    today = today or local_date()
    if not 0 <= sample <= MAX_SAMPLE:
        raise InputError(f"sample must be between 0 and {MAX_SAMPLE}")
    breakdowns = {
        by: _breakdown(session, expression=expression, channel=channel, by=by, today=today)
        for by in PREVIEW_BREAKDOWNS
    }
    total = sum(r.count for r in breakdowns[PREVIEW_BREAKDOWNS[0]])
    stmt = recipient_select(expression=expression, channel=channel, today=today)
    rows = session.execute(stmt.order_by(Worker.id).limit(sample)).mappings()
    recipients = tuple(
        RecipientSample(
            worker_id=r["worker_id"],
            name=r["name"],
            gender=r["gender"],
            unit_name=r["unit_name"],
            township=r["township"],
            address=r["address"],
            postcode=r["postcode"],
            mobile=mask_mobile(r["mobile"]),
        )
        for r in rows
    )
    return AudiencePreview(expression, channel, total, breakdowns, recipients)


def save(*, session: Session, name: str, expression: str) -> Audience:
    """Saves a named audience after checking its expression; an existing name gets the new expression."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InputError(f"an audience name must have 1 to {MAX_NAME} characters")
    query.validate(expression)
    audience = session.scalar(select(Audience).where(Audience.name == name))
    if audience is None:
        audience = Audience(name=name, expression=expression)
        session.add(audience)
    else:
        audience.expression = expression
    session.flush()
    return audience


def get_by_name(*, session: Session, name: str) -> Audience:
    """The saved audience called `name`; NotFound if there is none."""
    audience = session.scalar(select(Audience).where(Audience.name == name.strip()))
    if audience is None:
        raise NotFound(f"no saved audience named {name!r}")
    return audience


def list_audiences(*, session: Session) -> list[Audience]:
    """Every saved audience, by name."""
    return list(session.scalars(select(Audience).order_by(Audience.name)))
