"""The supervisor: a run that stopped moving with no live task is re-dispatched (logged, with a run event),
and after `stall_after` re-dispatches without progress it is stalled with the last error."""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from outreach.db import utcnow
from outreach.runs import executor, supervisor
from outreach.runs.models import Run, RunEvent
from outreach.settings import get_settings
from tests.runs.test_executor import kinds, run_row, start_run
from tests.runs.world import committed_world


def went_quiet(engine: Engine, run_id: int, *, pid: int, redispatches: int = 0) -> None:
    """The run was taken by local process `pid` long ago and has not moved since."""
    past = utcnow() - timedelta(seconds=executor.quiet_limit() + 60)
    with Session(engine) as session, session.begin():
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(dispatched_at=past, progress_at=past, started_at=past, redispatches=redispatches)
        )
        detail = {"via": "local", "pid": pid, "host": socket.gethostname()}
        session.add(RunEvent(run_id=run_id, kind="dispatch", detail=json.dumps(detail)))


def dead_pid() -> int:
    return 4_194_305  # above the kernel's largest pid_max (2**22): never a live process


def test_a_quiet_run_without_a_live_process_is_redispatched_and_completes(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=8, batch_size=4)
    run_id = start_run(committed_engine, world.campaign)
    went_quiet(committed_engine, run_id, pid=dead_pid())
    assert supervisor.check_all() == {run_id: supervisor.REDISPATCHED}
    # A second checker at the same moment finds the fresh claim and does nothing.
    assert supervisor.check_run(run_id) == supervisor.MOVING
    assert executor.wait_for(run_id, timeout=120) == "done"
    assert kinds(committed_engine, run_id)[-2:] == ["redispatch", "handed"]
    assert run_row(committed_engine, run_id).redispatches == 0  # progress resets the count


def test_a_quiet_run_whose_process_lives_is_left_alone(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=4, batch_size=4)
    run_id = start_run(committed_engine, world.campaign)
    went_quiet(committed_engine, run_id, pid=os.getpid())
    assert supervisor.check_run(run_id) == supervisor.LIVE
    assert run_row(committed_engine, run_id).state == "rendering"


def test_after_n_redispatches_without_progress_the_run_stalls_with_the_last_error(
    committed_engine: Engine,
) -> None:
    world = committed_world(committed_engine, women=4, batch_size=4)
    run_id = start_run(committed_engine, world.campaign)
    went_quiet(committed_engine, run_id, pid=dead_pid(), redispatches=get_settings().stall_after)
    with Session(committed_engine) as session, session.begin():
        executor.record(session, run_id, "error", "KitError: 模板第3行出错")
    assert supervisor.check_run(run_id) == supervisor.STALLED
    run = run_row(committed_engine, run_id)
    assert run.state == "stalled" and "模板第3行出错" in (run.note or "")
    assert kinds(committed_engine, run_id)[-1] == "stalled"
    # Stalled is an end: the supervisor leaves it for a person.
    assert supervisor.check_run(run_id) == supervisor.IDLE
    with Session(committed_engine) as session:
        assert session.scalar(select(Run.state).where(Run.id == run_id)) == "stalled"


def test_a_moving_run_is_not_touched(committed_engine: Engine) -> None:
    world = committed_world(committed_engine, women=4, batch_size=4)
    run_id = start_run(committed_engine, world.campaign)
    assert supervisor.check_run(run_id) == supervisor.MOVING
    assert kinds(committed_engine, run_id) == []
