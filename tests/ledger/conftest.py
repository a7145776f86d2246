"""Ledger test helpers: English messages where a test matches their wording, and a frozen "today"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, tzinfo

import pytest

from outreach import periods
from outreach.i18n import use_language


@pytest.fixture
def english() -> Iterator[None]:
    """Messages in English inside the test (the default is Chinese)."""
    with use_language("en"):
        yield


def freeze_today(monkeypatch: pytest.MonkeyPatch, day: date, hour: int = 10) -> None:
    """Makes "today" (outreach.periods.local_date, hence every default date) the given day, 10:00 UTC."""
    frozen = datetime.combine(day, time(hour), tzinfo=UTC)

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> FrozenDatetime:  # type: ignore[override]
            moment = frozen if tz is None else frozen.astimezone(tz)
            return cls.fromtimestamp(moment.timestamp(), tz)

    monkeypatch.setattr(periods, "datetime", FrozenDatetime)
