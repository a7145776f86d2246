"""The judged live SMS run: 10,000 messages through the fake Aliyun gateway on real Celery workers over a
private Redis (the account's token bucket shared there), with throttled calls, numbers the gateway refuses and
a worker SIGKILLed mid-run. Every piece is submitted exactly once (the fake gateway counts), receipts pushed
twice to the web service are applied once, charges = delivered parts × rate, and a reply of 退订 blocks that
number's letter too."""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session

from audiences.models import Worker
from outreach.campaigns import service as campaigns
from outreach.ledger import service as ledger
from outreach.ledger.models import RateCard
from outreach.runs import executor, sms
from outreach.runs import service as runs
from outreach.runs.models import Piece, Run
from tests.fakes.sms_gateway import FakeSmsGateway
from tests.runs.test_faults import RedisServer
from tests.runs.test_workers import broker_settings, start_worker, stop
from tests.runs.world import committed_world

pytestmark = [pytest.mark.worker, pytest.mark.redis, pytest.mark.slow, pytest.mark.postgres]

MESSAGES = 10_000
VISIBILITY = 6
RATE = 2000  # numbers a second, all workers together (the Redis token bucket)
TOKEN = "judged-run-token"
REFUSED = {f"138{i:08d}" for i in range(0, 10_000, 500)}  # 20 numbers the gateway refuses
UNDELIVERABLE = {f"138{i:08d}" for i in range(7, 10_000, 333)}  # 31 receipts that say failed


@pytest.fixture
def fake() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway(hang=2.5) as gateway:
        yield gateway


@pytest.fixture
def env(committed_engine: Engine, fake: FakeSmsGateway, tmp_path: Path) -> Iterator[dict[str, str]]:
    """This process and the workers: a private Redis, the live Aliyun gateway pointed at the fake."""
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on this machine")
    server = RedisServer(tmp_path)
    server.start()
    extra = {
        "OUTREACH_BATCH_DIR": str(tmp_path / "batches"),
        "OUTREACH_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "OUTREACH_SUPERVISE_EVERY": "1",
        "OUTREACH_SMS_GATEWAY": "aliyun",
        "OUTREACH_ALIYUN_ACCESS_KEY_ID": fake.access_key_id,
        "OUTREACH_ALIYUN_ACCESS_KEY_SECRET": "x",
        "OUTREACH_ALIYUN_ENDPOINT": fake.endpoint,
        "OUTREACH_SMS_TEMPLATE_CODE": "SMS_1",
        "OUTREACH_SMS_RATE_PER_SECOND": str(RATE),
        "OUTREACH_SMS_RETRY_BACKOFF": "0.05",
        "OUTREACH_SMS_GATEWAY_TIMEOUT": "2",
        "OUTREACH_SMS_CALLBACK_TOKEN": TOKEN,
    }
    try:
        with broker_settings(server.url, f"sms-{uuid.uuid4().hex[:8]}:", **extra) as environment:
            yield environment
    finally:
        server.kill()
        from outreach import channels

        channels._REGISTRY.pop("sms-live", None)  # built with this test's settings


def women(engine: Engine, count: int) -> int:
    """A campaign of `count` women with mobiles and SMS consent (bulk-inserted), sending at any hour, its
    rate card refunding failed messages; returns the started run's id."""
    world = committed_world(
        engine, name="万条短信", women=1, kit="hardship_sms", channel="sms", batch_size=500
    )
    with Session(engine) as session, session.begin():
        unit_id = session.scalars(select(Worker.unit_id)).first()
        session.execute(
            insert(Worker),
            [
                {
                    "key": f"judged-{i}",
                    "row_hash": "0" * 32,
                    "name": f"职工{i}",
                    "gender": "F",
                    "birth_year": 1980 + i % 20,
                    "mobile": f"138{i:08d}",
                    "consent_sms": True,
                    "unit_id": unit_id,
                }
                for i in range(count - 1)
            ],
        )
        campaign = campaigns.get_by_name(session=session, name=world.campaign)
        campaign.sms_hours = (
            "00:00-24:00"  # the test runs at whatever hour it is (quiet hours: their own test)
        )
        session.execute(
            update(RateCard).where(RateCard.code == campaign.rate_card_code).values(refund_undeliverable=True)
        )
        run = runs.start(session=session, campaign=campaign, period="2027-Q1")
        assert run.piece_count == count and run.batch_size == 500
        return run.id


def taken(fake: FakeSmsGateway) -> int:
    return sum(fake.submitted().values())


def test_ten_thousand_messages_with_throttling_refusals_and_a_killed_worker(
    committed_engine: Engine, env: dict[str, str], fake: FakeSmsGateway, tmp_path: Path
) -> None:
    started = time.monotonic()
    run_id = women(committed_engine, MESSAGES)
    fake.faults.reject.update(REFUSED)
    fake.faults.undeliverable.update(UNDELIVERABLE)
    fake.faults.throttle = 12  # twelve calls answered isv.BUSINESS_LIMIT_CONTROL
    doomed = start_worker(env, tmp_path, concurrency=1)
    survivor = start_worker(env, tmp_path, concurrency=1)
    try:
        assert executor.dispatch(run_id) == MESSAGES // 500
        deadline = time.monotonic() + 60
        while taken(fake) < 2500:
            assert time.monotonic() < deadline, "the workers submitted nothing"
            time.sleep(0.01)
        stop(doomed, signal.SIGKILL)  # mid-batch: its calls answered, its transaction never committed
        killed_at = taken(fake)
        state = executor.wait_for(run_id, poll=0.2, timeout=120)
    finally:
        stop(doomed, signal.SIGKILL)
        stop(survivor)
    sent = time.monotonic()
    assert state == "done" and killed_at < MESSAGES - len(REFUSED)
    # Every piece the gateway could take, taken exactly once; the refused numbers never.
    counts = fake.submitted()
    assert set(counts.values()) == {1} and len(counts) == MESSAGES - len(REFUSED)
    assert not REFUSED & set(counts)
    assert fake.calls["aliyun.QuerySendDetails"] > 0  # the killed worker's batch was resolved by asking
    with Session(committed_engine) as session:
        by_state = dict(
            session.execute(
                select(Piece.state, func.count()).where(Piece.run_id == run_id).group_by(Piece.state)
            ).all()
        )
        assert by_state == {"submitted": MESSAGES - len(REFUSED), "failed": len(REFUSED)}
        refused = session.scalars(
            select(Piece.error_code).where(Piece.run_id == run_id, Piece.state == "failed")
        )
        assert set(refused) == {"isv.MOBILE_NUMBER_ILLEGAL"}
        assert (
            session.scalar(
                select(func.count()).where(
                    Piece.run_id == run_id, Piece.submitted_at.is_(None), Piece.state == "submitted"
                )
            )
            == 0
        )

    # The gateway pushes every receipt, shuffled, in pushes of 1,000 — and then all of them again.
    rows = fake.receipts("aliyun")
    assert len(rows) == MESSAGES - len(REFUSED)
    random.Random(13).shuffle(rows)
    from outreach.web.app import create_app

    with TestClient(create_app()) as client:
        url = f"/api/v1/sms/aliyun/report?token={TOKEN}"
        for again in (False, True):
            batch = list(reversed(rows)) if again else rows
            for i in range(0, len(batch), 1000):
                answer = client.post(url, content=json.dumps(batch[i : i + 1000]).encode())
                assert answer.status_code == 200 and answer.json() == {"code": 0, "msg": "接收成功"}
        received = time.monotonic()
        # A reply of 退订 from a number that got its message.
        stopper = "13800001234"
        before = letter_mobiles(committed_engine)
        assert stopper in before
        reply = fake.reply("aliyun", stopper, "退订")
        answer = client.post(f"/api/v1/sms/aliyun/up?token={TOKEN}", content=json.dumps([reply]).encode())
        assert answer.json() == {"code": 0, "msg": "接收成功"}
    with Session(committed_engine) as session:
        status = sms.status(session=session, run_id=run_id)
        delivered = MESSAGES - len(REFUSED) - len(UNDELIVERABLE - REFUSED)
        assert (status.delivered, status.awaiting_receipts) == (delivered, 0)
        assert dict(status.failures) == {
            "isv.MOBILE_NUMBER_ILLEGAL": len(REFUSED),
            "MK:0001": len(UNDELIVERABLE - REFUSED),
        }
        assert session.scalar(select(func.count()).select_from(sms.SmsReceipt)) == len(rows)
        parts = session.scalar(
            select(func.sum(Piece.parts)).where(Piece.run_id == run_id, Piece.state == "delivered")
        )
        balance = ledger.balance(session=session, run_id=run_id)
        assert parts is not None and balance.charged_fen - balance.refunded_fen == parts * 5
        assert balance.refunded_pieces == len(UNDELIVERABLE - REFUSED)
        run = session.get(Run, run_id)
        assert run is not None and run.state == "done"
    # 退订 blocks the number's letter too: the letter audience no longer reaches her.
    assert before - letter_mobiles(committed_engine) == {stopper}
    print(
        f"\n{MESSAGES} messages: sent in {sent - started:.1f} s (kill after {killed_at}), "
        f"{2 * len(rows)} receipts pushed in {received - sent:.1f} s"
    )


def letter_mobiles(engine: Engine) -> set[str]:
    from audiences import service as audiences

    with Session(engine) as session:
        query = audiences.recipient_select(expression="gender = 'F'", channel="letter").subquery()
        return {m for m in session.scalars(select(query.c.mobile)) if m}
