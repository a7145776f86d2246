"""Consent and the suppression list, per channel: who is reachable by mail, by SMS, and at all."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences.models import Suppression, Worker
from audiences.schemas import SuppressionEntry, SuppressionIn
from audiences.service import Channel, count, recipient_select
from audiences.suppression import (
    CHANNEL_NAMES,
    REASON_NAMES,
    add,
    default_channel,
    is_stop_reply,
    is_suppressed,
    list_suppressions,
    record_returned_mail,
    record_sms_reply,
    suppress,
)
from outreach.errors import InputError, NotFound
from outreach.i18n import translate, use_language
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
    assert reachable(session, "letter") == {"both", "no_consent", "no_mobile", "home"}


def test_sms_needs_a_mobile_and_consent(session: Session, people: dict[str, Worker]) -> None:
    assert reachable(session, "sms") == {"both", "mail_opt_out", "nowhere"}


def test_no_channel_is_the_whole_audience(session: Session, people: dict[str, Worker]) -> None:
    assert reachable(session, None) == set(people)


def test_opt_out_by_mobile_hides_the_worker_on_sms_and_mail(
    session: Session, people: dict[str, Worker]
) -> None:
    suppress(session=session, reason="opt_out", channel="all", mobile="139-0000-0001")
    assert "both" not in reachable(session, "sms")
    assert "both" not in reachable(session, "letter")
    assert "both" not in reachable(session, None)


def test_returned_mail_hides_on_mail_only(session: Session, people: dict[str, Worker]) -> None:
    record_returned_mail(session=session, worker_id=people["both"].id, note="查无此人")
    assert "both" not in reachable(session, "letter")
    assert "both" in reachable(session, "sms")
    assert "both" in reachable(session, None)


def test_sms_only_suppression_by_worker_leaves_mail(session: Session, people: dict[str, Worker]) -> None:
    suppress(session=session, reason="opt_out", channel="sms", worker_id=people["both"].id)
    assert "both" not in reachable(session, "sms")
    assert "both" in reachable(session, "letter")
    assert "both" in reachable(session, None)


def test_mail_only_suppression_by_mobile_leaves_sms(session: Session, people: dict[str, Worker]) -> None:
    suppress(session=session, reason="opt_out", channel="letter", mobile="13900000001")
    assert "both" not in reachable(session, "letter")
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
    assert "both" not in reachable(session, "letter")
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
    suppress(session=session, reason="opt_out", channel="letter", worker_id=both.id)
    suppress(session=session, reason="opt_out", channel="letter", mobile=both.mobile)
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
    assert is_suppressed(session=session, channel="letter", worker_id=worker.id)
    assert not is_suppressed(session=session, channel="sms", worker_id=worker.id)
    assert not is_suppressed(session=session, channel=None, worker_id=worker.id)


def test_bad_suppressions_are_refused(session: Session, people: dict[str, Worker]) -> None:
    with pytest.raises(InputError, match="11位数字"):
        suppress(session=session, reason="opt_out", channel="all", mobile="12345")
    with pytest.raises(InputError, match="需要职工编号或手机号码"):
        suppress(session=session, reason="opt_out", channel="all")
    with pytest.raises(NotFound, match="没有编号为 999999999 的职工"):
        record_returned_mail(session=session, worker_id=999_999_999)
    with pytest.raises(InputError, match="渠道 'fax' 不在"):
        suppress(session=session, reason="opt_out", channel="fax", mobile="13900000001")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="原因 'spam' 不在"):
        suppress(session=session, reason="spam", mobile="13900000001")  # type: ignore[arg-type]
    with use_language("en"), pytest.raises(InputError, match="worker id or a mobile"):
        suppress(session=session, reason="opt_out", channel="all")
    with pytest.raises(InputError, match="11位数字"):
        record_sms_reply(session=session, mobile="abc", text="R")
    assert session.scalar(select(func.count()).select_from(Suppression)) == 0


@pytest.mark.parametrize(
    ("reason", "channel"), [("returned_mail", "letter"), ("opt_out", "all"), ("sms_reply", "all")]
)
def test_the_channel_defaults_by_reason_in_the_service(
    session: Session, people: dict[str, Worker], reason: str, channel: str
) -> None:
    assert default_channel(reason) == channel  # type: ignore[arg-type]
    row = suppress(session=session, reason=reason, worker_id=people["both"].id)  # type: ignore[arg-type]
    assert row.channel == channel
    # Named explicitly, the channel is what was asked.
    row = suppress(session=session, reason=reason, channel="sms", worker_id=people["both"].id)  # type: ignore[arg-type]
    assert row.channel == "sms"


def test_the_listing_masks_mobiles_and_names_channels_and_reasons(
    session: Session, people: dict[str, Worker]
) -> None:
    record_sms_reply(session=session, mobile="13900000001", text="退订")
    record_returned_mail(session=session, worker_id=people["no_consent"].id, note="[/]查无此人")
    entries = list_suppressions(session=session)
    assert [(e.channel, e.reason, e.mobile, e.note) for e in entries] == [
        ("letter", "returned_mail", "", "[/]查无此人"),
        ("all", "sms_reply", "139****0001", "reply: 退订"),
    ]
    assert isinstance(entries[0], SuppressionEntry)
    assert "13900000001" not in entries[1].model_dump_json()
    assert [e.id for e in list_suppressions(session=session, entry_id=entries[1].id)] == [entries[1].id]
    assert {translate(CHANNEL_NAMES[c]) for c in ("letter", "sms", "all")} == {"信件", "短信", "所有渠道"}
    assert translate(REASON_NAMES["returned_mail"]) == "信件退回"


def test_add_takes_the_boundary_schema_and_answers_masked(
    session: Session, people: dict[str, Worker]
) -> None:
    entry = add(session=session, request=SuppressionIn(mobile="139 0000 0002", note="电话"))
    assert (entry.channel, entry.reason, entry.mobile) == ("all", "opt_out", "139****0002")
    again = add(session=session, request=SuppressionIn(mobile="13900000002", note="电话"))
    assert again.id == entry.id
    letter = add(session=session, request=SuppressionIn(reason="returned_mail", worker_id=people["both"].id))
    assert letter.channel == "letter"
    assert "both" in reachable(session, "sms") and "both" not in reachable(session, "letter")
