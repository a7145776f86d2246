"""The live SMS channel over the real gateway adapters and the fake gateway: pieces submitted with the
gateway's id, per-number errors failed with their code, throttling waited out, no number sent twice."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from outreach.channels import BatchFolder, BatchOutput, Channel
from outreach.channels.gateways.aliyun import AliyunGateway
from outreach.channels.gateways.base import DeliveryReceipt, Gateway, GatewayError, dedupe
from outreach.channels.gateways.tencent import TencentGateway
from outreach.channels.sms_live import INTENT_FILE, RESULT_FILE, SmsLiveChannel, channel_receipts
from outreach.render import Kit, Recipient, load_kit, render_sms
from outreach.storage import LocalStorage
from tests.fakes.sms_gateway import FakeSmsGateway


@pytest.fixture(scope="module")
def kit() -> Kit:
    return load_kit("hardship_sms")


@pytest.fixture
def fake() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway(hang=2.5) as gateway:
        yield gateway


def gateway(kind: str, fake: FakeSmsGateway) -> Gateway:
    if kind == "aliyun":
        return AliyunGateway(
            access_key_id=fake.access_key_id,
            access_key_secret=SecretStr("x"),
            sign_name="尤溪县总工会",
            endpoint=fake.endpoint,
            timeout=1,
        )
    return TencentGateway(
        secret_id=fake.secret_id,
        secret_key=SecretStr("x"),
        sdk_app_id="1400000001",
        sign_name="尤溪县总工会",
        endpoint=fake.endpoint,
        timeout=1,
    )


def people(n: int) -> list[Recipient]:
    return [
        Recipient(
            number=f"R000001-{i:06d}",
            seq=i,
            name=f"王{i}",
            gender="F",
            unit_name="尤溪纺织厂",
            address=None,
            postcode=None,
            mobile=f"136{i:08d}",
        )
        for i in range(1, n + 1)
    ]


def deliver(
    channel: SmsLiveChannel, kit: Kit, recipients: list[Recipient], tmp_path: Path, *, work: str = "w"
) -> tuple[BatchOutput, BatchFolder]:
    folder = BatchFolder(LocalStorage(tmp_path / "store"), "run-000001/batch-0001")
    workdir = tmp_path / work
    workdir.mkdir(exist_ok=True)
    return channel.deliver(kit, recipients, context={}, folder=folder, workdir=workdir), folder


def test_it_is_a_channel_charged_when_submitted() -> None:
    channel: Channel = SmsLiveChannel(template="SMS_1")
    assert channel.name == "sms" and channel.charge_on == "submitted" and channel.keeps_mobile


@pytest.mark.parametrize("kind", ["aliyun", "tencent"])
def test_pieces_are_submitted_with_the_gateway_id_and_a_bad_number_fails_with_its_code(
    kind: str, kit: Kit, fake: FakeSmsGateway, tmp_path: Path
) -> None:
    recipients = people(30)
    recipients[5] = Recipient(
        number=recipients[5].number,
        seq=6,
        name="无号",
        gender="F",
        unit_name="尤溪纺织厂",
        address=None,
        postcode=None,
        mobile=None,
    )
    fake.faults.reject.add(recipients[9].mobile or "")
    channel = SmsLiveChannel(gateway(kind, fake), template="SMS_1")
    output, folder = deliver(channel, kit, recipients, tmp_path)
    by_number = {r.number: r for r in output.results}
    assert [r.number for r in output.results] == [p.number for p in recipients]
    assert by_number[recipients[5].number].state == "failed"  # no mobile: never sent
    bad = by_number[recipients[9].number]
    code = "isv.MOBILE_NUMBER_ILLEGAL" if kind == "aliyun" else "InvalidParameterValue.IncorrectPhoneNumber"
    assert bad.state == "failed" and bad.error_code == code
    submitted = [r for r in output.results if r.state == "submitted"]
    parts = {m.number: m.parts for m in render_sms(kit, recipients, context={})}
    assert len(submitted) == 28 and all(r.message_id and r.parts == parts[r.number] >= 1 for r in submitted)
    assert fake.submitted() == {p.mobile: 1 for i, p in enumerate(recipients) if i not in (5, 9)}
    # The gateway got the composed text without the 【signature】 (it adds the sign name itself).
    text = next(iter(t.params for t in fake.taken))
    body = text["content"] if kind == "aliyun" else text[0]
    assert body.startswith("王") and "【" not in body and body.endswith("拒收请回复R")
    with (tmp_path / "store" / folder.key(RESULT_FILE)).open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and rows[9]["error_code"] == code
    assert not any(p.mobile and p.mobile in str(row) for row in rows for p in recipients)  # masked
    assert (tmp_path / "store" / folder.key(INTENT_FILE)).exists()


def test_throttling_is_waited_out_with_a_growing_pause(
    kit: Kit, fake: FakeSmsGateway, tmp_path: Path
) -> None:
    pauses: list[float] = []
    fake.faults.throttle = 3
    channel = SmsLiveChannel(gateway("aliyun", fake), template="SMS_1", backoff=0.5, sleep=pauses.append)
    output, _ = deliver(channel, kit, people(10), tmp_path)
    assert pauses == [0.5, 1.0, 2.0]
    assert all(r.state == "submitted" for r in output.results)
    assert set(fake.submitted().values()) == {1}


def test_throttling_that_never_ends_gives_up_after_the_set_tries(
    kit: Kit, fake: FakeSmsGateway, tmp_path: Path
) -> None:
    fake.faults.throttle = 100
    channel = SmsLiveChannel(gateway("tencent", fake), template="SMS_1", attempts=3, sleep=lambda s: None)
    with pytest.raises(GatewayError) as caught:
        deliver(channel, kit, people(5), tmp_path)
    assert caught.value.kind == "retryable" and not fake.taken


@pytest.mark.parametrize("kind", ["aliyun", "tencent"])
def test_a_batch_delivered_again_after_a_crash_sends_no_number_twice(
    kind: str, kit: Kit, fake: FakeSmsGateway, tmp_path: Path
) -> None:
    recipients = people(12)
    channel = SmsLiveChannel(gateway(kind, fake), template="SMS_1")
    first, _ = deliver(channel, kit, recipients, tmp_path)
    # The worker dies before the results are recorded; the batch is delivered again.
    if kind == "tencent":
        # Tencent lists a message only once its receipt is in: until then the channel refuses to guess.
        with pytest.raises(GatewayError) as caught:
            deliver(
                SmsLiveChannel(gateway(kind, fake), template="SMS_1"), kit, recipients, tmp_path, work="w2"
            )
        assert caught.value.code == "outreach.UNRESOLVED" and caught.value.maybe_sent
        fake.receipts("tencent")
    again, _ = deliver(
        SmsLiveChannel(gateway(kind, fake), template="SMS_1"), kit, recipients, tmp_path, work="w3"
    )
    assert set(fake.submitted().values()) == {1} and len(fake.submitted()) == 12
    assert {r.number: r.message_id for r in again.results} == {r.number: r.message_id for r in first.results}
    expected = "submitted" if kind == "aliyun" else "delivered"
    assert {r.state for r in again.results} == {expected}


def test_a_timeout_that_was_taken_is_resolved_by_the_query_not_sent_again(
    kit: Kit, fake: FakeSmsGateway, tmp_path: Path
) -> None:
    fake.faults.timeout, fake.faults.timeout_takes = 1, True
    channel = SmsLiveChannel(gateway("aliyun", fake), template="SMS_1", sleep=lambda s: None)
    output, _ = deliver(channel, kit, people(8), tmp_path)
    assert {r.state for r in output.results} == {"submitted"}
    assert set(fake.submitted().values()) == {1} and len(fake.submitted()) == 8
    assert fake.calls["aliyun.SendBatchSms"] == 1 and fake.calls["aliyun.QuerySendDetails"] >= 8


def test_a_call_the_gateway_refuses_for_good_stops_the_batch(
    kit: Kit, fake: FakeSmsGateway, tmp_path: Path
) -> None:
    bad = AliyunGateway(
        access_key_id="unknown",
        access_key_secret=SecretStr("x"),
        sign_name="尤溪县总工会",
        endpoint=fake.endpoint,
    )
    with pytest.raises(GatewayError) as caught:
        deliver(SmsLiveChannel(bad, template="SMS_1"), kit, people(3), tmp_path)
    assert caught.value.kind == "fatal" and "短信网关" in str(caught.value)


def test_a_live_sms_run_submits_once_applies_receipts_once_and_a_stop_reply_blocks_the_letter(
    committed_engine: Engine, fake: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audiences import suppression
    from outreach import channels
    from outreach.campaigns import service as campaigns
    from outreach.ledger import service as ledger
    from outreach.runs import service as runs
    from outreach.runs.models import Piece, Run
    from tests.runs.world import committed_world
    from workers.local import run_locally

    live = gateway("aliyun", fake)
    monkeypatch.setitem(
        channels._REGISTRY, "sms", SmsLiveChannel(live, template="SMS_1", sleep=lambda s: None)
    )
    world = committed_world(
        committed_engine, name="助学短信", women=12, kit="hardship_sms", channel="sms", batch_size=5
    )
    fake.faults.reject.add("13900000003")
    fake.faults.throttle = 1
    fake.faults.undeliverable.add("13900000007")
    with Session(committed_engine) as session, session.begin():
        campaign = campaigns.get_by_name(session=session, name=world.campaign)
        campaign.sms_hours = "00:00-24:00"  # whatever the hour the test runs at (quiet hours: test_sms_run)
        run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
    run_locally(run_id)
    assert fake.submitted() == {f"139{i:08d}": 1 for i in range(12) if i != 3}
    with Session(committed_engine) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.state == "done"
        pieces = {p.mobile: p for p in session.scalars(select(Piece).where(Piece.run_id == run_id))}
        assert pieces["13900000003"].state == "failed"
        assert pieces["13900000003"].error_code == "isv.MOBILE_NUMBER_ILLEGAL"
        assert all(p.state == "submitted" and p.message_id for m, p in pieces.items() if m != "13900000003")
        parts = sum(p.parts or 0 for p in pieces.values() if p.state == "submitted")
        assert ledger.balance(session=session, run_id=run_id).charged_fen == parts * 5
    # The gateway pushes every receipt twice, out of order; each is applied once.
    bodies = fake.receipts("aliyun")
    receipts = dedupe_all(live, bodies + list(reversed(bodies)))
    assert len(receipts) == 11
    balances = []
    for _ in range(2):
        with Session(committed_engine) as session, session.begin():
            runs.record_receipts(
                session=session,
                run_id=run_id,
                channel=channels.get_channel("sms"),
                receipts=channel_receipts(receipts),
            )
            balances.append(ledger.balance(session=session, run_id=run_id))
    assert balances[0] == balances[1]  # applying them again changes nothing
    with Session(committed_engine) as session:
        pieces = {p.mobile: p for p in session.scalars(select(Piece).where(Piece.run_id == run_id))}
        assert pieces["13900000007"].state == "failed" and pieces["13900000007"].error_code == "MK:0001"
        assert sum(p.state == "delivered" for p in pieces.values()) == 10
    # A reply of 退订 suppresses the number on every channel, the letter too.
    reply = live.parse_replies(json.dumps([fake.reply("aliyun", "13900000001", "退订")]).encode(), {})[0]
    assert reply.is_stop
    with Session(committed_engine) as session, session.begin():
        suppression.record_sms_reply(session=session, mobile=reply.mobile, text=reply.text)
    with Session(committed_engine) as session:
        assert suppression.is_suppressed(session=session, channel="letter", mobile="13900000001")
        assert suppression.is_suppressed(session=session, channel="sms", mobile="13900000001")


def dedupe_all(gw: Gateway, rows: list[dict[str, object]]) -> list[DeliveryReceipt]:
    seen: set[str] = set()
    return dedupe(gw.parse_receipts(json.dumps(rows, ensure_ascii=False).encode(), {}), seen)
