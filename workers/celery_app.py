"""The Celery app, configured from Outreach's settings.

With no OUTREACH_BROKER_URL the tasks run in-process (eager), which is the embedded default. With Redis, a
task is acknowledged only after it finished (late ack), so a lost worker's task is handed to another worker
once the visibility timeout passes; every task is safe to run twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab

from outreach.settings import Settings, get_settings


def configure(app: Celery, settings: Settings) -> None:
    """Applies the settings to the app (also used by tests that change settings)."""
    eager = settings.broker_url is None
    transport: dict[str, object] = {
        "visibility_timeout": settings.visibility_timeout,
        # Sweep for a lost worker's messages often, so redelivery follows the timeout closely.
        "unacked_restore_interval": max(1, min(5, settings.visibility_timeout // 4)),
        "unacked_restore_throttle": 1,
    }
    if settings.broker_key_prefix:
        # Every key (queues, unacked messages, broadcasts) under one prefix: several installs, or test
        # sessions, share one Redis without seeing each other's messages.
        transport["global_keyprefix"] = settings.broker_key_prefix
    app.conf.update(
        broker_url=settings.broker_url or "memory://",
        result_backend=settings.result_backend or settings.broker_url or "cache+memory://",
        task_always_eager=eager,
        task_eager_propagates=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        timezone=settings.timezone,
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        beat_schedule={
            "supervise-runs": {
                "task": "outreach.supervise",
                "schedule": timedelta(seconds=settings.supervise_every),
            },
            "quarterly-campaigns": {
                "task": "outreach.tick_schedule",
                "schedule": crontab(minute="*/15"),
            },
            "purge-expired-batches": {
                "task": "outreach.purge_batches",
                "schedule": crontab(hour="3", minute="30"),
            },
        },
    )


def _closed_transport_is_a_connection_error() -> None:
    """Keeps a worker alive when Redis goes away while it holds an unacknowledged task (kombu 5.7).

    After a lost connection, celery releases the consumer's transport and later closes its channel (which
    re-queues the unacknowledged messages) or acknowledges a late-ack task that was running through it. The
    Redis channel then builds a new pool from its transport's client, which is None by then, and the
    AttributeError kills the worker ("Unrecoverable error"). Raised as the connection error it is, celery
    ignores or logs it and reconnects; the messages stay in Redis's unacked hash (the visibility sweep
    re-delivers them) or are gone with a Redis restarted empty (the supervisor re-dispatches the run).
    """
    try:
        import redis.exceptions
        from kombu.transport import redis as kombu_redis
    except ImportError:  # pragma: no cover - redis is a dependency of the broker setup only
        return

    connparams: Callable[..., Any] = kombu_redis.Channel._connparams
    if getattr(connparams, "outreach_guard", False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if getattr(self.connection, "client", None) is None:
            raise redis.exceptions.ConnectionError("the broker connection is closed")
        return connparams(self, asynchronous=asynchronous)

    _connparams.outreach_guard = True  # type: ignore[attr-defined]
    kombu_redis.Channel._connparams = _connparams  # type: ignore[method-assign]


_closed_transport_is_a_connection_error()
app = Celery("outreach", include=["workers.tasks"])
configure(app, get_settings())
