"""The live SMS gateways through their real SDKs and HTTP to the fake gateway on loopback: sending,
throttling, per-number errors, failed and timed-out calls resolved by querying, receipts and replies."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from outreach.channels.gateways import gateway_from_settings
from outreach.channels.gateways.aliyun import AliyunGateway
from outreach.channels.gateways.base import (
    DUPLICATE_NUMBER,
    DeliveryReceipt,
    Gateway,
    GatewayError,
    Reply,
    Sms,
    dedupe,
)
from outreach.channels.gateways.tencent import TencentGateway
from outreach.errors import InputError
from outreach.settings import Settings
from tests.fakes.sms_gateway import FakeSmsGateway

SECRET = "s3cret-never-logged"


@pytest.fixture
def fake() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway(hang=2.5) as gateway:
        yield gateway


def make(kind: str, fake: FakeSmsGateway, *, timeout: float = 5, key_id: str | None = None) -> Gateway:
    if kind == "aliyun":
        return AliyunGateway(
            access_key_id=key_id or fake.access_key_id,
            access_key_secret=SecretStr(SECRET),
            sign_name="尤溪县总工会",
            endpoint=fake.endpoint,
            timeout=timeout,
        )
    return TencentGateway(
        secret_id=key_id or fake.secret_id,
        secret_key=SecretStr(SECRET),
        sdk_app_id="1400000001",
        sign_name="尤溪县总工会",
        endpoint=fake.endpoint,
        timeout=timeout,
    )


def batch(n: int, *, start: int = 0, prefix: str = "P") -> list[Sms]:
    return [Sms(f"{prefix}{i:05d}", f"139{i:08d}", {"name": "张丽"}) for i in range(start, start + n)]


GATEWAYS = ["aliyun", "tencent"]


@pytest.mark.parametrize("kind", GATEWAYS)
def test_a_batch_is_taken_once_with_an_id_per_number(kind: str, fake: FakeSmsGateway) -> None:
    messages = batch(250)  # more than one call of either gateway
    results = make(kind, fake).send_batch(messages, template="SMS_100", batch_ref="r1-b1")
    assert [r.piece for r in results] == [m.piece for m in messages]
    assert all(r.accepted and r.message_id for r in results)
    assert len({r.message_id for r in results}) == 250
    assert set(fake.submitted().values()) == {1} and len(fake.submitted()) == 250
    calls = fake.calls["aliyun.SendBatchSms"] if kind == "aliyun" else fake.calls["tencent.SendSms"]
    assert calls == (3 if kind == "aliyun" else 2)
    assert fake.refused_auth == 0
    assert {t.batch_ref for t in fake.taken} == {"r1-b1"}


@pytest.mark.parametrize("kind", GATEWAYS)
def test_credentials_the_gateway_does_not_know_stop_the_run(kind: str, fake: FakeSmsGateway) -> None:
    with pytest.raises(GatewayError) as caught:
        make(kind, fake, key_id="someone-else").send_batch(batch(3), template="SMS_1", batch_ref="r1")
    assert caught.value.kind == "fatal" and not caught.value.maybe_sent
    assert fake.refused_auth == 1 and not fake.taken


@pytest.mark.parametrize("kind", GATEWAYS)
def test_throttling_is_retryable_and_nothing_was_taken(kind: str, fake: FakeSmsGateway) -> None:
    gateway = make(kind, fake)
    fake.faults.throttle = 1
    with pytest.raises(GatewayError) as caught:
        gateway.send_batch(batch(5), template="SMS_1", batch_ref="r1")
    err = caught.value
    assert err.kind == "retryable" and not err.maybe_sent
    assert err.code == ("isv.BUSINESS_LIMIT_CONTROL" if kind == "aliyun" else "RequestLimitExceeded")
    assert not fake.taken
    assert "短信网关" in str(err)  # people read it in Chinese
    results = gateway.send_batch(batch(5), template="SMS_1", batch_ref="r1")  # the retry goes through
    assert all(r.accepted for r in results) and set(fake.submitted().values()) == {1}


@pytest.mark.parametrize("kind", GATEWAYS)
def test_a_throttled_later_call_hands_back_what_earlier_calls_took(kind: str, fake: FakeSmsGateway) -> None:
    messages = batch(250)
    fake.faults.plan = [None, "throttle"]
    with pytest.raises(GatewayError) as caught:
        make(kind, fake).send_batch(messages, template="SMS_1", batch_ref="r1")
    taken = {r.piece for r in caught.value.results if r.accepted}
    first_call = 100 if kind == "aliyun" else 200
    assert len(taken) == first_call == len(fake.taken)
    rest = [m for m in messages if m.piece not in taken]
    make(kind, fake).send_batch(rest, template="SMS_1", batch_ref="r1")
    assert len(fake.submitted()) == 250 and set(fake.submitted().values()) == {1}


@pytest.mark.parametrize("kind", GATEWAYS)
def test_a_bad_number_fails_alone_and_the_others_go_once(kind: str, fake: FakeSmsGateway) -> None:
    messages = batch(40)
    bad = {messages[7].mobile, messages[31].mobile}
    fake.faults.reject |= bad
    results = make(kind, fake).send_batch(messages, template="SMS_1", batch_ref="r1")
    refused = {r.mobile: r for r in results if not r.accepted}
    assert set(refused) == bad
    code = "isv.MOBILE_NUMBER_ILLEGAL" if kind == "aliyun" else "InvalidParameterValue.IncorrectPhoneNumber"
    assert {r.error_code for r in refused.values()} == {code}
    assert {r.kind for r in refused.values()} == {"per_number"}
    assert fake.submitted() == {m.mobile: 1 for m in messages if m.mobile not in bad}


@pytest.mark.parametrize("kind", GATEWAYS)
def test_a_number_twice_in_one_batch_is_refused_the_second_time(kind: str, fake: FakeSmsGateway) -> None:
    messages = [*batch(3), Sms("P99999", batch(1)[0].mobile, {"name": "张丽"})]
    results = make(kind, fake).send_batch(messages, template="SMS_1", batch_ref="r1")
    assert [r.accepted for r in results] == [True, True, True, False]
    assert results[3].error_code == DUPLICATE_NUMBER and results[3].kind == "per_number"
    assert set(fake.submitted().values()) == {1}


@pytest.mark.parametrize("kind", GATEWAYS)
def test_a_failed_call_may_have_been_taken_so_it_says_so(kind: str, fake: FakeSmsGateway) -> None:
    fake.faults.fail = 1
    with pytest.raises(GatewayError) as caught:
        make(kind, fake).send_batch(batch(5), template="SMS_1", batch_ref="r1")
    assert caught.value.kind == "retryable" and caught.value.maybe_sent
    assert not fake.taken


def test_aliyun_after_a_timeout_the_query_finds_what_was_taken_and_nothing_is_sent_twice(
    fake: FakeSmsGateway,
) -> None:
    gateway = make("aliyun", fake, timeout=1)
    since = datetime.now(UTC) - timedelta(minutes=1)
    messages = batch(6)
    fake.faults.timeout, fake.faults.timeout_takes = 1, True
    with pytest.raises(GatewayError) as caught:
        gateway.send_batch(messages, template="SMS_1", batch_ref="r7-b2")
    assert caught.value.maybe_sent and caught.value.kind == "retryable"
    found = gateway.query_sent(messages, batch_ref="r7-b2", since=since)
    assert found.conclusive and set(found.found) == {m.piece for m in messages}
    assert {r.state for r in found.found.values()} == {"sent"}  # waiting for its receipt
    assert found.found[messages[0].piece].message_id == f"r7-b2:{messages[0].mobile}"
    # Another batch's reference on the same numbers is not this batch's.
    assert not gateway.query_sent(messages, batch_ref="r7-b3", since=since).found
    assert set(fake.submitted().values()) == {1}


def test_aliyun_after_a_timeout_that_took_nothing_the_query_says_so_and_the_resend_is_safe(
    fake: FakeSmsGateway,
) -> None:
    gateway = make("aliyun", fake, timeout=1)
    since = datetime.now(UTC)
    messages = batch(4)
    fake.faults.timeout, fake.faults.timeout_takes = 1, False
    with pytest.raises(GatewayError):
        gateway.send_batch(messages, template="SMS_1", batch_ref="r1")
    found = gateway.query_sent(messages, batch_ref="r1", since=since)
    assert found.conclusive and not found.found
    gateway.send_batch(messages, template="SMS_1", batch_ref="r1")
    assert fake.submitted() == {m.mobile: 1 for m in messages}


def test_tencent_lists_a_message_once_its_receipt_is_in_so_absence_is_not_proof(fake: FakeSmsGateway) -> None:
    gateway = make("tencent", fake, timeout=1)
    since = datetime.now(UTC) - timedelta(minutes=1)
    messages = batch(3)
    fake.faults.timeout, fake.faults.timeout_takes = 1, True
    with pytest.raises(GatewayError) as caught:
        gateway.send_batch(messages, template="1234", batch_ref="r2-b1")
    assert caught.value.maybe_sent
    early = gateway.query_sent(messages, batch_ref="r2-b1", since=since)
    assert not early.found and not early.conclusive
    fake.receipts("tencent")  # the receipts come in
    late = gateway.query_sent(messages, batch_ref="r2-b1", since=since)
    assert set(late.found) == {m.piece for m in messages}
    assert {r.state for r in late.found.values()} == {"delivered"}
    assert {r.message_id for r in late.found.values()} == {t.serial_no for t in fake.taken}


# -- receipts and replies pushed to our callback -------------------------------------------------------------


class Callback:
    """A stand-in for the web service's callback: parses with the gateway, keeps each receipt once."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.seen: set[str] = set()
        self.receipts: list[DeliveryReceipt] = []
        self.replies: list[Reply] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers.items())
                with outer.lock:
                    if self.path == "/receipts":
                        outer.receipts.extend(dedupe(outer.gateway.parse_receipts(body, headers), outer.seen))
                    else:
                        outer.replies.extend(outer.gateway.parse_replies(body, headers))
                data = json.dumps(outer.gateway.ack(), ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("kind", GATEWAYS)
def test_receipts_late_twice_and_out_of_order_are_kept_once_and_match_the_sent_ids(
    kind: str, fake: FakeSmsGateway
) -> None:
    gateway = make(kind, fake)
    fake.faults.undeliverable.add(batch(30)[4].mobile)
    sent = gateway.send_batch(batch(30), template="SMS_1", batch_ref="r3-b1")
    first = fake.receipts(kind, limit=20)
    callback = Callback(gateway)
    try:
        answers = fake.push(callback.url("/receipts"), first, shuffle=True, twice=True)
        more = gateway.send_batch(batch(5, start=30), template="SMS_1", batch_ref="r3-b2")
        rest = fake.receipts(kind)  # the other ten of the first batch arrive late, after the next batch's
        answers += fake.push(callback.url("/receipts"), rest, shuffle=True, twice=True)
    finally:
        callback.close()
    ack = {"code": 0, "msg": "接收成功"} if kind == "aliyun" else {"result": 0, "errmsg": "OK"}
    assert answers and all(a == ack for a in answers)
    ids = {r.message_id for r in [*sent, *more]}
    assert len(callback.receipts) == 35 == len({r.key for r in callback.receipts})
    assert {r.message_id for r in callback.receipts} == ids
    failed = [r for r in callback.receipts if not r.delivered]
    assert [r.mobile for r in failed] == [batch(30)[4].mobile] and failed[0].error_code == "MK:0001"
    assert all(r.reported_at is not None for r in callback.receipts)


def test_aliyun_sequence_ids_come_as_text_or_numbers(fake: FakeSmsGateway) -> None:
    gateway = make("aliyun", fake)
    body = json.dumps(
        [
            fake.reply("aliyun", "13900000001", "退订", sequence_as_number=True),
            fake.reply("aliyun", "13900000002", "好"),
        ],
        ensure_ascii=False,
    ).encode()
    replies = gateway.parse_replies(body, {})
    assert [r.gateway_ref.isdigit() for r in replies] == [True, True]
    assert [r.is_stop for r in replies] == [True, False]
    assert replies[0].dest_code == "1234" and replies[0].received_at is not None


STOPS = ["退订", "T", "TD", "R", "Ｔ", "ＴＤ", "Ｒ", " td ", "\u3000Ｒ\u3000", "r", "退訂"]
NOT_STOPS = ["谢谢", "TD1", "请问什么时候发放", "RT", ""]


@pytest.mark.parametrize("kind", GATEWAYS)
def test_stop_replies_in_full_width_and_padded_forms_are_recognised_by_the_suppression_rule(
    kind: str, fake: FakeSmsGateway
) -> None:
    gateway = make(kind, fake)
    callback = Callback(gateway)
    try:
        for i, text in enumerate(STOPS + NOT_STOPS):
            fake.push(callback.url("/replies"), fake.reply(kind, f"1370000{i:04d}", text))
    finally:
        callback.close()
    by_text = {r.text: r for r in callback.replies}
    assert len(callback.replies) == len(STOPS) + len(NOT_STOPS)
    assert all(by_text[t].is_stop for t in STOPS)
    assert not any(by_text[t].is_stop for t in NOT_STOPS)
    assert all(len(r.mobile) == 11 for r in callback.replies)


@pytest.mark.parametrize("kind", GATEWAYS)
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "不是有效的 JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b"[1]", "第 1 项不是 JSON 对象"),
        (
            json.dumps(
                [
                    {
                        "phone_number": "13900000001",
                        "biz_id": "1^2",
                        "success": True,
                        "sid": "x",
                        "mobile": "13900000001",
                        "report_status": "SUCCESS",
                    },
                    {},
                ]
            ).encode(),
            "第 2 项缺少",
        ),
    ],
)
def test_a_malformed_callback_says_where_in_chinese(
    kind: str, body: bytes, says: str, fake: FakeSmsGateway
) -> None:
    gateway = make(kind, fake)
    with pytest.raises(InputError) as caught:
        gateway.parse_receipts(body, {})
    assert says in str(caught.value)


def test_error_codes_are_classified() -> None:
    aliyun = AliyunGateway(access_key_id="a", access_key_secret=SecretStr("b"), sign_name="s")
    tencent = TencentGateway(secret_id="a", secret_key=SecretStr("b"), sdk_app_id="1", sign_name="s")
    assert aliyun.classify("isv.BUSINESS_LIMIT_CONTROL") == "retryable"
    assert aliyun.classify("Throttling.User") == "retryable"
    assert aliyun.classify("isv.MOBILE_NUMBER_ILLEGAL") == "per_number"
    assert aliyun.classify("isv.SMS_SIGNATURE_ILLEGAL") == "fatal"
    assert aliyun.classify("isv.AMOUNT_NOT_ENOUGH") == "fatal"
    assert tencent.classify("RequestLimitExceeded") == "retryable"
    assert tencent.classify("InternalError.Timeout") == "retryable"
    assert tencent.classify("InvalidParameterValue.IncorrectPhoneNumber") == "per_number"
    assert tencent.classify("LimitExceeded.PhoneNumberDailyLimit") == "per_number"
    assert tencent.classify("FailedOperation.SignatureIncorrectOrUnapproved") == "fatal"
    assert tencent.classify("AuthFailure.SecretIdNotFound") == "fatal"


@pytest.mark.parametrize("kind", GATEWAYS)
def test_neither_the_secret_nor_a_whole_mobile_reaches_the_logs(
    kind: str, fake: FakeSmsGateway, caplog: pytest.LogCaptureFixture
) -> None:
    messages = batch(6)
    fake.faults.reject.add(messages[2].mobile)
    with caplog.at_level(logging.DEBUG):
        results = make(kind, fake).send_batch(messages, template="SMS_1", batch_ref="r1")
        logging.getLogger("test").info("results %s", results)
    assert "139****0002" in caplog.text  # the refusal is logged, masked
    assert SECRET not in caplog.text
    assert not any(m.mobile in caplog.text for m in messages)
    assert SECRET not in repr(Settings(aliyun_access_key_secret=SecretStr(SECRET)))


def test_the_settings_build_the_named_gateway_and_refuse_half_a_configuration(fake: FakeSmsGateway) -> None:
    aliyun = gateway_from_settings(
        Settings(
            sms_gateway="aliyun",
            aliyun_access_key_id=fake.access_key_id,
            aliyun_access_key_secret=SecretStr(SECRET),
            aliyun_endpoint=fake.endpoint,
        )
    )
    assert aliyun.name == "aliyun" and aliyun.send_batch(batch(2), template="T", batch_ref="r")[0].accepted
    with pytest.raises(InputError, match="OUTREACH_TENCENT_SDK_APP_ID"):
        gateway_from_settings(Settings(sms_gateway="tencent", tencent_secret_id="x"))
    with pytest.raises(InputError, match="OUTREACH_SMS_GATEWAY"):
        gateway_from_settings(Settings(sms_gateway=None))
