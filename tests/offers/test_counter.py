"""The counter: a code recorded once for the merchant's offer; every refusal answered in Chinese, audited and
nothing recorded; guessing throttled; through the service, the counter page and the API. The merchant never
sees who brought the letter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from outreach.accounts import audit, tokens, users
from outreach.accounts.auth_models import AuditEntry
from outreach.accounts.errors import Throttled
from outreach.accounts.models import Organisation
from outreach.campaigns import service as campaigns
from outreach.offers import service as offers
from outreach.offers.models import AdBooking, CodeLookupFailure, Redemption
from outreach.periods import local_date
from outreach.runs.models import Piece
from outreach.web.app import create_app
from tests.offers.helpers import PERIOD, a_code, offer_world, started_run
from tests.web.conftest import PASSWORD, csrf_of, login

TODAY = date(2027, 3, 15)


def actor(session: Session, merchant_id: int, name: str = "counter1") -> audit.Actor:
    org = session.get(Organisation, merchant_id)
    assert org is not None
    account = users.add(session=session, username=name, password=PASSWORD, role="merchant", organisation=org)
    return audit.Actor(
        account_id=account.id, username=account.username, organisation_id=org.id, address="test"
    )


def redeem(
    session: Session, who: audit.Actor, merchant_id: int, typed: str, today: date = TODAY
) -> offers.Lookup:
    return offers.redeem(session=session, actor=who, merchant_id=merchant_id, typed=typed, today=today)


def redemptions(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Redemption)) or 0


def refusals(session: Session) -> list[str]:
    return [
        str(e.detail)
        for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "offer.code_refused").order_by(AuditEntry.id)
        )
    ]


def test_a_code_is_recorded_once_and_a_second_scan_says_when(session: Session) -> None:
    world = offer_world(session)
    run = started_run(session, world.campaign_id)
    who = actor(session, world.merchant_id)
    code = a_code(session, run.id)
    first = redeem(session, who, world.merchant_id, code.lower()[:5] + "-" + code[5:])
    assert first.outcome == "recorded" and first.offer_text == "凭函到店护理八折"
    assert "有效" in first.message
    again = redeem(session, who, world.merchant_id, code)
    assert again.outcome == "already" and again.at == first.at and "已在本店使用过" in again.message
    assert redemptions(session) == 1
    assert session.scalar(select(func.count()).where(AuditEntry.action == "offer.redeemed")) == 1
    # What the merchant is told names no person: not her name, unit or address.
    piece = session.scalars(select(Piece).where(Piece.run_id == run.id, Piece.seq == 1)).one()
    for said in (first, again):
        text = f"{said.message} {said.offer_text} {said.code}"
        assert piece.name not in text and piece.unit_name not in text and (piece.address or "-") not in text


def test_refusals_are_answered_audited_and_record_nothing(session: Session) -> None:
    world = offer_world(session)
    run = started_run(session, world.campaign_id)
    a = actor(session, world.merchant_id, "counter-a")
    b = actor(session, world.other_merchant_id, "counter-b")
    code = a_code(session, run.id)
    cases = [
        (a, world.merchant_id, "ZZZZZZZZZZ", TODAY, "unknown", "不存在"),
        (a, world.merchant_id, "R000001-0000001", TODAY, "malformed", "信件编号"),
        (a, world.merchant_id, "12345", TODAY, "malformed", "不是兑换码"),
        (b, world.other_merchant_id, code, TODAY, "other_merchant", "没有刊登贵店的优惠"),
        (a, world.merchant_id, code, date(2027, 2, 1), "not_yet", "2027-03-01"),
        (a, world.merchant_id, code, date(2027, 6, 1), "expired", "已过期"),
    ]
    for who, merchant_id, typed, today, outcome, words in cases:
        said = redeem(session, who, merchant_id, typed, today)
        assert (said.outcome, said.recorded) == (outcome, False)
        assert words in said.message, said.message
    assert redemptions(session) == 0
    assert refusals(session) == [c[4] for c in cases]
    # Only a code that does not exist counts toward the guessing throttle.
    assert session.scalar(select(func.count()).select_from(CodeLookupFailure)) == 1
    assert redeem(session, a, world.merchant_id, code).recorded


def test_a_code_of_another_period_is_refused(session: Session) -> None:
    world = offer_world(session)
    started_run(session, world.campaign_id)
    campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
    campaigns.approve(session=session, campaign=campaign, period="2027-Q2")
    later = started_run(session, world.campaign_id, "2027-Q2")
    who = actor(session, world.merchant_id)
    said = redeem(session, who, world.merchant_id, a_code(session, later.id), date(2027, 4, 10))
    assert said.outcome == "other_period" and "2027-Q2" in said.message and PERIOD in said.message
    assert redemptions(session) == 0


def test_guessing_is_throttled_per_account(session: Session) -> None:
    world = offer_world(session)
    run = started_run(session, world.campaign_id)
    guesser = actor(session, world.merchant_id, "guesser")
    other = actor(session, world.merchant_id, "colleague")
    for i in range(offers.MAX_UNKNOWN_LOOKUPS):
        assert redeem(session, guesser, world.merchant_id, f"{i:010d}").outcome == "unknown"
    with pytest.raises(Throttled) as caught:
        redeem(session, guesser, world.merchant_id, a_code(session, run.id))
    assert "分钟后再试" in str(caught.value)
    # Another account of the same shop is not held back, and a real code still works for it.
    assert redeem(session, other, world.merchant_id, a_code(session, run.id)).recorded


@pytest.fixture
def client(committed_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(), base_url="http://testserver") as c:
        yield c


def test_a_round_trip_through_the_counter_page_and_the_api(
    client: TestClient, committed_engine: Engine
) -> None:
    with Session(committed_engine) as session, session.begin():
        world = offer_world(session, women=6)
        run = started_run(session, world.campaign_id)
        org = session.get(Organisation, world.merchant_id)
        assert org is not None
        account = users.add(
            session=session, username="beauty", password=PASSWORD, role="merchant", organisation=org
        )
        token = tokens.issue(session=session, account=account, name="till")[1]
        union = Organisation(kind="union", name="尤溪县总工会", active=True)
        session.add(union)
        session.flush()
        users.add(session=session, username="planner", password=PASSWORD, role="planner", organisation=union)
        codes = [a_code(session, run.id, seq) for seq in (1, 2)]
        pieces = session.scalars(select(Piece).where(Piece.run_id == run.id)).all()
        private = {p.name for p in pieces} | {p.unit_name for p in pieces} | {p.address or "" for p in pieces}
    offers_today = local_date()
    with Session(committed_engine) as session, session.begin():
        # The offer is valid today (in the union's time zone), whatever day the test runs.
        booking = session.get(AdBooking, world.booking_id)
        assert booking is not None
        booking.valid_from, booking.valid_until = offers_today, offers_today

    login(client, "beauty")
    page = client.get("/counter")
    assert page.status_code == 200 and "凭函到店护理八折" in page.text and 'id="code"' in page.text
    token_field = csrf_of(page.text)
    done = client.post("/counter", data={"code": codes[0], "csrf_token": token_field})
    assert done.status_code == 200 and "有效" in done.text and "outcome-recorded" in done.text
    again = client.post("/counter", data={"code": codes[0], "csrf_token": token_field})
    assert "已在本店使用过" in again.text and "使用时间" in again.text
    unknown = client.post("/counter", data={"code": "ZZZZZZZZZZ", "csrf_token": token_field})
    assert "不存在" in unknown.text and "outcome-unknown" in unknown.text
    for html in (page.text, done.text, again.text, unknown.text):
        assert not any(value and value in html for value in private)
    assert client.get("/counter/scan.js").headers["content-type"].startswith("text/javascript")

    api = TestClient(client.app, base_url="http://testserver")
    bearer = {"Authorization": f"Bearer {token}"}
    first = api.post("/api/v1/offers/redemptions", json={"code": codes[1]}, headers=bearer)
    assert first.status_code == 201 and first.json()["recorded"] is True
    second = api.post("/api/v1/offers/redemptions", json={"code": codes[1]}, headers=bearer)
    assert second.status_code == 409 and second.json()["outcome"] == "already"
    missing = api.post("/api/v1/offers/redemptions", json={"code": "ZZZZZZZZZY"}, headers=bearer)
    assert missing.status_code == 404 and not any(v and v in missing.text for v in private)
    mine = api.get("/api/v1/offers/mine", headers=bearer)
    assert mine.status_code == 200 and mine.json()[0]["total"] is None  # 2 redemptions: under the floor

    planner = TestClient(client.app, base_url="http://testserver")
    login(planner, "planner")
    refused = planner.post(
        "/api/v1/offers/redemptions", json={"code": codes[1]}, headers={"x-csrf-token": "x"}
    )
    assert refused.status_code == 403
    report = planner.get("/offers/report", params={"campaign": str(world.campaign_id), "period": PERIOD})
    assert report.status_code == 200 and "<svg" in report.text and "乡镇" in report.text
    assert "寄出 6 件，核销 2 次" in report.text
    download = planner.get("/api/v1/offers/report.csv", params={"campaign": "俏佳人", "period": PERIOD})
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert download.text.lstrip("\ufeff").startswith("campaign,period,dimension")
    # A merchant reads only its own figures, never the planners' report.
    assert client.get("/offers/report", params={"campaign": "俏佳人", "period": PERIOD}).status_code == 403
    with Session(committed_engine) as session:
        assert redemptions(session) == 2
        assert session.scalar(select(func.count()).where(AuditEntry.action == "offer.code_refused")) == 2
