"""The field catalogue of the audience query language: each name, its column, its type and its values.

A field is named in English (`unit.township`) or by the registry's own Chinese column header (乡镇, 单位.乡镇,
單位.鄉鎮): both resolve to the same Field, so the SQL an expression compiles to does not depend on the name.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import InstrumentedAttribute

from audiences import normalise as normalise_values
from audiences.columns import ALL_COLUMNS
from audiences.models import GENDERS, UNIT_KINDS, Unit, Worker
from outreach.i18n import N_, translate


class FieldType(StrEnum):
    """What kind of value a field holds; the checker compares literals against it."""

    TEXT = "text"
    INT = "number"
    BOOL = "yes/no"

    @property
    def label(self) -> str:
        """The type's name in the current language."""
        return translate(_TYPE_LABELS[self])


_TYPE_LABELS = {FieldType.TEXT: N_("text"), FieldType.INT: N_("number"), FieldType.BOOL: N_("yes/no")}


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
            N_("F or M (女/男 also accepted)"),
            allowed=GENDERS,
            normalise=_lenient(normalise_values.gender),
        ),
        Field("age", FieldType.INT, Worker.birth_year, True, N_("this year minus birth year"), is_age=True),
        Field("birth_year", FieldType.INT, Worker.birth_year, True, N_("year of birth")),
        Field(
            "category",
            FieldType.TEXT,
            Worker.category,
            True,
            N_("e.g. 公务员, 白领, 企业职工, 教师"),
            normalise=_category,
        ),
        Field("hardship", FieldType.BOOL, Worker.hardship, False, N_("a hardship worker")),
        Field("migrant", FieldType.BOOL, Worker.migrant, False, N_("a migrant worker")),
        Field("consent.sms", FieldType.BOOL, Worker.consent_sms, False, N_("agreed to receive SMS")),
        Field("mail_opt_out", FieldType.BOOL, Worker.mail_opt_out, False, N_("refuses mail")),
        Field("name", FieldType.TEXT, Worker.name, False, N_("the worker's name")),
        Field("worker_no", FieldType.TEXT, Worker.worker_no, True, N_("worker number")),
        Field(
            "mobile",
            FieldType.TEXT,
            Worker.mobile,
            True,
            N_("only `mobile is null` / `mobile is not null`"),
            presence_only=True,
            groupable=False,
        ),
        Field("home_address", FieldType.TEXT, Worker.home_address, True, N_("home address")),
        Field("home_postcode", FieldType.TEXT, Worker.home_postcode, True, N_("home postcode"), ordered=True),
        Field(
            "unit.kind",
            FieldType.TEXT,
            Unit.kind,
            False,
            N_("kind of work unit: 企业, 事业单位, 机关, 学校 or 其他"),
            allowed=UNIT_KINDS,
            normalise=_lenient(normalise_values.unit_kind),
            table="units",
        ),
        Field(
            "unit.township",
            FieldType.TEXT,
            Unit.township,
            True,
            N_("township of the work unit"),
            table="units",
        ),
        Field(
            "unit.industry",
            FieldType.TEXT,
            Unit.industry,
            True,
            N_("industry of the work unit"),
            table="units",
        ),
        Field("unit.name", FieldType.TEXT, Unit.name, False, N_("name of the work unit"), table="units"),
        Field(
            "unit.postcode",
            FieldType.TEXT,
            Unit.postcode,
            True,
            N_("postcode of the work unit"),
            ordered=True,
            table="units",
        ),
        Field(
            "unit.address", FieldType.TEXT, Unit.address, True, N_("address of the work unit"), table="units"
        ),
    )
}


# Registry columns (audiences/columns.py) and the field each one fills; the columns' Chinese headers and
# aliases become field names. The credit code has no field.
_FIELD_OF_COLUMN = {
    "worker_no": "worker_no",
    "name": "name",
    "gender": "gender",
    "birth": "birth_year",
    "category": "category",
    "mobile": "mobile",
    "home_address": "home_address",
    "home_postcode": "home_postcode",
    "hardship": "hardship",
    "migrant": "migrant",
    "consent_sms": "consent.sms",
    "mail_opt_out": "mail_opt_out",
    "unit_name": "unit.name",
    "unit_kind": "unit.kind",
    "industry": "unit.industry",
    "township": "unit.township",
    "unit_address": "unit.address",
    "unit_postcode": "unit.postcode",
}
# Names that are no registry header: age is computed, and 出生年 is what people say.
_EXTRA_NAMES = {"年龄": "age", "年齡": "age", "出生年": "birth_year"}
_UNIT_PREFIXES = ("单位", "單位")


def fold_name(name: str) -> str:
    """A field name as looked up: full-width forms folded (NFKC), spaces dropped, lower case."""
    return "".join(unicodedata.normalize("NFKC", name).split()).lower()


def _chinese_names() -> tuple[dict[str, str], dict[str, list[str]]]:
    names: dict[str, str] = {}
    shown: dict[str, list[str]] = {}
    for column in ALL_COLUMNS:
        target = _FIELD_OF_COLUMN.get(column.name)
        if target is None or target not in FIELDS:
            continue
        for header in (column.header, *column.aliases):
            if header.isascii():
                continue  # English aliases such as birth_date would only blur the English names
            forms = [header]
            if FIELDS[target].table == "units" and not header.startswith("工作"):
                # 单位.乡镇 for 乡镇, 单位.地址 for 单位地址: the dotted form of unit.township.
                prefix = next((p for p in _UNIT_PREFIXES if header.startswith(p)), None)
                if prefix:
                    forms.append(f"{prefix}.{header[len(prefix) :]}")
                else:
                    forms.extend(f"{p}.{header}" for p in _UNIT_PREFIXES)
            for form in forms:
                names[fold_name(form)] = target
            if header == column.header:
                shown[target] = forms[:2]
    for name, target in _EXTRA_NAMES.items():
        names[fold_name(name)] = target
        shown.setdefault(target, [name])
    shown["birth_year"] = ["出生年份"]  # the registry's header is 出生日期, but the field holds the year
    return names, shown


_CHINESE, _SHOWN = _chinese_names()
# Every name a field answers to (folded) -> its canonical name.
NAMES: dict[str, str] = {name: name for name in FIELDS} | _CHINESE


def chinese_names(field_name: str) -> list[str]:
    """The field's Chinese names as `outreach audience fields` lists them (header, dotted form)."""
    return list(_SHOWN.get(field_name, []))


def lookup(name: str) -> Field | None:
    """The field called `name`: its English name (any case) or a Chinese column name; None if none is."""
    target = NAMES.get(fold_name(name))
    return None if target is None else FIELDS[target]


def closest(name: str) -> str | None:
    """The field name nearest to a misspelt one (as the planner would write it), for 'did you mean'."""
    folded = fold_name(name)
    # Chinese names are two to four characters: one wrong character is already half of the name.
    cutoff = 0.6 if folded.isascii() else 0.5
    matches = difflib.get_close_matches(folded, list(NAMES), n=1, cutoff=cutoff)
    if matches:
        return matches[0]
    # `township` for `unit.township`: a bare unit attribute is a common slip.
    prefixed = f"unit.{folded}"
    return prefixed if prefixed in FIELDS else None
