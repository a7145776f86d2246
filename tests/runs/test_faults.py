"""Faults on real Celery workers and a Redis server this test starts itself: each run ends by itself.

A worker killed right after the last batch commits; Redis restarted empty at ~40% and at ~98%; the batch
folder read-only at ~40% (a tmpfs remounted read-only when this machine lets us mount, else the executor's
test fault hook). Once the fault is gone each run ends `done` within twice the visibility timeout, exactly
once and byte-identical to a clean rendering; with the fault still there it ends `stalled` with the reason.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from outreach.runs import executor
from outreach.runs.models import Piece, Run, RunEvent
from outreach.settings import get_settings
from tests.runs.test_workers import broker_settings, check_run, start_run, start_worker, stop
from tests.runs.world import committed_world

pytestmark = [pytest.mark.worker, pytest.mark.redis, pytest.mark.slow]

VISIBILITY = 5
BUDGET = 2 * VISIBILITY  # seconds from the fault's end to `done`
PIECES = 30
BATCH = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of our own on a free port, without persistence: a restart comes back empty."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def keys(self) -> int:
        return int(redis.Redis.from_url(self.url).dbsize())


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on this machine")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def fault_env(committed_engine: Engine, own_redis: RedisServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings and worker environment: our Redis, a short visibility timeout, a supervisor every second."""
    faults = tmp_path / "faults"
    faults.mkdir()
    batches = tmp_path / "batches"
    batches.mkdir()
    extra = {
        "OUTREACH_BATCH_DIR": str(batches),
        "OUTREACH_SUPERVISE_EVERY": "1",
        "OUTREACH_STALL_AFTER": "2",
        "OUTREACH_TEST_FAULTS": str(faults),
        "OUTREACH_VISIBILITY_TIMEOUT": str(VISIBILITY),
    }
    with broker_settings(own_redis.url, "", **extra) as env:
        yield env


def worker(env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
    """A real worker with the supervisor's beat inside it (-B)."""
    return start_worker(env, tmp, concurrency=2, beat=tmp / f"beat-{uuid.uuid4().hex[:6]}")


def progress(engine: Engine, run_id: int) -> tuple[str, int]:
    with Session(engine) as session:
        state = session.scalar(select(Run.state).where(Run.id == run_id)) or ""
        done = session.scalar(select(func.count()).where(Piece.run_id == run_id, Piece.state != "pending"))
        return state, int(done or 0)


def wait_until(engine: Engine, run_id: int, *, done: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while progress(engine, run_id)[1] < done:
        assert time.monotonic() < deadline, f"run {run_id} stuck at {progress(engine, run_id)}"
        time.sleep(0.02)


def wait_state(engine: Engine, run_id: int, states: tuple[str, ...], timeout: float) -> float:
    """Waits for one of `states`; returns the seconds it took."""
    started = time.monotonic()
    while True:
        state = progress(engine, run_id)[0]
        if state in states:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"run {run_id} is {state} after {timeout:.0f} s"
        time.sleep(0.1)


def note_of(engine: Engine, run_id: int) -> str:
    with Session(engine) as session:
        return session.scalar(select(Run.note).where(Run.id == run_id)) or ""


def event_kinds(engine: Engine, run_id: int) -> list[str]:
    with Session(engine) as session:
        return list(
            session.scalars(select(RunEvent.kind).where(RunEvent.run_id == run_id).order_by(RunEvent.id))
        )


def begin(engine: Engine, env: dict[str, str], tmp: Path) -> tuple[int, subprocess.Popen[bytes]]:
    world = committed_world(engine, women=PIECES, batch_size=BATCH)
    run_id = start_run(engine, world.campaign)
    proc = worker(env, tmp)
    assert executor.dispatch(run_id) == PIECES // BATCH
    return run_id, proc


def test_a_worker_killed_right_after_the_last_batch_commits(
    committed_engine: Engine, fault_env: dict[str, str], tmp_path: Path
) -> None:
    (Path(fault_env["OUTREACH_TEST_FAULTS"]) / "kill-after-last-batch").touch()
    run_id, proc = begin(committed_engine, fault_env, tmp_path)
    try:
        proc.wait(timeout=120)  # the hook kills the worker's whole process group
    finally:
        stop(proc)
    assert progress(committed_engine, run_id) == ("rendering", PIECES)
    proc = worker(fault_env, tmp_path)  # the fault is gone: a worker is back
    try:
        took = wait_state(committed_engine, run_id, ("done", "stalled"), timeout=60)
    finally:
        stop(proc)
    assert progress(committed_engine, run_id)[0] == "done"
    assert took < BUDGET, f"done {took:.1f} s after the worker came back"
    check_run(committed_engine, run_id, PIECES, root=get_settings().resolved_batch_dir)


@pytest.mark.parametrize("done", [int(PIECES * 0.4), PIECES - BATCH], ids=["at-40%", "before-the-last-batch"])
def test_redis_restarted_empty_mid_run(
    committed_engine: Engine, fault_env: dict[str, str], own_redis: RedisServer, tmp_path: Path, done: int
) -> None:
    # Before the last batch commits: that batch is in flight, so queuing the finish meets the dead broker.
    run_id, proc = begin(committed_engine, fault_env, tmp_path)
    try:
        wait_until(committed_engine, run_id, done=done)
        own_redis.kill()
        own_redis.start()  # empty: the queued batches are gone
        back = time.monotonic()
        wait_state(committed_engine, run_id, ("done", "stalled"), timeout=60)
        took = time.monotonic() - back
    finally:
        stop(proc)
    assert progress(committed_engine, run_id)[0] == "done", note_of(committed_engine, run_id)
    assert took < BUDGET, f"done {took:.1f} s after Redis came back"
    check_run(committed_engine, run_id, PIECES, root=get_settings().resolved_batch_dir)


def test_redis_gone_for_good_ends_stalled_with_the_reason(
    committed_engine: Engine, fault_env: dict[str, str], own_redis: RedisServer, tmp_path: Path
) -> None:
    run_id, proc = begin(committed_engine, fault_env, tmp_path)
    try:
        wait_until(committed_engine, run_id, done=int(PIECES * 0.4))
        own_redis.kill()
        # What `run start --wait` does: it follows the run and never hangs.
        state = executor.wait_for(run_id, timeout=90)
    finally:
        stop(proc)
    assert state == "stalled"
    assert "无法连接任务队列" in note_of(committed_engine, run_id)
    assert event_kinds(committed_engine, run_id).count("redispatch") == 2


class ReadOnlyFolder:
    """The batch folder made read-only: a tmpfs remounted read-only where mounting is allowed (real EROFS
    even for root), else the executor's storage fault hook."""

    def __init__(self, folder: Path, faults: Path) -> None:
        self.folder = folder
        self.flag = faults / "storage-read-only"
        self.mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)], capture_output=True
            ).returncode
            == 0
        )

    def on(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(self.folder)], check=True)
        else:
            self.flag.touch()

    def off(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(self.folder)], check=True)
        else:
            self.flag.unlink(missing_ok=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], check=False)


@pytest.fixture
def read_only(fault_env: dict[str, str]) -> Iterator[ReadOnlyFolder]:
    folder = ReadOnlyFolder(Path(fault_env["OUTREACH_BATCH_DIR"]), Path(fault_env["OUTREACH_TEST_FAULTS"]))
    try:
        yield folder
    finally:
        folder.close()


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_batch_folder_read_only_for_a_while(
    committed_engine: Engine, fault_env: dict[str, str], read_only: ReadOnlyFolder, tmp_path: Path
) -> None:
    root = Path(fault_env["OUTREACH_BATCH_DIR"])
    (Path(fault_env["OUTREACH_TEST_FAULTS"]) / "slow-batches").touch()  # the run must still be going at 40%
    run_id, proc = begin(committed_engine, fault_env, tmp_path)
    try:
        wait_until(committed_engine, run_id, done=int(PIECES * 0.4))
        read_only.on()
        time.sleep(3)  # batches fail and retry meanwhile
        assert progress(committed_engine, run_id)[0] == "rendering"
        read_only.off()
        took = wait_state(committed_engine, run_id, ("done", "stalled"), timeout=60)
    finally:
        stop(proc)
    assert progress(committed_engine, run_id)[0] == "done", note_of(committed_engine, run_id)
    assert took < BUDGET, f"done {took:.1f} s after the folder was writable again"
    assert leftovers(root) == []
    check_run(committed_engine, run_id, PIECES, root=root)


def test_batch_folder_read_only_for_good_ends_stalled_with_the_reason(
    committed_engine: Engine, fault_env: dict[str, str], read_only: ReadOnlyFolder, tmp_path: Path
) -> None:
    root = Path(fault_env["OUTREACH_BATCH_DIR"])
    (Path(fault_env["OUTREACH_TEST_FAULTS"]) / "slow-batches").touch()  # the run must still be going at 40%
    run_id, proc = begin(committed_engine, fault_env, tmp_path)
    try:
        wait_until(committed_engine, run_id, done=int(PIECES * 0.4))
        read_only.on()
        wait_state(committed_engine, run_id, ("done", "stalled"), timeout=60)
    finally:
        stop(proc)
        read_only.off()
    assert progress(committed_engine, run_id)[0] == "stalled"
    assert "只读" in note_of(committed_engine, run_id)
    assert leftovers(root) == []
    # A person fixes the folder and resumes: the run completes exactly once.
    proc = worker(fault_env, tmp_path)
    try:
        assert executor.resume(run_id, wait=True).state == "done"
    finally:
        stop(proc)
    check_run(committed_engine, run_id, PIECES, root=root)
