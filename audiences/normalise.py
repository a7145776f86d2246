"""The one place that knows how registry values are written and what they mean.

Each normaliser takes the text of a cell and returns the stored value, None for an empty cell, or raises
`Malformed` with a reason a planner can act on. Nothing is guessed: a value that is present but does not
match one of the accepted forms is refused.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from stdnum import exceptions as stdnum_errors
from stdnum.cn import uscc

from audiences.models import UNIT_KINDS
from outreach.i18n import _
from outreach.periods import local_date

MIN_BIRTH_YEAR = 1900


class Malformed(ValueError):
    """A cell whose value is present but not in an accepted form; str() is the reason."""


_SPACES = re.compile(r"\s+")
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff\U00020000-\U0003ffff])\s+(?=[\u3400-\u9fff\U00020000-\U0003ffff])")
_POSTCODE = re.compile(r"[0-9]{6}")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_MOBILE_SEPARATORS = re.compile(r"[\s\-()./]")
_YEAR = re.compile(r"([0-9]{4})年?")
_DATE = re.compile(r"([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*日?")
_COMPACT_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")

_GENDERS = {
    "女": "F",
    "女性": "F",
    "f": "F",
    "female": "F",
    "男": "M",
    "男性": "M",
    "m": "M",
    "male": "M",
}
_FLAGS = {
    "是": True,
    "否": False,
    "y": True,
    "n": False,
    "yes": True,
    "no": False,
    "true": True,
    "false": False,
    "1": True,
    "0": False,
}
# Unit kinds and the usual worker categories arrive in either script; they are stored in simplified form so
# that one audience expression matches both.
_UNIT_KINDS = {kind: kind for kind in UNIT_KINDS} | {
    "企業": "企业",
    "事業單位": "事业单位",
    "機關": "机关",
    "學校": "学校",
}
_CATEGORIES = {
    "公務員": "公务员",
    "企業職工": "企业职工",
    "教師": "教师",
    "醫護人員": "医护人员",
    "白領": "白领",
}


def _fold(value: str) -> str:
    """Full-width letters, digits and spaces to their ASCII forms (NFKC), only where the text is not ASCII."""
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


def text(value: str, *, max_length: int) -> str | None:
    """Free text (address, industry, township): trims and collapses spaces, full-width ones included."""
    value = value.strip()
    if not value:
        return None
    if "\u3000" in value or "  " in value or "\t" in value or "\n" in value:
        value = _SPACES.sub(" ", value)
    if len(value) > max_length:
        raise Malformed(_("longer than {limit} characters", limit=max_length))
    return value


def name(value: str, *, max_length: int) -> str | None:
    """A person's or unit's name; spaces between Chinese characters (used to align 王　芳) are removed."""
    cleaned = text(value, max_length=max_length + 10)
    if cleaned is None:
        return None
    if not cleaned.isascii():
        cleaned = _CJK_GAP.sub("", cleaned)
    if len(cleaned) > max_length:
        raise Malformed(_("longer than {limit} characters", limit=max_length))
    return cleaned


def postcode(value: str) -> str | None:
    """A postcode: exactly 6 digits (full-width digits accepted)."""
    value = _fold(value).strip().replace(" ", "")
    if not value:
        return None
    if not _POSTCODE.fullmatch(value):
        raise Malformed(_("postcode '{value}' is not 6 digits", value=value))
    return value


def mobile(value: str) -> str | None:
    """A mainland mobile: 11 digits starting 1[3-9]; +86/0086, spaces, dashes and brackets are dropped."""
    folded = _MOBILE_SEPARATORS.sub("", _fold(value))
    if not folded:
        return None
    digits = folded
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if not _MOBILE.fullmatch(digits):
        raise Malformed(_("mobile '{value}' is not 11 digits starting 13-19", value=value.strip()))
    return digits


def credit_code(value: str) -> str | None:
    """A unified social credit code (统一社会信用代码): 18 characters whose last is the check digit."""
    folded = _fold(value).replace(" ", "").replace("-", "").upper()
    if not folded:
        return None
    try:
        return str(uscc.validate(folded))
    except stdnum_errors.InvalidChecksum:
        raise Malformed(_("credit code '{value}' has a wrong check digit", value=folded)) from None
    except stdnum_errors.InvalidLength:
        raise Malformed(_("credit code '{value}' is not 18 characters", value=folded)) from None
    except stdnum_errors.ValidationError:
        raise Malformed(
            _("credit code '{value}' has characters not allowed in a credit code", value=folded)
        ) from None


def gender(value: str) -> str | None:
    """Gender as 'F' or 'M', from 女/女性/F/female or 男/男性/M/male."""
    folded = _fold(value).strip().lower()
    if not folded:
        return None
    try:
        return _GENDERS[folded]
    except KeyError:
        raise Malformed(
            _("gender '{value}' is not one of 女/女性/F/female, 男/男性/M/male", value=value.strip())
        ) from None


def flag(value: str) -> bool | None:
    """A yes/no cell: 是/否, Y/N, yes/no, true/false, 1/0."""
    folded = _fold(value).strip().lower()
    if not folded:
        return None
    try:
        return _FLAGS[folded]
    except KeyError:
        raise Malformed(
            _("'{value}' is not one of 是/否, Y/N, true/false, 1/0", value=value.strip())
        ) from None


def birth(value: str, *, today: date | None = None) -> tuple[int | None, date | None]:
    """Birth year, or date and year: 1985, 1985年, 1985-03-12, 1985/3/12, 1985年3月12日, 19850312."""
    folded = _fold(value).strip()
    if not folded:
        return None, None
    today = today or local_date()
    year_match = _YEAR.fullmatch(folded)
    if year_match:
        year = int(year_match.group(1))
        born = None
    else:
        match = _DATE.fullmatch(folded) or _COMPACT_DATE.fullmatch(folded)
        if not match:
            raise Malformed(
                _("birth '{value}' is neither a year (1985) nor a date (1985-03-12)", value=folded)
            )
        try:
            born = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            raise Malformed(_("birth date '{value}' is not a real date", value=folded)) from None
        year = born.year
    if not MIN_BIRTH_YEAR <= year <= today.year or (born is not None and born > today):
        raise Malformed(
            _(
                "birth '{value}' is outside {first}–{last}",
                value=folded,
                first=MIN_BIRTH_YEAR,
                last=today.year,
            )
        )
    return year, born


def unit_kind(value: str) -> str | None:
    """A unit kind: 企业, 事业单位, 机关, 学校 or 其他 (traditional forms accepted)."""
    cleaned = _SPACES.sub("", _fold(value))
    if not cleaned:
        return None
    try:
        return _UNIT_KINDS[cleaned]
    except KeyError:
        raise Malformed(
            _("unit kind '{value}' is not one of {kinds}", value=cleaned, kinds="/".join(UNIT_KINDS))
        ) from None


def category(value: str, *, max_length: int) -> str | None:
    """A worker category (公务员, 企业职工...); the usual traditional forms are stored simplified."""
    cleaned = text(value, max_length=max_length)
    return None if cleaned is None else _CATEGORIES.get(cleaned, cleaned)


def worker_no(value: str, *, max_length: int) -> str | None:
    """A worker number: full-width letters and digits folded, spaces removed, letters kept as written."""
    cleaned = _SPACES.sub("", _fold(value))
    if not cleaned:
        return None
    if len(cleaned) > max_length:
        raise Malformed(_("longer than {limit} characters", limit=max_length))
    return cleaned
