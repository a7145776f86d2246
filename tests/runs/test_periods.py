from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from outreach.errors import InputError
from outreach.i18n import use_language
from outreach.periods import (
    Quarter,
    due_quarter,
    normalise_period,
    parse_period,
    parse_quarter,
    quarter_of,
)

TZ = "Asia/Shanghai"


def test_parse_and_neighbours() -> None:
    q = parse_quarter("2027-Q1")
    assert q == Quarter(2027, 1) and str(q) == "2027-Q1"
    assert parse_quarter("2027q4").next() == Quarter(2028, 1)
    assert q.previous() == Quarter(2026, 4)
    assert q.first_day.isoformat() == "2027-01-01"


@pytest.mark.parametrize(
    ("text", "quarter"),
    [
        ("2027Q1", Quarter(2027, 1)),
        ("2027-q1", Quarter(2027, 1)),
        ("2027 Q2", Quarter(2027, 2)),
        (" 2027-Q3 ", Quarter(2027, 3)),
        ("2027年第1季度", Quarter(2027, 1)),
        ("2027年一季度", Quarter(2027, 1)),
        ("2027年第一季度", Quarter(2027, 1)),
        ("2027年第四季度", Quarter(2027, 4)),
        ("2027年3季度", Quarter(2027, 3)),
        ("2027年第二季", Quarter(2027, 2)),
        ("2027年Q2", Quarter(2027, 2)),
        ("２０２７年第１季度", Quarter(2027, 1)),  # full-width digits
        ("２０２７－Ｑ１", Quarter(2027, 1)),  # full-width dash and letter
        ("２０２７ｑ４", Quarter(2027, 4)),
    ],
)
def test_quarters_as_planners_write_them(text: str, quarter: Quarter) -> None:
    assert parse_quarter(text) == quarter
    assert normalise_period(text) == str(quarter)
    assert parse_period(text) == (str(quarter.year), quarter.q)


@pytest.mark.parametrize("text", ["2027", "2027年", "2027年度", "２０２７", "２０２７年"])
def test_years_as_budget_periods(text: str) -> None:
    assert normalise_period(text) == "2027"
    assert parse_period(text) == ("2027", None)


@pytest.mark.parametrize(
    "bad", ["2027", "2027-Q5", "Q1-2027", "", "2027-Q1x", "2027年第五季度", "2027年0季度", "27-Q1", "٢٠٢٧-Q1"]
)
def test_parse_refuses(bad: str) -> None:
    with pytest.raises(InputError) as info:
        parse_quarter(bad)
    assert "2027年第1季度" in str(info.value) and "不是季度" in str(info.value)
    with use_language("en"), pytest.raises(InputError, match="not a quarter"):
        parse_quarter(bad)


@pytest.mark.parametrize("bad", ["2027-Q5", "27", "2027年第五季度", "二〇二七年", "", "2027-"])
def test_budget_period_refuses(bad: str) -> None:
    with pytest.raises(InputError, match="应为年份"):
        normalise_period(bad)


def test_due_quarter_turns_at_the_configured_local_hour() -> None:
    # 08:00 in Shanghai on 1 April 2027 is 00:00 UTC.
    just_before = datetime(2027, 3, 31, 23, 59, tzinfo=UTC)
    at_start = datetime(2027, 4, 1, 0, 0, tzinfo=UTC)
    assert due_quarter(just_before, day=1, hour=8, tz=TZ) == Quarter(2027, 1)
    assert due_quarter(at_start, day=1, hour=8, tz=TZ) == Quarter(2027, 2)
    # A later start day: the 5th at 08:00.
    assert due_quarter(datetime(2027, 4, 3, tzinfo=UTC), day=5, hour=8, tz=TZ) == Quarter(2027, 1)
    assert quarter_of(datetime(2027, 12, 31).date()) == Quarter(2027, 4)


def test_the_ledger_stores_budget_periods_in_their_one_form(session: Session) -> None:
    from outreach.ledger import service as ledger
    from tests.ledger import factories

    factories.rate_card(session)
    camp = factories.campaign(session)
    year = ledger.set_budget(session=session, campaign_id=camp.id, period="２０２７年", amount_fen=500_000)
    quarter = ledger.set_budget(
        session=session, campaign_id=camp.id, period="2027年第一季度", amount_fen=200_000
    )
    assert (year.period, quarter.period) == ("2027", "2027-Q1")
    assert {b.period for b in ledger.budgets(session=session, campaign_id=camp.id)} == {"2027", "2027-Q1"}
    assert ledger.statement(session=session, campaign_id=camp.id, period="2027q1").period == "2027-Q1"
