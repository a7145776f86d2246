"""Quiet hours: the daily window in which a campaign's SMS may leave, by kind of message.

Marketing (推广) goes out only inside its window (default 08:00-20:00, the union's time zone); notices (通知)
have their own (default 08:00-21:00); a campaign may set its own hours. A window lies within one day (it never
spans midnight). A run that reaches the end of the window stops there and continues at the next opening.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from outreach.errors import InputError
from outreach.i18n import N_, _
from outreach.settings import Settings, get_settings

SmsKind = Literal["marketing", "notice"]
SMS_KINDS: tuple[SmsKind, ...] = ("marketing", "notice")
KIND_NAMES: dict[str, str] = {"marketing": N_("marketing"), "notice": N_("notice")}
# The context key under which a run hands the live channel the moment its window closes (an aware datetime).
SEND_UNTIL = "send_until"


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Hours of the day (local time in `zone`) in which messages may be sent: [start, end)."""

    start: time
    end: time
    zone: ZoneInfo

    def local(self, at: datetime) -> datetime:
        """`at` in the window's time zone (a naive `at` is taken as UTC)."""
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(self.zone)

    def is_open(self, at: datetime) -> bool:
        """Whether a message may be sent at `at`."""
        now = self.local(at).time()
        return self.start <= now < self.end

    def _at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.zone).astimezone(UTC)

    def closes_at(self, at: datetime) -> datetime:
        """When the window that `at` falls in closes (UTC); `at` itself when it is closed."""
        if not self.is_open(at):
            return at
        return self._at(self.local(at).date(), self.end)

    def next_open(self, at: datetime) -> datetime:
        """The first moment at or after `at` when the window is open (UTC)."""
        if self.is_open(at):
            return at
        day = self.local(at).date()
        if self.local(at).time() >= self.end:
            day += timedelta(days=1)
        return self._at(day, self.start)

    def day_bounds(self, at: datetime) -> tuple[datetime, datetime]:
        """The local day of `at` as [start, end) in UTC: the day a per-number cap counts."""
        day = self.local(at).date()
        return self._at(day, time(0)), self._at(day + timedelta(days=1), time(0))

    def describe(self) -> str:
        """The window as a ticket prints it: 08:00-20:00 Asia/Shanghai."""
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.zone.key}"


def parse_hours(text: str, *, zone: str, where: str) -> SendWindow:
    """A window from 'HH:MM-HH:MM' in time zone `zone`; InputError naming `where` and the fault."""
    parts = text.replace("–", "-").replace("～", "-").replace("~", "-").split("-")
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(_("{where}: unknown time zone {zone}", where=where, zone=zone)) from None
    if len(parts) != 2:
        raise InputError(
            _("{where}: sending hours must look like 08:00-20:00, not {value}", where=where, value=text)
        )
    try:
        # 24:00 ends a window at midnight (00:00-24:00 is the whole day).
        start, end = (time.max if p.strip() == "24:00" else time.fromisoformat(p.strip()) for p in parts)
    except ValueError:
        raise InputError(
            _("{where}: sending hours must look like 08:00-20:00, not {value}", where=where, value=text)
        ) from None
    if start >= end:
        raise InputError(
            _(
                "{where}: sending hours {value} must start before they end on the same day",
                where=where,
                value=text,
            )
        )
    return SendWindow(start, end, tz)


def sms_kind(text: str) -> SmsKind:
    """The kind of an SMS campaign from what a person typed: marketing (推广) or notice (通知)."""
    word = text.strip().lower()
    word = {"推广": "marketing", "通知": "notice"}.get(word, word)
    for kind in SMS_KINDS:
        if word == kind:
            return kind
    raise InputError(_("SMS kind must be marketing (推广) or notice (通知), not {value}", value=text))


def window_for(kind: str, hours: str | None = None, *, settings: Settings | None = None) -> SendWindow:
    """The sending window of a kind of message: the campaign's own hours, else the settings' for the kind."""
    s = settings or get_settings()
    if hours:
        return parse_hours(hours, zone=s.timezone, where=_("campaign sending hours"))
    if sms_kind(kind) == "notice":
        return parse_hours(s.sms_notice_hours, zone=s.timezone, where="OUTREACH_SMS_NOTICE_HOURS")
    return parse_hours(s.sms_marketing_hours, zone=s.timezone, where="OUTREACH_SMS_MARKETING_HOURS")
