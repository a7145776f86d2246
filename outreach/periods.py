"""Campaign periods: quarters written '2027-Q1', and when each starts (the one place that knows)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from outreach.errors import InputError

_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
# A budget or statement period: a year ('2027') or one quarterly issue ('2027-Q1').
_PERIOD = re.compile(r"^(?P<year>\d{4})(?:-Q(?P<quarter>[1-4]))?$")


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


def parse_quarter(text: str) -> Quarter:
    """Parses '2027-Q1' (also '2027q1'); InputError otherwise."""
    m = _QUARTER.match(text.strip().upper().replace("Q", "-Q", 1).replace("--", "-"))
    if not m:
        raise InputError(f"period {text!r} is not a quarter like 2027-Q1")
    return Quarter(int(m.group(1)), int(m.group(2)))


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


def parse_period(period: str) -> tuple[str, int | None]:
    """Checks a budget period ('2027' or '2027-Q1') and returns (year, quarter or None)."""
    match = _PERIOD.match(period.strip()) if isinstance(period, str) else None
    if match is None:
        raise InputError(f"period {period!r}: expected a year like 2027 or a quarter like 2027-Q1")
    quarter = match["quarter"]
    return match["year"], int(quarter) if quarter else None


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
