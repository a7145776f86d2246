"""Celery tasks: thin wrappers that take ids and call the run executor or a service.

What a batch does, when a run finishes, and which errors are retried live in outreach/runs/executor.py; a
task only maps "try again later" onto Celery's retry.
"""

from __future__ import annotations

import logging

from celery import Task

from outreach.accounts import webhooks
from outreach.campaigns import schedule
from outreach.channels.gateways.base import GatewayError
from outreach.db import session_scope, utcnow
from outreach.i18n import _
from outreach.runs import executor, retention, sms, supervisor
from outreach.storage import get_storage
from workers.celery_app import app

log = logging.getLogger(__name__)


def _retry_or_give_up(task: Task, run_id: int, exc: Exception) -> None:
    """Retries a database, storage or broker error with backoff; after the last try (or for any other error)
    the executor records it, and a lasting storage failure stalls the run instead of dropping the batch."""
    attempt = task.request.retries
    if isinstance(exc, GatewayError) and exc.kind == "fatal":
        # Credentials, signature, template or balance: no retry helps until a person acts.
        executor.stall(run_id, _("the SMS gateway refuses every message: {error}", error=str(exc)))
        return
    again = executor.retryable(exc) or isinstance(exc, GatewayError)  # throttled past the channel's tries
    if again and attempt < executor.TASK_RETRIES:
        raise task.retry(exc=exc, countdown=executor.retry_delay(attempt), max_retries=executor.TASK_RETRIES)
    executor.give_up(run_id, exc)


@app.task(bind=True, name=executor.RENDER_TASK)
def render_batch(self: Task, run_id: int, batch_seq: int) -> dict[str, object]:
    """Renders one batch of a run; then, rendered or skipped, queues the finish if nothing is pending."""
    try:
        outcome = executor.render_and_continue(run_id, batch_seq)
    except Exception as exc:
        _retry_or_give_up(self, run_id, exc)
        if executor.storage_problem(exc) is None:
            raise
        return {"stalled": True}
    return {"rendered": outcome.rendered, "failed": outcome.failed, "skipped": outcome.skipped}


@app.task(bind=True, name=executor.FINISH_TASK)
def finish_run(self: Task, run_id: int) -> str:
    """Finishes a fully rendered run (releases unused budget, marks it done)."""
    try:
        return executor.finish(run_id)
    except Exception as exc:
        _retry_or_give_up(self, run_id, exc)
        if executor.storage_problem(exc) is None:
            raise
        return "stalled"


@app.task(name="outreach.supervise")
def supervise() -> dict[int, str]:
    """Re-dispatches runs that stopped moving and stalls those that cannot move (every minute); applies SMS
    receipts that arrived before their batch committed; sends webhook events a lost task left due."""
    with session_scope() as session:
        sms.apply_stranded(session=session)
    webhooks.deliver_due()
    return supervisor.check_all()


@app.task(bind=True, name=webhooks.DELIVER_TASK)
def deliver_webhook(self: Task, event_id: int) -> None:
    """One delivery attempt of a webhook event; a failure is retried after the service's backoff."""
    delay = webhooks.deliver(event_id)
    if delay is not None:
        raise self.retry(countdown=delay, max_retries=webhooks.MAX_ATTEMPTS)


@app.task(name="outreach.tick_schedule")
def tick_schedule() -> list[int]:
    """Starts (or records as waiting) each quarterly campaign's run for the current quarter."""
    with session_scope() as session:
        started = schedule.tick(session=session, now=utcnow())
    for run_id in started:
        executor.execute(run_id, wait=False)
    return started


@app.task(name="outreach.purge_batches")
def purge_batches() -> int:
    """Deletes batch files past their retention period; returns how many batches were purged."""
    with session_scope() as session:
        return retention.purge(session=session, storage=get_storage(), now=utcnow())


def dispatch(run_id: int) -> int:
    """Queues the run's pending batches (or its finish) on the workers; returns how many (0 when another
    dispatch holds the run). Kept for callers that queue without waiting; `executor.execute` is the way."""
    return executor.dispatch(run_id) or 0
