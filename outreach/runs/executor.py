"""The one way to carry out a run: queue its batches on Celery workers, or render them in local processes.

Every caller (the CLI's `run start`/`run resume`, the demo, the quarterly schedule, the web service) calls
`execute`; the rule "render the pending batches, then finish" lives here and nowhere else. With a broker the
batches go to the workers and each finished batch (rendered now, or skipped because its pieces are done)
checks whether the run can finish. Without one the run renders in this process, or, when the caller must not
wait (a web request), in a detached local process (`python -m outreach.runs.executor RUN`) that `run status`
follows. A dispatch is claimed atomically on the run row, so two racing starts queue the batches once.

What keeps runs alive lives here too: progress stamps, broker-error retries when queuing follow-up work,
storage-error retries that end in a `stalled` run naming the problem, and the append-only run events. The
supervisor (outreach/runs/supervisor.py) uses these to re-dispatch runs that stopped moving.
"""

from __future__ import annotations

import argparse
import base64
import errno
import json
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import cast

from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError as DatabaseError
from sqlalchemy.orm import Session

from outreach import db
from outreach.db import session_scope, utcnow
from outreach.errors import OutreachError, StorageError
from outreach.i18n import _
from outreach.runs import service as runs
from outreach.runs.models import Run, RunEvent
from outreach.runs.states import run_state_label
from outreach.settings import Settings, get_settings
from outreach.storage import Storage, get_storage, storage_error

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

RENDER_TASK = "outreach.render_batch"
FINISH_TASK = "outreach.finish_run"
ACTIVE = ("rendering", "assembling")
ENDED = ("done", "cancelled", "stalled")
# How many times a task retries a storage or database error (with backoff) before it gives up.
TASK_RETRIES = 5


def state_label(state: str) -> str:
    """A run state in words people read (Chinese by default)."""
    return run_state_label(state)


class BrokerUnavailable(OutreachError):
    """The task broker (Redis) could not take a message within the patience allowed."""


@dataclass
class Execution:
    """What `execute` did: how (celery, local, background), how many batches it queued or rendered (None when
    another dispatch holds the run), the run's state when it returned, and the background process id."""

    run_id: int
    via: str
    queued: int | None
    state: str
    pid: int | None = None


def quiet_limit(settings: Settings | None = None) -> float:
    """Seconds a run may go without progress before the supervisor looks for its tasks: the visibility timeout
    (after which Redis redelivers a lost worker's task) plus a margin for the redelivery sweep."""
    vis = (settings or get_settings()).visibility_timeout
    return vis + max(1.0, vis / 4)


def retry_delay(attempt: int, settings: Settings | None = None) -> float:
    """Backoff before retry number `attempt` (0-based): 1, 2, 4 ... seconds, at most half the visibility
    timeout, so a fault that is gone is noticed well within it."""
    cap = max(1.0, (settings or get_settings()).visibility_timeout / 2)
    return float(min(2**attempt, cap))


def broker_errors() -> tuple[type[BaseException], ...]:
    """What a broker that is down or restarting raises when a message is sent."""
    from kombu.exceptions import OperationalError as KombuError

    found: list[type[BaseException]] = [KombuError, ConnectionError, TimeoutError, BrokerUnavailable]
    try:
        import redis.exceptions

        found += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover - redis is a dependency of the broker setup only
        pass
    return tuple(found)


def storage_problem(exc: BaseException) -> StorageError | None:
    """The storage failure behind `exc` (disk full, read-only, permission...), or None if it is not one."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError | TimeoutError):
        return storage_error(exc, key="", action=_("write the file"))
    return None


def retryable(exc: BaseException) -> bool:
    """Whether a task should try again later: database, storage and broker errors pass."""
    return (
        isinstance(exc, DatabaseError) or storage_problem(exc) is not None or isinstance(exc, broker_errors())
    )


# --- events, progress and state changes --------------------------------------------------------------------


def record(session: Session, run_id: int, kind: str, detail: dict[str, object] | str | None = None) -> None:
    """Appends a run event (dispatch, redispatch, handed, error, stalled, resumed)."""
    text = json.dumps(detail, ensure_ascii=False) if isinstance(detail, dict) else detail
    session.add(RunEvent(run_id=run_id, kind=kind, detail=text))
    session.flush()


def events(*, session: Session, run_id: int) -> Sequence[RunEvent]:
    """The run's events, oldest first."""
    return session.scalars(select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.id)).all()


def last_error(*, session: Session, run_id: int) -> str | None:
    """The last error a task met on this run, if any."""
    return session.scalar(
        select(RunEvent.detail)
        .where(RunEvent.run_id == run_id, RunEvent.kind == "error")
        .order_by(RunEvent.id.desc())
        .limit(1)
    )


def stall(run_id: int, reason: str) -> bool:
    """Marks an unfinished run stalled with the reason; True if it was active and is now stalled."""
    with session_scope() as session:
        moved = _changed(
            session.execute(
                update(Run)
                .where(Run.id == run_id, Run.state.in_(ACTIVE))
                .values(state="stalled", note=reason)
            )
        )
        if moved:
            record(session, run_id, "stalled", reason)
    if moved:
        log.error("run %s stalled: %s", run_id, reason)
    return bool(moved)


def reopen(*, session: Session, run_id: int) -> bool:
    """Moves a stalled run back to rendering (a person fixed the cause); True if it was stalled."""
    moved = _changed(
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.state == "stalled")
            .values(state="rendering", note=None, redispatches=0, dispatched_at=None)
        )
    )
    if moved:
        record(session, run_id, "resumed")
    return bool(moved)


def _claim(
    session: Session, run_id: int, *, force: bool, redispatch: bool, detail: dict[str, object]
) -> bool:
    """Claims the run's dispatch: one UPDATE that only one of several racing callers wins.

    A claim holds for `quiet_limit` seconds after the last dispatch or progress; `force` (a person's resume)
    takes it anyway. A re-dispatch counts toward the supervisor's limit.
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=quiet_limit())
    query = update(Run).where(Run.id == run_id, Run.state.in_(ACTIVE))
    if not force:
        query = query.where(
            or_(Run.dispatched_at.is_(None), Run.dispatched_at < cutoff),
            or_(Run.progress_at.is_(None), Run.progress_at < cutoff),
        )
    values: dict[str, object] = {"dispatched_at": now}
    if redispatch:
        values["redispatches"] = Run.redispatches + 1
    won = _changed(session.execute(query.values(**values))) == 1
    if won:
        record(session, run_id, "redispatch" if redispatch else "dispatch", detail)
    return won


def _changed(result: object) -> int:
    """Rows an UPDATE changed (its cursor result's rowcount)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _here() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


# --- one batch ---------------------------------------------------------------------------------------------


# Fault injection for the fault tests only (tests/runs/test_faults.py): OUTREACH_TEST_FAULTS names a folder; a
# file `storage-read-only` in it makes every batch-file write fail with EROFS, `slow-batches` makes each batch
# take a second longer (so a fault switched on at 40% still finds the run going), and `kill-after-last-batch`
# makes the worker kill its own process group right after the last batch commits (the file is removed first).
# Never set in production; read here, not in the settings, so that it cannot be set from a .env file.
_FAULTS_ENV = "OUTREACH_TEST_FAULTS"


def _fault(name: str) -> bool:
    folder = os.environ.get(_FAULTS_ENV)
    return bool(folder) and (Path(str(folder)) / name).exists()


class _FaultyStorage:
    """The real storage, whose writes fail while the `storage-read-only` fault is on."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def put(self, key: str, source: Path) -> None:
        if _fault("storage-read-only"):
            raise storage_error(
                OSError(errno.EROFS, os.strerror(errno.EROFS)), key=key, action=_("write the file")
            )
        self.inner.put(key, source)


def _storage() -> Storage:
    storage = get_storage()
    return cast(Storage, _FaultyStorage(storage)) if os.environ.get(_FAULTS_ENV) else storage


def render_one(run_id: int, batch_seq: int) -> runs.BatchOutcome:
    """Renders one batch and stamps the run's progress, in one transaction; safe to run twice."""
    if _fault("slow-batches"):
        time.sleep(1.0)
    with session_scope() as session:
        outcome = runs.render_batch(session=session, run_id=run_id, batch_seq=batch_seq, storage=_storage())
        if not outcome.skipped:
            session.execute(update(Run).where(Run.id == run_id).values(progress_at=utcnow(), redispatches=0))
    if outcome.errors:
        log.warning(
            "run %s batch %s: %d piece(s) failed, first: %s",
            run_id,
            batch_seq,
            outcome.failed,
            outcome.errors[0],
        )
    return outcome


def ready_to_finish(run_id: int) -> bool:
    """Whether the run is active and no piece is pending."""
    with session_scope() as session:
        state = session.scalar(select(Run.state).where(Run.id == run_id))
        return state in ACTIVE and runs.pending_count(session=session, run_id=run_id) == 0


def render_and_continue(run_id: int, batch_seq: int) -> runs.BatchOutcome:
    """A worker's batch: render it, then, whether it rendered or was skipped (its pieces were done already,
    e.g. a redelivered batch), queue the finish if no piece of the run is pending."""
    outcome = render_one(run_id, batch_seq)
    if ready_to_finish(run_id):
        if _fault("kill-after-last-batch"):
            (Path(os.environ[_FAULTS_ENV]) / "kill-after-last-batch").unlink()
            os.killpg(os.getpgrp(), signal.SIGKILL)
        send(FINISH_TASK, run_id)
    return outcome


def finish(run_id: int) -> str:
    """Finishes a fully rendered run; returns its state (idempotent)."""
    with session_scope() as session:
        return runs.finish(session=session, run_id=run_id, storage=_storage()).state


def give_up(run_id: int, exc: BaseException) -> bool:
    """A task's last attempt failed: a storage failure stalls the run with its reason; anything else is
    recorded as the run's last error (the supervisor re-dispatches, then stalls with it). True if stalled."""
    problem = storage_problem(exc)
    if problem is not None:
        return stall(run_id, _("batch files cannot be stored: {error}", error=str(problem)))
    with session_scope() as session:
        record(session, run_id, "error", f"{type(exc).__name__}: {exc}")
    return False


# --- sending to the broker ---------------------------------------------------------------------------------


def send(task: str, *args: int, patience: float | None = None) -> None:
    """Sends a task to the broker, retrying while it is down or restarting for up to `patience` seconds
    (default: the visibility timeout); raises BrokerUnavailable after that."""
    from workers.celery_app import app

    errors = broker_errors()
    deadline = time.monotonic() + (get_settings().visibility_timeout if patience is None else patience)
    pause = 0.2
    while True:
        try:
            app.send_task(
                task,
                args=list(args),
                ignore_result=True,
                retry=True,
                retry_policy={
                    "max_retries": 2,
                    "interval_start": 0,
                    "interval_step": 0.2,
                    "interval_max": 0.5,
                },
            )
            return
        except errors as exc:
            if time.monotonic() + pause > deadline:
                raise BrokerUnavailable(
                    _("the task queue (Redis) cannot be reached: {error}", error=str(exc))
                ) from exc
            log.warning("sending %s%s failed (%s); retrying in %.1f s", task, args, exc, pause)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def live_tasks(run_id: int) -> int | None:
    """How many of the run's tasks the broker holds (queued, or taken by a worker and not yet acknowledged);
    None when that cannot be told (the broker is not Redis or cannot be reached)."""
    settings = get_settings()
    if not settings.broker_url or not settings.broker_url.startswith(("redis://", "rediss://")):
        return None
    import redis

    from workers.celery_app import app

    prefix = settings.broker_key_prefix
    queue = str(app.conf.task_default_queue)
    try:
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)
        with client:
            queued = client.lrange(f"{prefix}{queue}", 0, -1)
            unacked = client.hvals(f"{prefix}unacked")
    except redis.RedisError:
        return None
    found = 0
    for raw in queued:
        found += _is_for(_load(raw), run_id)
    for raw in unacked:
        entry = _load(raw)
        found += _is_for(entry[0] if isinstance(entry, list) and entry else None, run_id)
    return found


def _load(raw: bytes | str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _is_for(message: object, run_id: int) -> bool:
    """Whether a broker message (Celery protocol 2, JSON) is a render or finish task of the run."""
    if not isinstance(message, dict):
        return False
    headers = message.get("headers") or {}
    if not isinstance(headers, dict) or headers.get("task") not in (RENDER_TASK, FINISH_TASK):
        return False
    try:
        body = json.loads(base64.b64decode(message["body"]))
        args = body[0]
        return bool(args) and int(args[0]) == run_id
    except (KeyError, ValueError, TypeError, IndexError):
        return False


def local_alive(run_id: int) -> bool:
    """Whether the local process that last took the run (foreground or background) is still running here."""
    with session_scope() as session:
        detail = session.scalar(
            select(RunEvent.detail)
            .where(RunEvent.run_id == run_id, RunEvent.kind.in_(("dispatch", "redispatch", "handed")))
            .order_by(RunEvent.id.desc())
            .limit(1)
        )
    try:
        info = json.loads(detail or "{}")
    except ValueError:
        return False
    if info.get("via") not in ("local", "background") or info.get("host") != socket.gethostname():
        return False
    return _pid_alive(int(info.get("pid") or 0))


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    stat = Path(f"/proc/{pid}/stat")
    # A finished child not yet reaped (a zombie) is not alive.
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


# --- carrying out a run ------------------------------------------------------------------------------------


def dispatch(
    run_id: int, *, force: bool = False, redispatch: bool = False, patience: float | None = None
) -> int | None:
    """Queues every batch with a pending piece on the workers (or the finish when none is left); returns how
    many batches, or None when another dispatch of the run is under way (its claim is fresh)."""
    with session_scope() as session:
        run = runs.get(session=session, run_id=run_id)
        if run.state not in ACTIVE:
            return 0
        todo = runs.pending_batches(session=session, run=run) if run.state == "rendering" else []
        if not _claim(
            session,
            run_id,
            force=force,
            redispatch=redispatch,
            detail={"via": "celery", "batches": len(todo)},
        ):
            return None
    try:
        for seq in todo:
            send(RENDER_TASK, run_id, seq, patience=patience)
        if not todo:
            send(FINISH_TASK, run_id, patience=patience)
    except BrokerUnavailable as exc:
        with session_scope() as session:
            record(session, run_id, "error", str(exc))
        raise
    log.info("run %s: %d batch(es) queued%s", run_id, len(todo), " again" if redispatch else "")
    return len(todo)


def render_retrying(run_id: int, batch_seq: int) -> bool:
    """A local batch: renders it, retrying database and storage errors with backoff like a worker's task; when
    they persist, gives up (a storage failure stalls the run). True if the batch is done."""
    for attempt in range(TASK_RETRIES + 1):
        try:
            render_one(run_id, batch_seq)
            return True
        except Exception as exc:
            if not retryable(exc) or attempt == TASK_RETRIES:
                give_up(run_id, exc)
                if storage_problem(exc) is None:
                    raise
                return False
            log.warning("run %s batch %s: %s; retrying", run_id, batch_seq, exc)
            time.sleep(retry_delay(attempt))
    return False


def _fresh_process() -> None:
    # A spawned process reads the settings anew and opens its own connections.
    get_settings.cache_clear()
    db.dispose_engines()


def run_local(
    run_id: int,
    *,
    processes: int = 1,
    progress: Progress | None = None,
    claimed: bool = False,
    force: bool = False,
) -> int | None:
    """Renders every pending batch here (in `processes` local processes), then finishes the run; returns how
    many batches it rendered, or None when another local process holds the run. `progress(done, total)` in
    batches after each one."""
    with session_scope() as session:
        run = runs.get(session=session, run_id=run_id)
        todo = runs.pending_batches(session=session, run=run) if run.state == "rendering" else []
        total = run.batch_count
        if run.state in ACTIVE and not claimed:
            detail = {"via": "local", **_here(), "batches": len(todo)}
            if not _claim(session, run_id, force=force, redispatch=False, detail=detail):
                return None
    done = total - len(todo)
    if progress:
        progress(done, total)
    if processes <= 1 or len(todo) <= 1:
        for seq in todo:
            if not render_retrying(run_id, seq):
                return len(todo)
            done += 1
            if progress:
                progress(done, total)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=_fresh_process) as pool:
            futures = [pool.submit(render_retrying, run_id, seq) for seq in todo]
            for future in as_completed(futures):
                if not future.result():
                    for other in futures:
                        other.cancel()
                    return len(todo)
                done += 1
                if progress:
                    progress(done, total)
    if ready_to_finish(run_id):
        finish(run_id)
    return len(todo)


_children: list[subprocess.Popen[bytes]] = []


def hand_off(run_id: int, *, processes: int = 1, force: bool = False, redispatch: bool = False) -> int | None:
    """Starts a detached local process that renders and finishes the run; returns its process id, or None
    when another process holds the run. Its output goes to `<data dir>/logs/run-<id>.log`."""
    settings = get_settings()
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with session_scope() as session:
        run = runs.get(session=session, run_id=run_id)
        if run.state not in ACTIVE:
            return None
        # Claim first with this process's id, then name the child: a racing caller sees the claim at once.
        if not _claim(
            session, run_id, force=force, redispatch=redispatch, detail={"via": "background", **_here()}
        ):
            return None
    with (logs / f"run-{run_id}.log").open("ab") as out:
        # Our own interpreter and module; the only argument from outside is an integer.
        child = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "outreach.runs.executor", str(run_id), "--processes", str(processes)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # Kept (and reaped once finished) so a long-lived caller, such as the web service, leaves no zombies.
    _children[:] = [c for c in _children if c.poll() is None] + [child]
    with session_scope() as session:
        record(
            session, run_id, "handed", {"via": "background", "pid": child.pid, "host": socket.gethostname()}
        )
    log.info("run %s handed to local process %s", run_id, child.pid)
    return child.pid


def execute(
    run_id: int,
    *,
    processes: int = 1,
    wait: bool = True,
    progress: Progress | None = None,
    force: bool = False,
) -> Execution:
    """Carries out a run's remaining work and, with `wait`, returns once it is done, cancelled or stalled.

    With a broker: queues the batches on the workers (once, however many callers race) and follows the run,
    re-dispatching it when it stops moving. Without one: renders here with `wait`, else hands the run to a
    detached local process. `progress(done, total)` counts batches (local) or pieces (workers).
    """
    if get_settings().broker_url is None:
        if wait:
            queued = run_local(run_id, processes=processes, progress=progress, force=force)
            state = wait_for(run_id, progress=None) if queued is None else current_state(run_id)
            return Execution(run_id, "local", queued, state)
        pid = hand_off(run_id, processes=processes, force=force)
        return Execution(run_id, "background", None if pid is None else 0, current_state(run_id), pid)
    queued = dispatch(run_id, force=force)
    state = wait_for(run_id, progress=progress) if wait else current_state(run_id)
    return Execution(run_id, "celery", queued, state)


def resume(
    run_id: int, *, processes: int = 1, wait: bool = True, progress: Progress | None = None
) -> Execution:
    """Continues an interrupted or stalled run, doing only the missing work; a finished run is left alone."""
    with session_scope() as session:
        reopen(session=session, run_id=run_id)
    state = current_state(run_id)
    if state not in ACTIVE:
        return Execution(run_id, "none", 0, state)
    # A person asks: take the claim unless the run's tasks are visibly alive.
    live = local_alive(run_id) if get_settings().broker_url is None else bool(live_tasks(run_id))
    return execute(run_id, processes=processes, wait=wait, progress=progress, force=not live)


def current_state(run_id: int) -> str:
    """The run's state now."""
    with session_scope() as session:
        return runs.get(session=session, run_id=run_id).state


def wait_for(
    run_id: int,
    *,
    progress: Progress | None = None,
    poll: float = 0.5,
    timeout: float | None = None,
) -> str:
    """Follows the run until it is done, cancelled or stalled (or `timeout` seconds pass); returns its state.

    Between polls it runs the supervisor's check, so a run whose tasks were lost is re-dispatched, and one
    that cannot move ends stalled: the wait never hangs.
    """
    from outreach.runs import supervisor

    settings = get_settings()
    started = time.monotonic()
    check_every = max(1.0, min(settings.supervise_every, quiet_limit(settings) / 4))
    next_check = started + check_every
    while True:
        with session_scope() as session:
            st = runs.status(session=session, run_id=run_id)
            state = st.run.state
        if progress:
            progress(st.done, st.total)
        if state in ENDED or state == "waiting":
            return state
        now = time.monotonic()
        if timeout is not None and now - started > timeout:
            return state
        if now >= next_check:
            supervisor.check_run(run_id)
            next_check = now + check_every
        time.sleep(poll)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m outreach.runs.executor RUN [--processes N]`: the detached local process of `hand_off`."""
    parser = argparse.ArgumentParser(prog="python -m outreach.runs.executor")
    parser.add_argument("run_id", type=int)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_local(args.run_id, processes=args.processes, claimed=True)
    except Exception as exc:
        # Recorded as the run's last error: the supervisor (on `run status`) re-dispatches, then stalls.
        give_up(args.run_id, exc)
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
