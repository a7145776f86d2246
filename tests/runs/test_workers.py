"""Runs on real Celery worker processes over a real Redis: a whole run, and a worker killed mid-run."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.campaigns.models import Campaign
from outreach.ledger import service as ledger
from outreach.render import render_letters
from outreach.runs import service as runs
from outreach.runs.models import Batch, Piece, Run
from outreach.settings import get_settings
from tests.runs.world import committed_world

pytestmark = [pytest.mark.worker, pytest.mark.redis, pytest.mark.slow]

REDIS_URL = os.environ.get("OUTREACH_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
VISIBILITY = 6
# Every Redis key this test session's broker uses starts with this prefix, so two suites (or two machines'
# CI jobs) on one Redis never see each other's messages; nothing is flushed, only this prefix's keys deleted.
KEY_PREFIX = f"outreach-test-{uuid.uuid4().hex[:12]}:"


def delete_prefixed(client: redis.Redis, prefix: str) -> None:
    """Deletes every key under `prefix` (and no other)."""
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)


@contextmanager
def broker_settings(url: str, prefix: str, **extra: str) -> Iterator[dict[str, str]]:
    """This process's settings and Celery app pointed at the broker; yields the environment for workers."""
    from workers.celery_app import app

    settings = get_settings()
    env = {
        **os.environ,
        "OUTREACH_DATABASE_URL": settings.resolved_database_url,
        "OUTREACH_DATA_DIR": str(settings.data_dir),
        "OUTREACH_BATCH_DIR": str(settings.resolved_batch_dir),
        "OUTREACH_BROKER_URL": url,
        "OUTREACH_BROKER_KEY_PREFIX": prefix,
        "OUTREACH_VISIBILITY_TIMEOUT": str(VISIBILITY),
        **extra,
    }
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("OUTREACH_")})
    reconfigure(app)
    try:
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reconfigure(app)


def reconfigure(app: Celery) -> None:
    """Applies the settings anew, dropping connections to the previous broker (Celery caches its pools)."""
    from workers.celery_app import configure

    get_settings.cache_clear()
    configure(app, get_settings())
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(committed_engine: Engine) -> Iterator[dict[str, str]]:
    """The shared Redis as broker under this session's own key prefix; env for workers."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    try:
        with broker_settings(REDIS_URL, KEY_PREFIX) as env:
            yield env
    finally:
        delete_prefixed(client, KEY_PREFIX)
        client.close()


def dispatch(env: dict[str, str], run_id: int) -> int:
    """Queues the run's work from another process configured for the broker, as the CLI would."""
    code = "import sys; from workers.tasks import dispatch; print(dispatch(int(sys.argv[1])))"
    out = subprocess.run([sys.executable, "-c", code, str(run_id)], env=env, check=True, capture_output=True)
    return int(out.stdout.decode().strip().splitlines()[-1])


def start_worker(
    env: dict[str, str], tmp: Path, concurrency: int = 2, beat: Path | None = None
) -> subprocess.Popen[bytes]:
    """A real `celery -A workers worker` in its own process group; with `beat`, the beat runs inside it
    (its schedule file there), sending the supervisor's checks."""
    extra = ["-B", "-s", str(beat)] if beat is not None else []
    with (tmp / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb") as log:
        # The child keeps its own copy of the file descriptor.
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "--loglevel=INFO",
                f"-c{concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"t{uuid.uuid4().hex[:8]}@%h",
                *extra,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_run(engine: Engine, campaign: str) -> int:
    with Session(engine) as session, session.begin():
        c = campaigns.get_by_name(session=session, name=campaign)
        return runs.start(session=session, campaign=c, period="2027-Q1").id


def counts(engine: Engine, run_id: int) -> tuple[str, int]:
    with Session(engine) as session:
        state = session.scalar(select(Run.state).where(Run.id == run_id)) or ""
        done = (
            session.scalar(select(func.count()).where(Piece.run_id == run_id, Piece.state != "pending")) or 0
        )
        return state, done


def wait_done(engine: Engine, run_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if counts(engine, run_id)[0] == "done":
            return
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} not done after {timeout} s: {counts(engine, run_id)}")


def check_run(engine: Engine, run_id: int, pieces: int, root: Path | None = None) -> None:
    """Every piece once, charges = pieces × rate, files = what an uninterrupted rendering makes."""
    root = root or get_settings().resolved_batch_dir
    with Session(engine) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.state == "done" and run.piece_count == pieces
        assert (
            session.scalar(select(func.count()).where(Piece.run_id == run_id, Piece.state == "rendered"))
            == pieces
        )
        assert ledger.balance(session=session, run_id=run_id).charged_fen == pieces * 100
        campaign = session.get(Campaign, run.campaign_id)
        assert campaign is not None
        batches = session.scalars(select(Batch).where(Batch.run_id == run_id).order_by(Batch.seq)).all()
        assert sum(b.pieces for b in batches) == pieces
        for b in batches:
            batch = runs.batch_pieces(session=session, run=run, batch_seq=b.seq)
            kit, codes, context = runs.batch_content(
                session=session, campaign=campaign, run=run, pieces=batch
            )
            out = get_settings().data_dir / "reference"
            out.mkdir(exist_ok=True)
            render_letters(
                kit,
                [runs.recipient(p, code=codes.get(p.seq)) for p in batch],
                envelopes=out / "e.pdf",
                letters=out / "l.pdf",
                context=context,
            )
            for name, ref in (("envelopes.pdf", out / "e.pdf"), ("letters.pdf", out / "l.pdf")):
                stored = (root / str(b.files[name]["key"])).read_bytes()
                assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(ref.read_bytes()).hexdigest()
                assert b.files[name]["sha256"] == hashlib.sha256(stored).hexdigest()


def test_a_whole_run_on_celery_workers(
    committed_engine: Engine, broker: dict[str, str], tmp_path: Path
) -> None:
    world = committed_world(committed_engine, women=60, batch_size=10)
    run_id = start_run(committed_engine, world.campaign)
    worker = start_worker(broker, tmp_path)
    try:
        assert dispatch(broker, run_id) == 6
        wait_done(committed_engine, run_id, timeout=120)
    finally:
        stop(worker)
    check_run(committed_engine, run_id, 60)


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(
    committed_engine: Engine, broker: dict[str, str], tmp_path: Path
) -> None:
    pieces = 1500  # enough that the kill lands mid-run even when rendering is fast
    world = committed_world(committed_engine, women=pieces, batch_size=10)
    run_id = start_run(committed_engine, world.campaign)
    worker = start_worker(broker, tmp_path)
    try:
        dispatch(broker, run_id)
        deadline = time.monotonic() + 120
        while counts(committed_engine, run_id)[1] < 30:
            assert time.monotonic() < deadline, "the worker rendered nothing"
            time.sleep(0.02)
    finally:
        stop(worker, signal.SIGKILL)
    state, done = counts(committed_engine, run_id)
    assert state == "rendering" and done < pieces, "the run finished before the kill; make it bigger"
    # A new worker picks up the lost worker's unacknowledged tasks after the visibility timeout.
    worker = start_worker(broker, tmp_path)
    try:
        wait_done(committed_engine, run_id, timeout=180)
    finally:
        stop(worker)
    check_run(committed_engine, run_id, pieces)
    # Resume on the finished run changes nothing.
    with Session(committed_engine) as session:
        entries = ledger.balance(session=session, run_id=run_id)
    assert dispatch(broker, run_id) == 0
    with Session(committed_engine) as session:
        assert ledger.balance(session=session, run_id=run_id) == entries


def test_the_cli_hands_a_run_to_the_workers_and_waits(
    committed_engine: Engine, broker: dict[str, str], tmp_path: Path
) -> None:
    world = committed_world(committed_engine, women=25, batch_size=10)
    worker = start_worker(broker, tmp_path)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "outreach", "run", "start", world.campaign, "--period", "2027-Q1"],
            env=broker,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        stop(worker)
    assert proc.returncode == 0, proc.stderr
    assert "个批次已排入工作进程队列" in proc.stdout and "已完成" in proc.stdout
    with Session(committed_engine) as session:
        run_id = session.scalars(select(Run.id)).one()
    check_run(committed_engine, run_id, 25)


def test_two_suites_share_one_redis(tmp_path: Path) -> None:
    """Two test sessions at once on the same Redis: each has its own key prefix, so neither sees (or deletes)
    the other's messages, and both pass."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    finally:
        client.close()
    test = f"{__file__}::test_a_whole_run_on_celery_workers"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_") or k.startswith("OUTREACH_TEST")
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--basetemp",
                str(tmp_path / f"s{i}"),
                test,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output
        assert "1 passed" in output, output
