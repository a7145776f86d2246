"""Campaign periods: quarters stored as '2027-Q1', what planners may write for them, and when each starts.

The one place that reads a period: parse_quarter for a quarter, normalise_period for a budget period (a year
or a quarter). Both take 2027Q1, 2027-q1, 2027年第1季度, 2027年一季度 and full-width digits.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from outreach.errors import InputError
from outreach.i18n import _

# A quarter as planners write it, after NFKC (full-width digits and letters folded) and upper-casing:
# 2027-Q1, 2027Q1, 2027 q1, 2027年Q1, 2027年第1季度, 2027年一季度, 2027年第一季度, 2027年1季.
_QUARTER = re.compile(
    r"^(?P<year>[0-9]{4})\s*(?:年度?)?\s*[-/.]?\s*"
    r"(?:Q\s*(?P<q>[1-4])|第?\s*(?P<cn>[1-4一二三四])\s*季度?)$"
)
# A year as a budget or statement period: 2027, 2027年, 2027年度.
_YEAR = re.compile(r"^(?P<year>[0-9]{4})\s*(?:年度?)?$")
_CHINESE_NUMERALS = {"一": 1, "二": 2, "三": 3, "四": 4}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().upper()


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter."""

    year: int
    q: int

    def __str__(self) -> str:
        return f"{self.year}-Q{self.q}"

    @property
    def first_day(self) -> date:
        """The first day of the quarter."""
        return date(self.year, 3 * self.q - 2, 1)

    def next(self) -> Quarter:
        """The quarter after this one."""
        return Quarter(self.year + self.q // 4, self.q % 4 + 1)

    def previous(self) -> Quarter:
        """The quarter before this one."""
        return Quarter(self.year - 1, 4) if self.q == 1 else Quarter(self.year, self.q - 1)

    def starts_at(self, *, day: int, hour: int, tz: str) -> datetime:
        """When the schedule runs this quarter: its first month's `day` at `hour`, local time."""
        first = self.first_day
        return datetime.combine(first.replace(day=day), time(hour), tzinfo=ZoneInfo(tz))


def _quarter(text: str) -> Quarter | None:
    match = _QUARTER.match(_fold(text))
    if match is None:
        return None
    number = match["q"] or match["cn"]
    return Quarter(int(match["year"]), _CHINESE_NUMERALS.get(number) or int(number))


def parse_quarter(text: str) -> Quarter:
    """Parses a quarter as planners write it: 2027-Q1, 2027q1, 2027年第1季度, 2027年一季度, full-width."""
    quarter = _quarter(text) if isinstance(text, str) else None
    if quarter is None:
        raise InputError(
            _("period {period} is not a quarter like 2027-Q1 or 2027年第1季度", period=repr(text))
        )
    return quarter


def quarter_of(day: date) -> Quarter:
    """The quarter a date falls in."""
    return Quarter(day.year, (day.month - 1) // 3 + 1)


def due_quarter(now: datetime, *, day: int, hour: int, tz: str) -> Quarter | None:
    """The latest quarter whose scheduled start is at or before `now` (None before the first one)."""
    local = now.astimezone(ZoneInfo(tz))
    current = quarter_of(local.date())
    if local >= current.starts_at(day=day, hour=hour, tz=tz):
        return current
    return current.previous()


def normalise_period(period: str) -> str:
    """A budget or statement period in its stored form: '2027' for a year, '2027-Q1' for a quarter.

    Takes what planners write: 2027, 2027年, 2027年度, and every quarter form parse_quarter takes.
    """
    if isinstance(period, str):
        year = _YEAR.match(_fold(period))
        if year is not None:
            return year["year"]
        quarter = _quarter(period)
        if quarter is not None:
            return str(quarter)
    raise InputError(
        _(
            "period {period}: expected a year like 2027 (2027年) or a quarter like 2027-Q1 (2027年第1季度)",
            period=repr(period),
        )
    )


def parse_period(period: str) -> tuple[str, int | None]:
    """Checks a budget period (a year or a quarter, see normalise_period): (year, quarter or None)."""
    year, _sep, quarter = normalise_period(period).partition("-Q")
    return year, int(quarter) if quarter else None


def year_periods(year: str) -> list[str]:
    """The year and its four quarters."""
    return [year, *(f"{year}-Q{q}" for q in range(1, 5))]


def local_date(moment: datetime | None = None) -> date:
    """The calendar date in the union's time zone (settings.timezone) of `moment` (default now)."""
    from outreach.settings import get_settings

    return (moment or datetime.now(UTC)).astimezone(ZoneInfo(get_settings().timezone)).date()


def local_time_text(moment: datetime | None = None) -> str:
    """A stored UTC time as people read it: local time in the union's zone, with the zone ('+08:00')."""
    from outreach.settings import get_settings

    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; Outreach stores UTC
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(ZoneInfo(get_settings().timezone))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"
