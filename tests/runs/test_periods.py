from datetime import UTC, datetime

import pytest

from outreach.errors import InputError
from outreach.periods import Quarter, due_quarter, parse_quarter, quarter_of

TZ = "Asia/Shanghai"


def test_parse_and_neighbours() -> None:
    q = parse_quarter("2027-Q1")
    assert q == Quarter(2027, 1) and str(q) == "2027-Q1"
    assert parse_quarter("2027q4").next() == Quarter(2028, 1)
    assert q.previous() == Quarter(2026, 4)
    assert q.first_day.isoformat() == "2027-01-01"


@pytest.mark.parametrize("bad", ["2027", "2027-Q5", "Q1-2027", "", "2027-Q1x"])
def test_parse_refuses(bad: str) -> None:
    with pytest.raises(InputError, match="not a quarter"):
        parse_quarter(bad)


def test_due_quarter_turns_at_the_configured_local_hour() -> None:
    # 08:00 in Shanghai on 1 April 2027 is 00:00 UTC.
    just_before = datetime(2027, 3, 31, 23, 59, tzinfo=UTC)
    at_start = datetime(2027, 4, 1, 0, 0, tzinfo=UTC)
    assert due_quarter(just_before, day=1, hour=8, tz=TZ) == Quarter(2027, 1)
    assert due_quarter(at_start, day=1, hour=8, tz=TZ) == Quarter(2027, 2)
    # A later start day: the 5th at 08:00.
    assert due_quarter(datetime(2027, 4, 3, tzinfo=UTC), day=5, hour=8, tz=TZ) == Quarter(2027, 1)
    assert quarter_of(datetime(2027, 12, 31).date()) == Quarter(2027, 4)
