"""The field catalogue of the audience query language: each name, its column, its type and its values."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import InstrumentedAttribute

from audiences import normalise as normalise_values
from audiences.models import GENDERS, UNIT_KINDS, Unit, Worker


class FieldType(StrEnum):
    """What kind of value a field holds; the checker compares literals against it."""

    TEXT = "text"
    INT = "number"
    BOOL = "yes/no"


def _lenient(normaliser: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """The importer's normaliser for a value typed in a query: None when it refuses the value."""

    def normalise(value: str) -> str | None:
        try:
            return normaliser(value)
        except normalise_values.Malformed:
            return None

    return normalise


def _category(value: str) -> str | None:
    # Stored simplified (公務員 -> 公务员), so a query in either script matches.
    return normalise_values.category(value, max_length=200) or value


@dataclass(frozen=True)
class Field:
    """One field a planner can name in an audience expression."""

    name: str
    type: FieldType
    column: InstrumentedAttribute[Any]
    nullable: bool
    description: str
    # A closed set of values: a literal outside it is an error that lists them.
    allowed: tuple[str, ...] | None = None
    normalise: Callable[[str], str | None] | None = None
    # Text ordering (<, between) only where it means the same on every backend's collation: digit strings.
    ordered: bool = False
    # Only `is null` / `is not null`: the field's values must not be filtered on (privacy of mobiles).
    presence_only: bool = False
    # Age is computed from birth_year relative to a given day; the compiler maps bounds onto birth_year.
    is_age: bool = False
    # Whether `--by` may group on it (never on mobiles).
    groupable: bool = True
    table: str = field(default="workers")


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field(
            "gender",
            FieldType.TEXT,
            Worker.gender,
            False,
            "F or M (女/男 also accepted)",
            allowed=GENDERS,
            normalise=_lenient(normalise_values.gender),
        ),
        Field("age", FieldType.INT, Worker.birth_year, True, "this year minus birth year", is_age=True),
        Field("birth_year", FieldType.INT, Worker.birth_year, True, "year of birth"),
        Field(
            "category",
            FieldType.TEXT,
            Worker.category,
            True,
            "e.g. 公务员, 白领, 企业职工, 教师",
            normalise=_category,
        ),
        Field("hardship", FieldType.BOOL, Worker.hardship, False, "困难职工"),
        Field("migrant", FieldType.BOOL, Worker.migrant, False, "外来务工"),
        Field("consent.sms", FieldType.BOOL, Worker.consent_sms, False, "agreed to receive SMS"),
        Field("mail_opt_out", FieldType.BOOL, Worker.mail_opt_out, False, "refuses mail"),
        Field("name", FieldType.TEXT, Worker.name, False, "the worker's name"),
        Field("worker_no", FieldType.TEXT, Worker.worker_no, True, "工号"),
        Field(
            "mobile",
            FieldType.TEXT,
            Worker.mobile,
            True,
            "only `mobile is null` / `mobile is not null`",
            presence_only=True,
            groupable=False,
        ),
        Field("home_address", FieldType.TEXT, Worker.home_address, True, "家庭地址"),
        Field("home_postcode", FieldType.TEXT, Worker.home_postcode, True, "家庭邮编", ordered=True),
        Field(
            "unit.kind",
            FieldType.TEXT,
            Unit.kind,
            False,
            "、".join(UNIT_KINDS),
            allowed=UNIT_KINDS,
            normalise=_lenient(normalise_values.unit_kind),
            table="units",
        ),
        Field("unit.township", FieldType.TEXT, Unit.township, True, "乡镇", table="units"),
        Field("unit.industry", FieldType.TEXT, Unit.industry, True, "行业", table="units"),
        Field("unit.name", FieldType.TEXT, Unit.name, False, "单位名称", table="units"),
        Field("unit.postcode", FieldType.TEXT, Unit.postcode, True, "单位邮编", ordered=True, table="units"),
        Field("unit.address", FieldType.TEXT, Unit.address, True, "单位地址", table="units"),
    )
}


def lookup(name: str) -> Field | None:
    """The field called `name` (case-insensitive), or None."""
    return FIELDS.get(name.lower())


def closest(name: str) -> str | None:
    """The catalogue name nearest to a misspelt one, for 'did you mean'."""
    matches = difflib.get_close_matches(name.lower(), list(FIELDS), n=1, cutoff=0.6)
    if matches:
        return matches[0]
    # `township` for `unit.township`: a bare unit attribute is a common slip.
    prefixed = f"unit.{name.lower()}"
    return prefixed if prefixed in FIELDS else None
