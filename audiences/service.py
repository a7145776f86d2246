"""Audiences: compile an expression to the recipients it selects, count and preview them, save it by name.

The one place for what a channel reaches and for warning of compared values no registry row
holds (`unit.township = '城关'` names 城关镇). Takes plain arguments and returns the schemas of
audiences/schemas.py, so the CLI, the web API and the pages show the same answers.
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from audiences import query
from audiences.fields import FIELDS, Field, FieldType, chinese_names, closest, lookup
from audiences.models import Audience, Unit, Worker
from audiences.privacy import mask_mobile, mask_name
from audiences.schemas import (
    AudienceCount,
    AudienceOverview,
    AudiencePreview,
    BreakdownRow,
    FieldInfo,
    RecipientSample,
    SavedAudience,
    UnmatchedValue,
)
from audiences.suppression import OLD_WORDS, not_suppressed, suppressed_on_own
from outreach.errors import Conflict, InputError, NotFound, QueryError
from outreach.i18n import _, translate
from outreach.periods import local_date

__all__ = [
    "AudienceCount",
    "AudiencePreview",
    "BreakdownRow",
    "RecipientSample",
    "SavedAudience",
    "UnmatchedValue",
]

# One word per channel, as campaigns say it (outreach.channels); 'mail', the old word, is still taken.
Channel = Literal["letter", "sms"]
PREVIEW_BREAKDOWNS = ("unit.township", "unit.kind", "category")
MAX_SAMPLE = 1000
MAX_NAME = 100
# Bounds of the "matches no one" check: values looked up per expression, registry values read for hints.
MAX_CHECKED_VALUES = 50
MAX_DISTINCT_VALUES = 2000
MAX_SUGGESTIONS = 3


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
    raise InputError(_("channel {channel} is not letter or sms", channel=repr(channel)))


def _channel_word(channel: Channel | None) -> Channel | None:
    """The channel as results name it: the old word 'mail' is taken and answered as 'letter'."""
    return None if channel is None else OLD_WORDS.get(channel, channel)  # type: ignore[return-value]


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


def _breakdown_field(by: str) -> Field:
    field = lookup(by)
    if field is None:
        hint = closest(by)
        if hint:
            message = _(
                "unknown field {name} to break down by; did you mean {hint}?", name=repr(by), hint=hint
            )
        else:
            message = _("unknown field {name} to break down by", name=repr(by))
        raise QueryError(message, text=by, position=0)
    if not field.groupable:
        raise QueryError(_("cannot break down by {field}", field=by), text=by, position=0)
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
    rows = (BreakdownRow(value=value, count=n) for value, n in counts.items())
    return tuple(sorted(rows, key=lambda r: (-r.count, r.value is None, str(r.value))))


# --- values that match no one ------------------------------------------------------------------------


def _checkable(p: query.Predicate) -> bool:
    """Equalities and in-lists on free-text fields; closed sets (gender, unit kind) are checked on parsing."""
    field = FIELDS[p.field]
    return (
        p.op in ("=", "!=", "in", "not in")
        and field.type is FieldType.TEXT
        and not field.allowed
        and not field.presence_only
    )


def _suggestions(session: Session, field: Field, value: str) -> tuple[str, ...]:
    """Registry values near `value`: those containing it (城关 -> 城关镇) first, then close spellings."""
    column: Any = field.column
    containing = session.scalars(
        select(column)
        .where(column.contains(value, autoescape=True))
        .group_by(column)
        .order_by(func.length(column), column)
        .limit(MAX_SUGGESTIONS)
    ).all()
    found = [str(v) for v in containing]
    if len(found) < MAX_SUGGESTIONS:
        # A bounded sample of distinct values; enough for townships, industries and categories.
        known = session.scalars(
            select(column).where(column.is_not(None)).distinct().limit(MAX_DISTINCT_VALUES)
        ).all()
        for close in difflib.get_close_matches(value, [str(v) for v in known], n=MAX_SUGGESTIONS, cutoff=0.5):
            if close not in found:
                found.append(close)
    return tuple(found[:MAX_SUGGESTIONS])


def unmatched_values(*, session: Session, expression: str) -> tuple[UnmatchedValue, ...]:
    """Values of equalities and in-lists on text fields that no registry row holds, with the closest ones.

    `unit.township = '城关'` counts 0 without being wrong; this says so and names 城关镇. Each value
    costs one indexed or early-stopping lookup (at most MAX_CHECKED_VALUES); hints are read only for a
    value that misses.
    """
    seen: set[tuple[str, str]] = set()
    found: list[UnmatchedValue] = []
    for p in query.predicates(query.validate(expression)):
        if not _checkable(p):
            continue
        field = FIELDS[p.field]
        column: Any = field.column
        for v in p.values:
            key = (p.field, str(v.value))
            if key in seen or len(seen) >= MAX_CHECKED_VALUES:
                continue
            seen.add(key)
            if session.scalar(select(column).where(column == v.value).limit(1)) is not None:
                continue
            found.append(
                UnmatchedValue(
                    field=p.field,
                    written=p.written or p.field,
                    value=str(v.value),
                    position=v.pos,
                    suggestions=_suggestions(session, field, str(v.value)),
                )
            )
    return tuple(found)


# --- counts and previews -----------------------------------------------------------------------------


def count(
    *,
    session: Session,
    expression: str,
    channel: Channel | None = None,
    by: str | None = None,
    today: date | None = None,
    check_values: bool = True,
) -> AudienceCount:
    """How many recipients `expression` selects on `channel`; with `by`, one GROUP BY whose groups sum up.

    With `check_values`, the result also warns of compared values no registry row holds (unmatched_values).
    """
    today = today or local_date()
    channel = _channel_word(channel)
    warnings = unmatched_values(session=session, expression=expression) if check_values else ()
    if by is None:
        stmt = (
            select(func.count())
            .select_from(Worker)
            .join(Unit, Worker.unit_id == Unit.id)
            .where(*_conditions(expression, channel, today))
        )
        total = session.scalar(stmt) or 0
        return AudienceCount(
            expression=expression, channel=channel, by=None, total=total, rows=(), warnings=warnings
        )
    rows = _breakdown(session, expression=expression, channel=channel, by=by, today=today)
    return AudienceCount(
        expression=expression,
        channel=channel,
        by=_breakdown_field(by).name,
        total=sum(r.count for r in rows),
        rows=rows,
        warnings=warnings,
    )


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
    channel = _channel_word(channel)
    if not 0 <= sample <= MAX_SAMPLE:
        raise InputError(_("the sample must have 0 to {n} recipients", n=MAX_SAMPLE))
    warnings = unmatched_values(session=session, expression=expression)
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
    return AudiencePreview(
        expression=expression,
        channel=channel,
        total=total,
        breakdowns=breakdowns,
        sample=recipients,
        warnings=warnings,
    )


# --- saved audiences ---------------------------------------------------------------------------------


def _audience(session: Session, name: str) -> Audience | None:
    return session.scalar(select(Audience).where(Audience.name == name.strip()))


def save(*, session: Session, name: str, expression: str) -> SavedAudience:
    """Saves a named audience after checking its expression; an existing name gets the new expression."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InputError(_("an audience name must have 1 to {n} characters", n=MAX_NAME))
    query.validate(expression)
    audience = _audience(session, name)
    if audience is None:
        audience = Audience(name=name, expression=expression)
        session.add(audience)
    else:
        audience.expression = expression
    session.flush()
    return SavedAudience.model_validate(audience)


def get_by_name(*, session: Session, name: str) -> SavedAudience:
    """The saved audience called `name`; NotFound if there is none."""
    audience = _audience(session, name)
    if audience is None:
        raise NotFound(_("no saved audience named {name}", name=repr(name)))
    return SavedAudience.model_validate(audience)


def list_audiences(*, session: Session) -> list[SavedAudience]:
    """Every saved audience, by name."""
    return [
        SavedAudience.model_validate(a) for a in session.scalars(select(Audience).order_by(Audience.name))
    ]


def field_catalogue() -> list[FieldInfo]:
    """The fields an expression can use: Chinese names, type and meaning in the current language."""
    return [
        FieldInfo(
            name=f.name,
            chinese_names=tuple(chinese_names(f.name)),
            type=f.type.label,
            description=translate(f.description),
        )
        for f in FIELDS.values()
    ]


def rename(*, session: Session, name: str, new_name: str) -> SavedAudience:
    """Gives a saved audience a new name; campaigns keep it (they refer to it by id)."""
    audience = _audience(session, name)
    if audience is None:
        raise NotFound(_("no saved audience named {name}", name=repr(name)))
    new_name = new_name.strip()
    if not new_name or len(new_name) > MAX_NAME:
        raise InputError(_("an audience name must have 1 to {n} characters", n=MAX_NAME))
    other = _audience(session, new_name)
    if other is not None and other.id != audience.id:
        raise Conflict(_("an audience named {name} exists already", name=repr(new_name)))
    audience.name = new_name
    session.flush()
    return SavedAudience.model_validate(audience)


# --- the pages: the live overview, a sample, and the guided builder -----------------------------------

OVERVIEW_CHANNELS: tuple[Channel, ...] = ("letter", "sms")
MAX_FIELD_VALUES = 200
# The words the registry and planners use for the stored gender codes (the query language takes both).
GENDER_WORDS = {"F": "女", "M": "男"}
# What the guided builder offers per kind of field: operator -> how it is written.
TEXT_OPERATORS = ("=", "!=", "contains")
CLOSED_OPERATORS = ("=", "!=")
NUMBER_OPERATORS = ("=", ">=", "<=", ">", "<")
YES_NO_OPERATORS = ("yes", "no")
PRESENCE_OPERATORS = ("is not null", "is null")


def _sorted_rows(counts: dict[Any, int]) -> tuple[BreakdownRow, ...]:
    rows = (BreakdownRow(value=value, count=n) for value, n in counts.items())
    return tuple(sorted(rows, key=lambda r: (-r.count, r.value is None, str(r.value))))


def overview(*, session: Session, expression: str, today: date | None = None) -> AudienceOverview:
    """The count with breakdowns by township and unit kind, and how many of them each channel reaches (as
    `count --channel` says it), in one GROUP BY: one pass over the registry; and unmatched-value warnings."""
    today = today or local_date()
    warnings = unmatched_values(session=session, expression=expression)
    reachable = [
        func.sum(case((and_(*_reachable(channel), ~suppressed_on_own(channel)), 1), else_=0))
        for channel in OVERVIEW_CHANNELS
    ]
    stmt = (
        select(Unit.township, Unit.kind, func.count(), *reachable)
        .select_from(Worker)
        .join(Unit, Worker.unit_id == Unit.id)
        .where(*_conditions(expression, None, today))
        .group_by(Unit.township, Unit.kind)
    )
    towns: dict[Any, int] = {}
    kinds: dict[Any, int] = {}
    reach = dict.fromkeys(OVERVIEW_CHANNELS, 0)
    for township, kind, n, *per_channel in session.execute(stmt):
        towns[township] = towns.get(township, 0) + n
        kinds[kind] = kinds.get(kind, 0) + n
        for channel, m in zip(OVERVIEW_CHANNELS, per_channel, strict=True):
            reach[channel] += int(m or 0)
    return AudienceOverview(
        expression=expression,
        total=sum(towns.values()),
        by_township=_sorted_rows(towns),
        by_kind=_sorted_rows(kinds),
        reach=dict(reach),
        warnings=warnings,
    )


def sample_recipients(
    *,
    session: Session,
    expression: str,
    size: int = 10,
    mask_names: bool = True,
    today: date | None = None,
) -> tuple[RecipientSample, ...]:
    """The first `size` recipients by worker id, mobiles masked and, with `mask_names`, names too."""
    if not 0 <= size <= MAX_SAMPLE:
        raise InputError(_("the sample must have 0 to {n} recipients", n=MAX_SAMPLE))
    stmt = recipient_select(expression=expression, channel=None, today=today or local_date())
    rows = session.execute(stmt.order_by(Worker.id).limit(size)).mappings()
    return tuple(
        RecipientSample(
            worker_id=r["worker_id"],
            name=mask_name(r["name"]) if mask_names else r["name"],
            gender=r["gender"],
            unit_name=r["unit_name"],
            township=r["township"],
            address=r["address"],
            postcode=r["postcode"],
            mobile=mask_mobile(r["mobile"]),
        )
        for r in rows
    )


def _builder_field(name: str) -> Field:
    field = lookup(name)
    if field is None:
        raise InputError(_("unknown field {name}", name=repr(name)))
    return field


def field_operators(field_name: str) -> tuple[str, ...]:
    """The operators the guided builder offers for a field."""
    field = _builder_field(field_name)
    if field.presence_only:
        return PRESENCE_OPERATORS
    if field.type is FieldType.BOOL:
        return YES_NO_OPERATORS
    if field.type is FieldType.INT:
        return NUMBER_OPERATORS
    return CLOSED_OPERATORS if field.allowed else TEXT_OPERATORS


def field_values(*, session: Session, field: str, limit: int = MAX_FIELD_VALUES) -> tuple[str, ...]:
    """The values the guided builder offers for a field: its closed set, or the registry's distinct values
    (at most `limit`, in order); none for numbers, yes/no fields and mobiles."""
    found = _builder_field(field)
    if found.allowed:
        return tuple(GENDER_WORDS.get(v, v) for v in found.allowed)
    if found.type is not FieldType.TEXT or found.presence_only:
        return ()
    column: Any = found.column
    values = session.scalars(
        select(column).where(column.is_not(None), column != "").distinct().order_by(column).limit(limit)
    ).all()
    return tuple(str(v) for v in values)


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def compose_condition(*, field: str, op: str, value: str = "") -> str:
    """One condition as the guided builder writes it (`性别 = '女'`), checked by the query language."""
    found = _builder_field(field)
    if op not in field_operators(found.name):
        raise InputError(_("{op} cannot be used with {field}", op=op, field=field))
    shown = (chinese_names(found.name) or [found.name])[0]
    value = value.strip()
    if op == "yes":
        condition = shown
    elif op == "no":
        condition = f"not {shown}"
    elif op in PRESENCE_OPERATORS:
        condition = f"{shown} {op}"
    elif not value:
        raise InputError(_("choose or type a value for {field}", field=shown))
    elif found.type is FieldType.INT:
        if not value.isdigit():
            raise InputError(_("{field} is a number; {value} is not", field=shown, value=value))
        condition = f"{shown} {op} {value}"
    else:
        condition = f"{shown} {op} {_quoted(value)}"
    query.validate(condition)
    return condition


def combine(*, expression: str, condition: str, joiner: str = "and") -> str:
    """The expression with one more condition joined by `and` or `or`, checked by the query language."""
    if joiner not in ("and", "or"):
        raise InputError(_("join conditions with and or or, not {word}", word=joiner))
    current = expression.strip()
    if not current:
        combined = condition
    else:
        # `a or b and c` would bind c to b alone: an `or` already written is kept whole in parentheses.
        if joiner == "and" and re.search(r"\bor\b", current, flags=re.IGNORECASE):
            current = f"({current})"
        combined = f"{current} {joiner} {condition}"
    query.validate(combined)
    return combined
