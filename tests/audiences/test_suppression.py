"""Consent and the suppression list, per channel: who is reachable by mail, by SMS, and at all."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences.models import Suppression, Worker
from audiences.service import Channel, count, recipient_select
from audiences.suppression import (
    is_stop_reply,
    is_suppressed,
    record_returned_mail,
    record_sms_reply,
    suppress,
)
from outreach.errors import InputError, NotFound
from tests.audiences.factories import TODAY, make_unit, make_worker


def reachable(session: Session, channel: Channel | None, expression: str = "true") -> set[str]:
    stmt = recipient_select(expression=expression, channel=channel, today=TODAY)
    return {row.name for row in session.execute(stmt)}


@pytest.fixture
def people(session: Session) -> dict[str, Worker]:
    with_address = make_unit(session, name="有地址单位")
    no_address = make_unit(session, name="无地址单位", address=None, postcode=None)
    return {
        "both": make_worker(session, with_address, name="both", mobile="13900000001", consent_sms=True),
        "no_consent": make_worker(session, with_address, name="no_consent", mobile="13900000002"),
        "no_mobile": make_worker(session, with_address, name="no_mobile", consent_sms=True),
        "mail_opt_out": make_worker(
            session,
            with_address,
            name="mail_opt_out",
            mobile="13900000004",
            consent_sms=True,
            mail_opt_out=True,
        ),
        "nowhere": make_worker(session, no_address, name="nowhere", mobile="13900000005", consent_sms=True),
        "home": make_worker(
            session, no_address, name="home", home_address="城关镇南街5号", home_postcode="365100"
        ),
        "home_no_postcode": make_worker(
            session, no_address, name="home_no_postcode", home_address="城关镇北街"
        ),
    }


def test_mail_needs_an_address_and_postcode_and_no_opt_out(
    session: Session, people: dict[str, Worker]
) -> None:
    assert reachable(session, "mail") == {"both", "no_consent", "no_mobile", "home"}


def test_sms_needs_a_mobile_and_consent(session: Session, people: dict[str, Worker]) -> None:
    assert reachable(session, "sms") == {"both", "mail_opt_out", "nowhere"}


def test_no_channel_is_the_whole_audience(session: Session, people: dict[str, Worker]) -> None:
    assert reachable(session, None) == set(people)


def test_opt_out_by_mobile_hides_the_worker_on_sms_and_mail(
    session: Session, people: dict[str, Worker]
) -> None:
    suppress(session=session, reason="opt_out", channel="all", mobile="139-0000-0001")
    assert "both" not in reachable(session, "sms")
    assert "both" not in reachable(session, "mail")
    assert "both" not in reachable(session, None)


def test_returned_mail_hides_on_mail_only(session: Session, people: dict[str, Worker]) -> None:
    record_returned_mail(session=session, worker_id=people["both"].id, note="查无此人")
    assert "both" not in reachable(session, "mail")
    assert "both" in reachable(session, "sms")
    assert "both" in reachable(session, None)


def test_sms_only_suppression_by_worker_leaves_mail(session: Session, people: dict[str, Worker]) -> None:
    suppress(session=session, reason="opt_out", channel="sms", worker_id=people["both"].id)
    assert "both" not in reachable(session, "sms")
    assert "both" in reachable(session, "mail")
    assert "both" in reachable(session, None)


def test_mail_only_suppression_by_mobile_leaves_sms(session: Session, people: dict[str, Worker]) -> None:
    suppress(session=session, reason="opt_out", channel="mail", mobile="13900000001")
    assert "both" not in reachable(session, "mail")
    assert "both" in reachable(session, "sms")


@pytest.mark.parametrize(
    "text", ["R", " r ", "Ｒ", "t", "TD", "td", "Ｔｄ", "退订", " 退订 ", "拒收", "退訂"]
)
def test_stop_replies_suppress_the_number_everywhere(
    session: Session, people: dict[str, Worker], text: str
) -> None:
    row = record_sms_reply(session=session, mobile="+86 139 0000 0001", text=text)
    assert row is not None
    assert (row.channel, row.reason, row.mobile, row.worker_id) == ("all", "sms_reply", "13900000001", None)
    assert "both" not in reachable(session, "sms")
    assert "both" not in reachable(session, "mail")
    assert is_suppressed(session=session, channel="sms", mobile="13900000001")


@pytest.mark.parametrize("text", ["好的", "RR", "", "谢谢 R", "Return", "1"])
def test_other_replies_record_nothing(session: Session, people: dict[str, Worker], text: str) -> None:
    assert record_sms_reply(session=session, mobile="13900000001", text=text) is None
    assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    assert "both" in reachable(session, "sms")
    assert not is_stop_reply(text)


def test_suppress_is_idempotent(session: Session, people: dict[str, Worker]) -> None:
    first = suppress(session=session, reason="opt_out", channel="all", mobile="13900000001", note="电话")
    again = suppress(session=session, reason="opt_out", channel="all", mobile="+8613900000001")
    assert again.id == first.id
    by_worker = record_returned_mail(session=session, worker_id=people["home"].id)
    assert record_returned_mail(session=session, worker_id=people["home"].id).id == by_worker.id
    assert session.scalar(select(func.count()).select_from(Suppression)) == 2


def test_a_worker_appears_once_however_many_suppressions_and_shared_numbers(
    session: Session, people: dict[str, Worker]
) -> None:
    both = people["both"]
    # Several non-blocking entries for the same worker (mail side) must not multiply her on SMS.
    record_returned_mail(session=session, worker_id=both.id)
    suppress(session=session, reason="opt_out", channel="mail", worker_id=both.id)
    suppress(session=session, reason="opt_out", channel="mail", mobile=both.mobile)
    rows = session.execute(recipient_select(expression="true", channel="sms", today=TODAY)).all()
    ids = [r.worker_id for r in rows]
    assert len(ids) == len(set(ids))
    assert ids.count(both.id) == 1
    assert count(session=session, expression="true", channel="sms", today=TODAY).total == len(ids)
    assert count(session=session, expression="true", channel="sms", by="unit.name", today=TODAY).total == len(
        ids
    )


def test_a_shared_number_opted_out_hides_everyone_who_gave_it(
    session: Session, people: dict[str, Worker]
) -> None:
    unit = make_unit(session)
    make_worker(session, unit, name="sister", mobile="13900000001", consent_sms=True)
    assert {"both", "sister"} <= reachable(session, "sms")
    record_sms_reply(session=session, mobile="13900000001", text="R")
    assert not {"both", "sister"} & reachable(session, "sms")


def test_is_suppressed_per_channel(session: Session, people: dict[str, Worker]) -> None:
    worker = people["no_consent"]
    record_returned_mail(session=session, worker_id=worker.id)
    assert is_suppressed(session=session, channel="mail", worker_id=worker.id)
    assert not is_suppressed(session=session, channel="sms", worker_id=worker.id)
    assert not is_suppressed(session=session, channel=None, worker_id=worker.id)


def test_bad_suppressions_are_refused(session: Session, people: dict[str, Worker]) -> None:
    with pytest.raises(InputError, match="not 11 digits"):
        suppress(session=session, reason="opt_out", channel="all", mobile="12345")
    with pytest.raises(InputError, match="worker id or a mobile"):
        suppress(session=session, reason="opt_out", channel="all")
    with pytest.raises(NotFound):
        record_returned_mail(session=session, worker_id=999_999_999)
    with pytest.raises(InputError, match="channel"):
        suppress(session=session, reason="opt_out", channel="fax", mobile="13900000001")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not 11 digits"):
        record_sms_reply(session=session, mobile="abc", text="R")
    assert session.scalar(select(func.count()).select_from(Suppression)) == 0
