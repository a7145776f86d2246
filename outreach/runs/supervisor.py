"""The supervisor: notices runs that stopped moving, re-dispatches them, and stalls them when that fails.

A beat task calls `check_all` every `supervise_every` seconds; `run status` and a waiting `run start` call
`check_run` for their run. A run with pending work and no progress for longer than the visibility timeout
plus a margin, and no live task for it (none queued or held by a worker on the broker, or no live local
process), is re-dispatched through the same idempotent path as `run resume`, with a log line and a run event.
After `stall_after` re-dispatches without progress it is marked `stalled` with the last error, and the CLI
says what to do.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from outreach.db import session_scope, utcnow
from outreach.i18n import _
from outreach.runs import executor, sms
from outreach.runs.models import Run
from outreach.settings import get_settings

log = logging.getLogger(__name__)

# What check_run found.
MOVING = "moving"  # progress or a dispatch within the quiet limit
LIVE = "live"  # quiet, but its tasks are queued or held by a worker (or its local process runs)
REDISPATCHED = "redispatched"
STALLED = "stalled"
IDLE = "idle"  # not rendering or assembling: nothing to watch
PAUSED = "paused"  # a live SMS run waiting for its next sending window: not a stall
RESUMED = "resumed"  # its window opened: dispatched again


def check_run(run_id: int, *, now: datetime | None = None) -> str:
    """Looks at one run and re-dispatches or stalls it when it stopped moving; returns what it found."""
    settings = get_settings()
    now = now or utcnow()
    with session_scope() as session:
        run = session.get(Run, run_id)
        if run is None or run.state not in executor.ACTIVE:
            return IDLE
        stamps = [t for t in (run.progress_at, run.dispatched_at, run.started_at) if t is not None]
        quiet = (now - max(stamps)).total_seconds() if stamps else float("inf")
        redispatches = run.redispatches
        error = executor.last_error(session=session, run_id=run_id)
        paused = sms.due_to_resume(session=session, run_id=run_id, now=now)
    local = settings.broker_url is None
    if paused is False:
        return PAUSED
    if paused:
        log.info("run %s: its sending window is open; dispatched again", run_id)
        if local:
            executor.hand_off(run_id, force=True)
        else:
            executor.dispatch(run_id, force=True, patience=1.0)
        return RESUMED
    if quiet < executor.quiet_limit(settings):
        return MOVING
    if executor.local_alive(run_id) if local else bool(executor.live_tasks(run_id)):
        return LIVE
    if redispatches >= settings.stall_after:
        reason = _(
            "no progress after {count} re-dispatches; last error: {error}",
            count=redispatches,
            error=error or _("none recorded"),
        )
        executor.stall(run_id, reason)
        return STALLED
    try:
        if local:
            taken = executor.hand_off(run_id, redispatch=True)
        else:
            # Short patience: a broker that is down is tried again on the next check, and counts as a try.
            taken = executor.dispatch(run_id, redispatch=True, patience=1.0)
    except executor.BrokerUnavailable:
        log.warning("run %s: no progress for %.0f s and the broker cannot be reached", run_id, quiet)
        return REDISPATCHED
    if taken is None:
        return MOVING  # another checker re-dispatched it a moment ago
    log.warning(
        "run %s: no progress for %.0f s and no live task; re-dispatched (%d of %d)",
        run_id,
        quiet,
        redispatches + 1,
        settings.stall_after,
    )
    return REDISPATCHED


def check_all(*, now: datetime | None = None) -> dict[int, str]:
    """Checks every rendering or assembling run; returns what was found per run."""
    with session_scope() as session:
        ids = session.scalars(select(Run.id).where(Run.state.in_(executor.ACTIVE)).order_by(Run.id)).all()
    return {run_id: check_run(run_id, now=now) for run_id in ids}
