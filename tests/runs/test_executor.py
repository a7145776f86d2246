"""The run executor without a broker: one rule for rendering then finishing, the dispatch claim, the
background hand-off that `run status` follows, and storage failures that stall a run with the reason."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.runs import executor
from outreach.runs import service as runs
from outreach.runs.models import Run, RunEvent
from tests.runs.world import committed_world


def start_run(engine: Engine, campaign: str) -> int:
    with Session(engine) as session, session.begin():
        c = campaigns.get_by_name(session=session, name=campaign)
        return runs.start(session=session, campaign=c, period="2027-Q1").id


def run_row(engine: Engine, run_id: int) -> Run:
    with Session(engine, expire_on_commit=False) as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


def kinds(engine: Engine, run_id: int) -> list[str]:
    with Session(engine) as session:
        return list(
            session.scalars(select(RunEvent.kind).where(RunEvent.run_id == run_id).order_by(RunEvent.id))
        )


def test_execute_renders_then_finishes_and_stamps_progress(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=12, batch_size=5)
    run_id = start_run(committed_engine, world.campaign)
    seen: list[tuple[int, int]] = []
    done = executor.execute(run_id, progress=lambda d, t: seen.append((d, t)))
    assert (done.via, done.queued, done.state) == ("local", 3, "done")
    assert seen[-1] == (3, 3)
    run = run_row(committed_engine, run_id)
    assert run.progress_at is not None and run.dispatched_at is not None and run.redispatches == 0
    assert kinds(committed_engine, run_id) == ["dispatch"]
    # Executing a finished run again changes nothing.
    assert executor.execute(run_id).state == "done"
    assert kinds(committed_engine, run_id) == ["dispatch"]


def test_racing_dispatches_claim_the_run_once(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=12, batch_size=5)
    run_id = start_run(committed_engine, world.campaign)
    won: list[bool] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        with Session(committed_engine) as session, session.begin():
            won.append(
                executor._claim(session, run_id, force=False, redispatch=False, detail={"via": "test"})
            )

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False, False, False, True]
    assert kinds(committed_engine, run_id) == ["dispatch"]
    # A second local execution while the claim is fresh renders nothing and follows the first.
    assert executor.run_local(run_id) is None


def test_without_waiting_a_background_process_renders_and_status_follows(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=8, batch_size=4)
    run_id = start_run(committed_engine, world.campaign)
    handed = executor.execute(run_id, wait=False)
    assert handed.via == "background" and handed.pid is not None
    # A racing second start does not hand it out twice.
    assert executor.execute(run_id, wait=False).pid is None
    assert executor.wait_for(run_id, timeout=120) == "done"
    assert kinds(committed_engine, run_id)[:2] == ["dispatch", "handed"]


def test_a_lasting_storage_failure_stalls_the_run_with_the_reason(
    committed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from outreach.storage import storage_error

    world = committed_world(committed_engine, women=8, batch_size=4)
    run_id = start_run(committed_engine, world.campaign)

    def full(run_id: int, batch_seq: int) -> runs.BatchOutcome:
        raise storage_error(OSError(errno.ENOSPC, "No space left on device"), key="k", action="write")

    monkeypatch.setattr(executor, "render_one", full)
    monkeypatch.setattr(executor, "retry_delay", lambda attempt, settings=None: 0.0)
    done = executor.execute(run_id)
    assert done.state == "stalled"
    run = run_row(committed_engine, run_id)
    assert "磁盘已满" in (run.note or "")
    assert kinds(committed_engine, run_id) == ["dispatch", "stalled"]
    # Fixed: resume reopens the run and completes it.
    monkeypatch.undo()
    assert executor.resume(run_id).state == "done"
    assert kinds(committed_engine, run_id)[-2:] == ["resumed", "dispatch"]


def test_quiet_limit_follows_the_visibility_timeout() -> None:
    from outreach.settings import Settings

    assert executor.quiet_limit(Settings(visibility_timeout=60)) == 75
    assert executor.quiet_limit(Settings(visibility_timeout=2)) == 3
    assert [executor.retry_delay(n, Settings(visibility_timeout=5)) for n in range(4)] == [1, 2, 2.5, 2.5]
