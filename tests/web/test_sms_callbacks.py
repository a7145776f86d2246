"""The gateways' pushes on the web service: the shared secret, receipts applied once however often they come
(a failed one refunded once, also after the run closed), waiting receipts, replies that stop a number on every
channel (kept as evidence) and replies for a person to read, each answered with the gateway's ACK."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from outreach import channels
from outreach.channels.gateways.aliyun import AliyunGateway
from outreach.channels.sms_live import SmsLiveChannel
from outreach.cli import app
from outreach.settings import get_settings
from tests.fakes.sms_gateway import FakeSmsGateway

TOKEN = "s3cret-callback-token"
ALIYUN_ACK = {"code": 0, "msg": "接收成功"}
TENCENT_ACK = {"result": 0, "errmsg": "OK"}


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("OUTREACH_SMS_CALLBACK_TOKEN", TOKEN)
    get_settings.cache_clear()
    yield TOKEN
    monkeypatch.delenv("OUTREACH_SMS_CALLBACK_TOKEN")
    get_settings.cache_clear()


@pytest.fixture
def fake() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway(hang=2.5) as gateway:
        yield gateway


def post(client: TestClient, path: str, body: object, token: str | None = TOKEN) -> tuple[int, object]:
    url = f"/api/v1/sms/{path}" + (f"?token={token}" if token is not None else "")
    raw = json.dumps(body, ensure_ascii=False).encode() if not isinstance(body, bytes) else body
    response = client.post(url, content=raw, headers={"Content-Type": "application/json"})
    return response.status_code, response.json()


def live_run(engine: Engine, fake: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch, *, women: int) -> int:
    """A finished live SMS run through the fake Aliyun gateway, its rate card refunding failed messages."""
    from outreach.campaigns import service as campaigns
    from outreach.ledger.models import RateCard
    from outreach.runs import service as runs
    from tests.runs.world import committed_world
    from workers.local import run_locally

    gateway = AliyunGateway(
        access_key_id=fake.access_key_id,
        access_key_secret=SecretStr("x"),
        sign_name="尤溪县总工会",
        endpoint=fake.endpoint,
        timeout=2,
    )
    monkeypatch.setitem(channels._REGISTRY, "sms", SmsLiveChannel(gateway, template="SMS_1"))
    world = committed_world(
        engine, name="回执短信", women=women, kit="hardship_sms", channel="sms", batch_size=5
    )
    with Session(engine) as session, session.begin():
        campaign = campaigns.get_by_name(session=session, name=world.campaign)
        campaign.sms_hours = "00:00-24:00"
        session.execute(
            update(RateCard).where(RateCard.code == campaign.rate_card_code).values(refund_undeliverable=True)
        )
        run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
    run_locally(run_id)
    return run_id


def test_a_push_without_the_secret_is_refused_and_stores_nothing(
    client: TestClient, committed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outreach.runs.sms import SmsReceipt

    receipt = [
        {"phone_number": "13900000001", "success": True, "biz_id": "1^2", "out_id": "run-000001/batch-0001"}
    ]
    status, body = post(client, "aliyun/report", receipt)  # no secret configured: callbacks are off
    assert status == 403 and "OUTREACH_SMS_CALLBACK_TOKEN" in str(body)
    monkeypatch.setenv("OUTREACH_SMS_CALLBACK_TOKEN", TOKEN)
    get_settings.cache_clear()
    try:
        assert post(client, "aliyun/report", receipt, token="wrong")[0] == 403
        assert post(client, "tencent/status", receipt, token=TOKEN[:-1])[0] == 403
        assert post(client, "aliyun/report", receipt, token=None)[0] == 422
    finally:
        monkeypatch.delenv("OUTREACH_SMS_CALLBACK_TOKEN")
        get_settings.cache_clear()
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(SmsReceipt)) == 0


def test_a_malformed_push_says_where(client: TestClient, token: str) -> None:
    status, body = post(client, "aliyun/report", b'[{"phone_number": ')
    assert status in (400, 422) and "SmsReport" in str(body) and "JSON" in str(body)
    status, body = post(client, "tencent/status", [{"mobile": "13900000001", "report_status": "SUCCESS"}])
    assert status in (400, 422) and "sid" in str(body)


def test_receipts_pushed_twice_out_of_order_apply_once_and_a_failure_is_refunded_once_after_the_run_closed(
    client: TestClient,
    committed_engine: Engine,
    fake: FakeSmsGateway,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from outreach.ledger import service as ledger
    from outreach.runs import sms
    from outreach.runs.models import Piece, Run

    fake.faults.undeliverable.update({"13900000002", "13900000007"})
    run_id = live_run(committed_engine, fake, monkeypatch, women=12)
    with Session(committed_engine) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.state == "done"
        before = ledger.balance(session=session, run_id=run_id)
        assert before.closed and before.refunded_fen == 0
    rows = fake.receipts("aliyun")
    assert len(rows) == 12
    random.Random(7).shuffle(rows)
    answers = [post(client, "aliyun/report", rows[i : i + 5]) for i in range(0, 12, 5)]
    answers += [post(client, "aliyun/report", list(reversed(rows)))]  # every receipt again
    assert all(a == (200, ALIYUN_ACK) for a in answers)
    with Session(committed_engine) as session:
        pieces = {p.mobile: p for p in session.scalars(select(Piece).where(Piece.run_id == run_id))}
        failed = {m for m, p in pieces.items() if p.state == "failed"}
        assert failed == {"13900000002", "13900000007"}
        assert pieces["13900000002"].error_code == "MK:0001" and pieces["13900000002"].delivered_at
        assert sum(p.state == "delivered" for p in pieces.values()) == 10
        assert all(p.submitted_at and p.delivered_at for p in pieces.values())
        after = ledger.balance(session=session, run_id=run_id)
        failed_parts = sum(pieces[m].parts or 0 for m in failed)
        delivered_parts = sum(p.parts or 0 for p in pieces.values() if p.state == "delivered")
        assert after.refunded_pieces == 2 and after.refunded_fen == failed_parts * 5
        assert after.charged_fen - after.refunded_fen == delivered_parts * 5
        assert session.scalar(select(func.count()).select_from(sms.SmsReceipt)) == 12
        status = sms.status(session=session, run_id=run_id)
        assert (status.delivered, status.failed, status.awaiting_receipts) == (10, 2, 0)
        assert status.failures == [("MK:0001", 2)]
    # `run status` shows them too, the failures by error code.
    shown = CliRunner().invoke(app, ["run", "status", str(run_id), "--json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.output)
    assert (info["submitted"], info["delivered"], info["awaiting_receipts"]) == (12, 10, 0)
    assert info["failures_by_code"] == {"MK:0001": 2}
    table = CliRunner().invoke(app, ["run", "status", str(run_id)])
    assert "已送达的短信（回执）" in table.output and "MK:0001" in table.output


def test_a_receipt_before_its_piece_is_recorded_waits_and_is_applied_then(
    client: TestClient, committed_engine: Engine, token: str
) -> None:
    from outreach.runs import sms
    from outreach.runs.models import Piece
    from tests.runs.world import committed_world

    early = {
        "user_receive_time": "2027-01-04 10:00:01",
        "nationcode": "86",
        "mobile": "13900000001",
        "report_status": "SUCCESS",
        "errmsg": "DELIVRD",
        "description": "用户短信送达成功",
        "sid": "sid-early-1",
    }
    assert post(client, "tencent/status", [early]) == (200, TENCENT_ACK)
    with Session(committed_engine) as session:
        stored = session.scalars(select(sms.SmsReceipt)).one()
        assert stored.applied_at is None and stored.piece_id is None
    committed_world(committed_engine, name="早到回执", women=2, kit="hardship_sms", channel="sms")
    with Session(committed_engine) as session, session.begin():
        from outreach.campaigns import service as campaigns
        from outreach.runs import service as runs

        campaign = campaigns.get_by_name(session=session, name="早到回执")
        run = runs.start(session=session, campaign=campaign, period="2027-Q1")
        piece = session.scalars(select(Piece).where(Piece.run_id == run.id).order_by(Piece.seq)).first()
        assert piece is not None
        piece.state, piece.message_id = "submitted", "sid-early-1"
        session.flush()
        # The batch commits after the receipt came: the supervisor's beat applies it.
        assert sms.apply_stranded(session=session, older_than=60).delivered == 0  # too fresh to be stranded
        applied = sms.apply_stranded(session=session, older_than=0)
        assert applied.delivered == 1
        assert piece.state == "delivered" and piece.delivered_at is not None
    # Pushed again: stored already, nothing moves.
    assert post(client, "tencent/status", [early]) == (200, TENCENT_ACK)
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(sms.SmsReceipt)) == 1


@pytest.mark.parametrize("stop", ["退订", " TD ", "Ｔ", "n", "R。", "\u3000退订\u3000"])
def test_a_stop_reply_suppresses_the_number_on_every_channel_and_is_kept(
    client: TestClient, committed_engine: Engine, token: str, stop: str, fake: FakeSmsGateway
) -> None:
    from audiences import suppression
    from outreach.runs import sms

    reply = fake.reply("aliyun", "13900000005", stop, sequence_as_number=True)
    assert post(client, "aliyun/up", [reply]) == (200, ALIYUN_ACK)
    assert post(client, "aliyun/up", [reply]) == (200, ALIYUN_ACK)  # pushed twice: kept once
    with Session(committed_engine) as session:
        for channel in ("letter", "sms"):
            assert suppression.is_suppressed(session=session, channel=channel, mobile="13900000005")  # type: ignore[arg-type]
        kept = session.scalars(select(sms.SmsReply)).one()
        assert kept.text == stop and kept.stop and kept.suppression_id is not None
        assert sms.replies(session=session) == []  # nothing for a person to read


def test_other_replies_wait_for_a_person_and_tencent_replies_too(
    client: TestClient, committed_engine: Engine, token: str, fake: FakeSmsGateway
) -> None:
    from audiences import suppression
    from outreach.runs import sms

    thanks = fake.reply("aliyun", "13900000006", "谢谢，请问几号截止？")
    stop = fake.reply("tencent", "13900000008", " Ｔ ")
    stop["mobile"] = "+8613900000008"
    assert post(client, "aliyun/up", [thanks]) == (200, ALIYUN_ACK)
    assert post(client, "tencent/reply", stop) == (200, TENCENT_ACK)
    with Session(committed_engine) as session:
        assert not suppression.is_suppressed(session=session, channel="sms", mobile="13900000006")
        assert suppression.is_suppressed(session=session, channel="letter", mobile="13900000008")
        to_read = sms.replies(session=session)
        assert [r.text for r in to_read] == ["谢谢，请问几号截止？"]
        assert len(sms.replies(session=session, include_stops=True)) == 2
    listed = CliRunner().invoke(app, ["sms", "replies"])
    assert listed.exit_code == 0, listed.output
    assert "回复内容" in listed.output and "13900000006" not in listed.output
    to_read_json = json.loads(CliRunner().invoke(app, ["sms", "replies", "--json"]).output)
    assert [(r["mobile"], r["text"]) for r in to_read_json] == [("139****0006", "谢谢，请问几号截止？")]
    every = json.loads(CliRunner().invoke(app, ["sms", "replies", "--all", "--json"]).output)
    assert [(r["mobile"], r["stop"]) for r in every] == [("139****0008", True), ("139****0006", False)]


def test_the_purge_deletes_sms_batch_files_but_keeps_consent_evidence_six_months(
    client: TestClient,
    committed_engine: Engine,
    fake: FakeSmsGateway,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import timedelta

    from audiences import suppression
    from outreach.db import utcnow
    from outreach.runs import retention, sms
    from outreach.runs.models import Batch, Piece
    from outreach.storage import get_storage

    run_id = live_run(committed_engine, fake, monkeypatch, women=6)
    assert post(client, "aliyun/report", fake.receipts("aliyun")) == (200, ALIYUN_ACK)
    replies = [fake.reply("aliyun", "13900000001", "退订"), fake.reply("aliyun", "13900000002", "好的")]
    assert post(client, "aliyun/up", replies) == (200, ALIYUN_ACK)
    storage = get_storage()
    with Session(committed_engine) as session:
        keys = [str(m["key"]) for b in session.scalars(select(Batch)) for m in b.files.values()]
        intents = [f"run-{run_id:06d}/batch-{seq:04d}/sms-intent.json" for seq in (1, 2)]
        assert keys and all(storage.exists(k) for k in keys + intents)

    def evidence() -> tuple[int, int, int, bool]:
        with Session(committed_engine) as session:
            timed = session.scalar(
                select(func.count()).where(
                    Piece.run_id == run_id, Piece.submitted_at.is_not(None), Piece.delivered_at.is_not(None)
                )
            )
            receipts = session.scalar(select(func.count()).select_from(sms.SmsReceipt))
            kept = session.scalar(select(func.count()).select_from(sms.SmsReply))
            blocked = suppression.is_suppressed(session=session, channel="letter", mobile="13900000001")
            return int(timed or 0), int(receipts or 0), int(kept or 0), blocked

    now = utcnow()
    with Session(committed_engine) as session, session.begin():
        assert (
            retention.purge(session=session, storage=storage, now=now + timedelta(days=31), retention_days=30)
            == 2
        )
    assert not any(storage.exists(k) for k in keys + intents)
    assert evidence() == (6, 6, 2, True)
    # Four months on, with a 30-day retention: the evidence is younger than six months and stays.
    with Session(committed_engine) as session, session.begin():
        assert (
            retention.purge(
                session=session, storage=storage, now=now + timedelta(days=120), retention_days=30
            )
            == 0
        )
    assert evidence() == (6, 6, 2, True)
    # Seven months on: raw receipts and the reply that asked nothing go; the stop reply, the suppression
    # and each piece's submitted and delivered times stay.
    with Session(committed_engine) as session, session.begin():
        retention.purge(session=session, storage=storage, now=now + timedelta(days=210), retention_days=30)
        assert [r.text for r in session.scalars(select(sms.SmsReply))] == ["退订"]
    assert evidence() == (6, 0, 1, True)
