"""The Celery app, configured from Outreach's settings.

With no OUTREACH_BROKER_URL the tasks run in-process (eager), which is the embedded default. With Redis, a
task is acknowledged only after it finished (late ack), so a lost worker's task is handed to another worker
once the visibility timeout passes; every task is safe to run twice.
"""

from __future__ import annotations

from datetime import timedelta

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


app = Celery("outreach", include=["workers.tasks"])
configure(app, get_settings())
