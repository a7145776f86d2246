"""Print shops' webhooks: signed events from the outbox to a real HTTP receiver on loopback, retried with
backoff, every attempt logged; nothing personal in a payload; nothing sent for a change that rolled back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audiences.models import Unit, Worker
from outreach.accounts import tokens, users, webhooks
from outreach.accounts.models import Organisation
from outreach.campaigns import service as campaigns
from outreach.cli import app as cli_app
from outreach.runs import executor, printshop
from outreach.runs import service as runs
from outreach.runs.models import Batch
from outreach.settings import get_settings
from tests.runs.test_workers import broker, dispatch, start_worker, stop, wait_done  # noqa: F401
from tests.runs.world import PRINT_SHOP, committed_world
from tests.web.conftest import PASSWORD


@dataclass
class Receiver:
    """A webhook receiver on a loopback port: answers the first event's first `fail_first` deliveries with
    503, everything else with 200 (401 for a bad signature), and keeps every request with whether its
    signature checked out against `secret`."""

    fail_first: int = 0
    secret: str = ""
    got: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [g for g in self.got if g["status"] == 200]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            valid = webhooks.verify(
                found.secret,
                timestamp=self.headers.get("Outreach-Timestamp", ""),
                body=body,
                signature=self.headers.get("Outreach-Signature", ""),
            )
            with found.lock:
                uid = self.headers["Outreach-Delivery"]
                first_uid = found.got[0]["uid"] if found.got else uid
                tries = sum(g["uid"] == uid for g in found.got)
                failing = uid == first_uid and tries < found.fail_first
                status = 503 if failing else (200 if valid else 401)
                found.got.append(
                    {
                        "status": status,
                        "valid": valid,
                        "body": body,
                        "uid": uid,
                        "event": self.headers["Outreach-Event"],
                    }
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/outreach/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "webhook_backoff", 0.05)


def admin_token(engine: Engine) -> dict[str, str]:
    with Session(engine) as session, session.begin():
        union = Organisation(kind="union", name="尤溪县总工会", active=True)
        session.add(union)
        session.flush()
        admin = users.add(
            session=session, username="admin", password=PASSWORD, role="admin", organisation=union
        )
        planner = users.add(
            session=session, username="planner", password=PASSWORD, role="planner", organisation=union
        )
        return {
            "admin": tokens.issue(session=session, account=admin, name="t")[1],
            "planner": tokens.issue(session=session, account=planner, name="t")[1],
        }


def wait_settled(engine: Engine, *, expected: int, timeout: float = 20) -> None:
    """Waits until `expected` events exist and none is pending (the delivering thread is done)."""
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            total = session.scalar(select(func.count()).select_from(webhooks.WebhookEvent)) or 0
            pending = session.scalar(
                select(func.count())
                .select_from(webhooks.WebhookEvent)
                .where(webhooks.WebhookEvent.state == "pending")
            )
        if total >= expected and not pending:
            return
        assert time.monotonic() < deadline, f"{total} events, {pending} pending"
        time.sleep(0.05)


def run_and_mail(engine: Engine, women: int = 12) -> tuple[int, list[int]]:
    """A real letter run of the world's campaign (finished by the executor), then its first batch mailed."""
    world = committed_world(engine, women=women, batch_size=5)
    with Session(engine) as session, session.begin():
        campaign = campaigns.get_by_name(session=session, name=world.campaign)
        run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
    assert executor.execute(run_id).state == "done"
    with Session(engine) as session:
        batch_ids = list(session.scalars(select(Batch.id).where(Batch.run_id == run_id).order_by(Batch.seq)))
    with Session(engine) as session, session.begin():
        printshop.report(session=session, batch_id=batch_ids[0], state="mailed")
    return run_id, batch_ids


def test_a_run_s_events_reach_the_shop_signed_and_retried_and_every_attempt_is_logged(
    client: TestClient, committed_engine: Engine, receiver: Receiver
) -> None:
    bearer = admin_token(committed_engine)
    committed_world_shop_only(committed_engine)
    answer = client.put(
        f"/api/v1/webhooks/{PRINT_SHOP}",
        json={"url": receiver.url},
        headers={"Authorization": f"Bearer {bearer['admin']}"},
    )
    assert answer.status_code == 200, answer.text
    receiver.secret = answer.json()["secret"]
    assert len(receiver.secret) == 64
    listed = client.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {bearer['admin']}"}).json()
    assert listed == [{k: v for k, v in answer.json().items() if k != "secret"}]  # shown once only
    receiver.fail_first = 2

    run_id, batch_ids = run_and_mail(committed_engine)
    wait_settled(committed_engine, expected=len(batch_ids) + 2)

    accepted = receiver.accepted()
    assert all(g["valid"] for g in receiver.got)
    # Each event once (the delivering threads run side by side, so in no fixed order).
    events = {}
    for e in (json.loads(g["body"]) for g in accepted):
        events[e["event"], e["data"]["batch"]["id"] if "batch" in e["data"] else None] = e["data"]
    assert len(accepted) == len(events) == len(batch_ids) + 2
    assert set(events) == {("batch.ready", b) for b in batch_ids} | {
        ("run.finished", None),
        ("batch.mailed", batch_ids[0]),
    }
    finished = events["run.finished", None]
    assert finished["run"] == {"id": run_id, "period": "2027-Q1", "state": "done", "pieces": 12, "batches": 3}
    mailed = events["batch.mailed", batch_ids[0]]["batch"]
    assert mailed["state"] == "mailed" and mailed["mailed_at"]
    assert mailed["portal_url"] == f"/portal/batches/{batch_ids[0]}"
    # The first event failed twice (503), then went through: three attempts of the same body (same id).
    first = [g for g in receiver.got if g["uid"] == receiver.got[0]["uid"]]
    assert [g["status"] for g in first] == [503, 503, 200]
    assert len({g["body"] for g in first}) == 1

    log = client.get(
        "/api/v1/webhooks/deliveries", headers={"Authorization": f"Bearer {bearer['admin']}"}
    ).json()["items"]
    by_event: dict[int, list[tuple[int, int | None, str | None, str]]] = {}
    for d in sorted(log, key=lambda d: d["id"]):
        by_event.setdefault(d["event_id"], []).append(
            (d["attempt"], d["status_code"], d["error"], d["event_state"])
        )
    assert sorted(by_event.values()) == sorted(
        [[(1, 200, None, "delivered")]] * (len(batch_ids) + 1)
        + [
            [
                (1, 503, "HTTP 503 Service Unavailable", "delivered"),
                (2, 503, "HTTP 503 Service Unavailable", "delivered"),
                (3, 200, None, "delivered"),
            ]
        ]
    )
    assert all(d["duration_ms"] >= 0 and d["shop"] == PRINT_SHOP for d in log)
    assert len(log) == len(batch_ids) + 2 + 2

    cli = CliRunner().invoke(cli_app, ["printshop", "webhook-log", "--shop", PRINT_SHOP, "--json"])
    assert cli.exit_code == 0, cli.output
    assert sorted(d["id"] for d in json.loads(cli.output)) == sorted(d["id"] for d in log)


def committed_world_shop_only(engine: Engine) -> None:
    """The world's print shop, made before the world so the webhook can be set first (the world reuses it)."""
    with Session(engine) as session, session.begin():
        session.add(Organisation(kind="printshop", name=PRINT_SHOP, active=True))


def test_payloads_carry_no_name_address_or_mobile(committed_engine: Engine, receiver: Receiver) -> None:
    committed_world_shop_only(committed_engine)
    with Session(committed_engine) as session, session.begin():
        receiver.secret = (
            webhooks.configure(session=session, print_shop=PRINT_SHOP, url=receiver.url)[1] or ""
        )
    _run_id, batch_ids = run_and_mail(committed_engine, women=15)
    wait_settled(committed_engine, expected=len(batch_ids) + 2)
    bodies = [g["body"].decode() for g in receiver.accepted()]
    assert len(bodies) == len(batch_ids) + 2
    with Session(committed_engine) as session:
        personal = {w.name for w in session.scalars(select(Worker))}
        personal |= {w.mobile for w in session.scalars(select(Worker)) if w.mobile}
        for unit in session.scalars(select(Unit)):
            personal |= {unit.name, *([unit.address] if unit.address else [])}
    assert len(personal) > 40
    for body in bodies:
        for value in personal:
            assert value not in body, (value, body)

    allowed = {"id", "event", "created_at", "data", "batch", "run", "campaign", "seq", "pieces", "sheets"}
    allowed |= {"state", "portal_url", "period", "batches", "mailed_at"}

    def keys(node: object) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for v in node.values() for k in keys(v)}
        return set()

    assert set().union(*(keys(json.loads(b)) for b in bodies)) <= allowed


def test_an_event_of_a_change_that_rolled_back_is_never_sent(
    committed_engine: Engine, receiver: Receiver
) -> None:
    committed_world_shop_only(committed_engine)
    _run_id, batch_ids = run_and_mail(committed_engine)  # no webhook yet: no events
    with Session(committed_engine) as session, session.begin():
        receiver.secret = (
            webhooks.configure(session=session, print_shop=PRINT_SHOP, url=receiver.url)[1] or ""
        )
    with pytest.raises(RuntimeError), Session(committed_engine) as session, session.begin():
        printshop.report(session=session, batch_id=batch_ids[1], state="mailed")
        assert session.scalar(select(func.count()).select_from(webhooks.WebhookEvent)) == 1
        raise RuntimeError("the transaction fails after the event was written")
    time.sleep(0.3)
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(webhooks.WebhookEvent)) == 0
        assert session.get(Batch, batch_ids[1]).state == "ready"  # type: ignore[union-attr]
    assert receiver.got == []
    # The same report, committed, is sent once.
    with Session(committed_engine) as session, session.begin():
        printshop.report(session=session, batch_id=batch_ids[1], state="mailed")
    wait_settled(committed_engine, expected=1)
    assert [g["event"] for g in receiver.accepted()] == ["batch.mailed"]


def test_a_dead_receiver_is_given_up_after_the_last_attempt(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 3)
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    committed_world_shop_only(committed_engine)
    with Session(committed_engine) as session, session.begin():
        webhooks.configure(session=session, print_shop=PRINT_SHOP, url=f"http://127.0.0.1:{port}/hook")
    run_and_mail(committed_engine)
    wait_settled(committed_engine, expected=5)
    with Session(committed_engine) as session:
        states = set(session.scalars(select(webhooks.WebhookEvent.state)))
        attempts = session.scalars(select(webhooks.WebhookDelivery)).all()
    assert states == {"failed"}
    assert len(attempts) == 5 * 3
    assert all(a.status_code is None and a.error and "refused" in a.error.lower() for a in attempts)
    assert sorted({a.attempt for a in attempts}) == [1, 2, 3]


def test_signatures_check_body_secret_and_freshness() -> None:
    body = b'{"event":"batch.mailed"}'
    now = int(time.time())
    good = webhooks.sign("k" * 64, now, body)
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert webhooks.verify("k" * 64, timestamp=str(now), body=body, signature=good)
    assert not webhooks.verify("k" * 64, timestamp=str(now), body=body + b" ", signature=good)
    assert not webhooks.verify("x" * 64, timestamp=str(now), body=body, signature=good)
    assert not webhooks.verify("k" * 64, timestamp=str(now + 1), body=body, signature=good)
    old = now - webhooks.TOLERANCE - 10
    assert not webhooks.verify(
        "k" * 64, timestamp=str(old), body=body, signature=webhooks.sign("k" * 64, old, body)
    )
    assert not webhooks.verify("k" * 64, timestamp="soon", body=body, signature=good)


def test_webhooks_are_the_admin_s_and_a_bad_url_is_refused_in_chinese(
    client: TestClient, committed_engine: Engine
) -> None:
    bearer = admin_token(committed_engine)
    committed_world_shop_only(committed_engine)
    admin = {"Authorization": f"Bearer {bearer['admin']}"}
    planner = {"Authorization": f"Bearer {bearer['planner']}"}
    assert client.get("/api/v1/webhooks", headers=planner).status_code == 403
    assert client.get("/api/v1/webhooks/deliveries", headers=planner).status_code == 403
    assert (
        client.put(
            f"/api/v1/webhooks/{PRINT_SHOP}", json={"url": "http://x.test/"}, headers=planner
        ).status_code
        == 403
    )
    bad = client.put(f"/api/v1/webhooks/{PRINT_SHOP}", json={"url": "file:///etc/passwd"}, headers=admin)
    assert bad.status_code == 422 and "http://" in bad.json()["detail"] and "地址" in bad.json()["detail"]
    unknown = client.put("/api/v1/webhooks/无此印刷厂", json={"url": "https://x.test/"}, headers=admin)
    assert unknown.status_code == 404
    first = client.put(
        f"/api/v1/webhooks/{PRINT_SHOP}", json={"url": "https://x.test/a"}, headers=admin
    ).json()
    again = client.put(
        f"/api/v1/webhooks/{PRINT_SHOP}", json={"url": "https://x.test/b"}, headers=admin
    ).json()
    assert first["secret"] and again["secret"] is None and again["url"] == "https://x.test/b"
    rotated = client.put(
        f"/api/v1/webhooks/{PRINT_SHOP}",
        json={"url": "https://x.test/b", "rotate_secret": True},
        headers=admin,
    ).json()
    assert rotated["secret"] and rotated["secret"] != first["secret"]
    off = client.delete(f"/api/v1/webhooks/{PRINT_SHOP}", headers=admin)
    assert off.status_code == 200 and off.json()["active"] is False
    audit = client.get("/api/v1/audit?action=webhook.set", headers=admin).json()["items"]
    assert len(audit) == 3


def test_the_cli_sets_a_webhook_and_shows_the_secret_once(committed_engine: Engine) -> None:
    committed_world_shop_only(committed_engine)
    runner = CliRunner()
    first = runner.invoke(cli_app, ["printshop", "webhook", PRINT_SHOP, "https://shop.test/hook"])
    assert first.exit_code == 0, first.output
    with Session(committed_engine) as session:
        secret = session.scalar(select(webhooks.WebhookEndpoint.secret))
    assert secret and secret in first.output and "签名密钥" in first.output
    again = runner.invoke(cli_app, ["printshop", "webhook", PRINT_SHOP, "https://shop.test/other"])
    assert again.exit_code == 0 and secret not in again.output
    bad = runner.invoke(cli_app, ["printshop", "webhook", PRINT_SHOP, "shop.test"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    off = runner.invoke(cli_app, ["printshop", "webhook", PRINT_SHOP, "--off"])
    assert off.exit_code == 0 and "已停用" in off.output


@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.slow
def test_with_a_broker_celery_workers_deliver_and_retry(
    committed_engine: Engine,
    broker: dict[str, str],  # noqa: F811 (the fixture of tests/runs/test_workers.py)
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    committed_world_shop_only(committed_engine)
    with Session(committed_engine) as session, session.begin():
        receiver.secret = (
            webhooks.configure(session=session, print_shop=PRINT_SHOP, url=receiver.url)[1] or ""
        )
    receiver.fail_first = 2
    world = committed_world(committed_engine, women=12, batch_size=5)
    with Session(committed_engine) as session, session.begin():
        campaign = campaigns.get_by_name(session=session, name=world.campaign)
        run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
    worker = start_worker({**broker, "OUTREACH_WEBHOOK_BACKOFF": "0.2"}, tmp_path)
    try:
        assert dispatch(broker, run_id) == 3
        wait_done(committed_engine, run_id, timeout=120)  # the worker finished it: its events are queued
        with Session(committed_engine) as session:
            first = session.scalar(select(Batch.id).where(Batch.run_id == run_id, Batch.seq == 1))
        with Session(committed_engine) as session, session.begin():  # here: sent to the broker on commit
            assert first is not None
            printshop.report(session=session, batch_id=first, state="mailed")
        wait_settled(committed_engine, expected=5, timeout=60)
    finally:
        stop(worker)
    assert sorted(g["event"] for g in receiver.accepted()) == ["batch.mailed"] + ["batch.ready"] * 3 + [
        "run.finished"
    ]
    assert all(g["valid"] for g in receiver.got)
    with Session(committed_engine) as session:
        attempts = session.scalars(
            select(webhooks.WebhookDelivery).order_by(webhooks.WebhookDelivery.id)
        ).all()
    by_event: dict[int, list[tuple[int, int | None]]] = {}
    for a in attempts:
        by_event.setdefault(a.event_id, []).append((a.attempt, a.status_code))
    assert sorted(by_event.values()) == [[(1, 200)]] * 4 + [[(1, 503), (2, 503), (3, 200)]]


def test_events_left_for_a_webhook_turned_off_fail_with_the_reason(
    committed_engine: Engine, receiver: Receiver
) -> None:
    committed_world_shop_only(committed_engine)
    _run_id, batch_ids = run_and_mail(committed_engine)
    with Session(committed_engine) as session, session.begin():
        webhooks.configure(session=session, print_shop=PRINT_SHOP, url=receiver.url)
    with Session(committed_engine) as session, session.begin():
        printshop.report(session=session, batch_id=batch_ids[1], state="mailed")
        webhooks.disable(session=session, print_shop=PRINT_SHOP)
    wait_settled(committed_engine, expected=1)
    with Session(committed_engine) as session:
        event = session.scalars(select(webhooks.WebhookEvent)).one()
        logged = session.scalars(select(webhooks.WebhookDelivery)).one()
    assert event.state == "failed" and logged.error == "Webhook 已停用" and logged.status_code is None
    assert receiver.got == []
    # Turned off, nothing new is written.
    with Session(committed_engine) as session, session.begin():
        printshop.report(session=session, batch_id=batch_ids[2], state="mailed")
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(webhooks.WebhookEvent)) == 1
