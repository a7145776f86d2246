"""Celery tasks: thin wrappers that take ids, open a session, call a service and commit."""

from __future__ import annotations

import logging

from sqlalchemy.exc import OperationalError

from outreach.campaigns import schedule
from outreach.db import session_scope, utcnow
from outreach.runs import retention
from outreach.runs import service as runs
from outreach.storage import get_storage
from workers.celery_app import app

log = logging.getLogger(__name__)


@app.task(
    name="outreach.render_batch",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def render_batch(run_id: int, batch_seq: int) -> dict[str, object]:
    """Renders one batch of a run and writes its files; when it was the last one, queues the finish."""
    with session_scope() as session:
        outcome = runs.render_batch(
            session=session, run_id=run_id, batch_seq=batch_seq, storage=get_storage()
        )
    if outcome.errors:
        log.warning(
            "run %s batch %s: %d piece(s) failed, first: %s",
            run_id,
            batch_seq,
            outcome.failed,
            outcome.errors[0],
        )
    if not outcome.skipped:
        maybe_finish(run_id)
    return {"rendered": outcome.rendered, "failed": outcome.failed, "skipped": outcome.skipped}


def maybe_finish(run_id: int) -> bool:
    """Queues the finish if no piece of the run is pending; True if queued."""
    with session_scope() as session:
        run = runs.get(session=session, run_id=run_id)
        ready = run.state == "rendering" and runs.pending_count(session=session, run_id=run_id) == 0
    if ready:
        finish_run.delay(run_id)
    return ready


@app.task(name="outreach.finish_run", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def finish_run(run_id: int) -> str:
    """Finishes a fully rendered run (releases unused budget, marks it done)."""
    with session_scope() as session:
        return runs.finish(session=session, run_id=run_id, storage=get_storage()).state


def dispatch(run_id: int) -> int:
    """Queues every batch of the run that still has pending pieces (or the finish); returns how many."""
    with session_scope() as session:
        run = runs.get(session=session, run_id=run_id)
        state = run.state
        todo = runs.pending_batches(session=session, run=run) if state == "rendering" else []
    for seq in todo:
        render_batch.delay(run_id, seq)
    if state in ("rendering", "assembling") and not todo:
        finish_run.delay(run_id)
    return len(todo)


@app.task(name="outreach.tick_schedule")
def tick_schedule() -> list[int]:
    """Starts (or records as waiting) each quarterly campaign's run for the current quarter."""
    with session_scope() as session:
        started = schedule.tick(session=session, now=utcnow())
    for run_id in started:
        dispatch(run_id)
    return started


@app.task(name="outreach.purge_batches")
def purge_batches() -> int:
    """Deletes batch files past their retention period; returns how many batches were purged."""
    with session_scope() as session:
        return retention.purge(session=session, storage=get_storage(), now=utcnow())
