"""Celery workers: `celery -A workers worker` renders batches; `celery -A workers beat` runs the schedule."""

from workers.celery_app import app

__all__ = ["app"]
