"""Retention: batch files (names and addresses) are deleted a while after the print shop mailed them.

The batch row keeps its totals and checksums, so what was sent can still be accounted for.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach.runs.models import Batch
from outreach.settings import get_settings
from outreach.storage import Storage


def purge(*, session: Session, storage: Storage, now: datetime, retention_days: int | None = None) -> int:
    """Deletes the files of batches mailed more than the retention period ago; returns how many."""
    days = get_settings().retention_days if retention_days is None else retention_days
    cutoff = now - timedelta(days=days)
    due = session.scalars(
        select(Batch).where(
            Batch.mailed_at.is_not(None), Batch.mailed_at <= cutoff, Batch.purged_at.is_(None)
        )
    ).all()
    for batch in due:
        for meta in batch.files.values():
            storage.delete(str(meta["key"]))
        batch.purged_at = now
    session.flush()
    return len(due)
