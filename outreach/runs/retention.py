"""Retention: batch files (names and addresses, gateway lists) are deleted a while after they served, while
the consent evidence stays at least six months.

Letter batches go `retention_days` after the print shop mailed them; SMS batches (gateway files, a live run's
submitted lists and intent files) `retention_days` after their run finished. The batch row keeps its totals
and checksums, so what was sent can still be accounted for.

Consent evidence is never purged younger than `EVIDENCE_DAYS` (six months), whatever `retention_days` says:
the suppression list and the stop replies behind it are kept for good (an opt-out holds across runs); each
piece keeps its submitted and delivered times with the run; the gateways' raw receipts and the replies that
asked nothing are deleted once older than six months (or the retention period, if longer).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from outreach.campaigns.models import Campaign
from outreach.runs.batchfiles import batch_prefix
from outreach.runs.models import Batch, Run
from outreach.runs.sms import SmsReceipt, SmsReply
from outreach.settings import get_settings
from outreach.storage import Storage

# Six months, counted generously: the least time consent evidence is kept.
EVIDENCE_DAYS = 186
# A live SMS batch's file that is not among the batch's recorded files (outreach.channels.sms_live).
_SMS_EXTRA_FILES = ("sms-intent.json",)


def purge(*, session: Session, storage: Storage, now: datetime, retention_days: int | None = None) -> int:
    """Deletes the files of batches past the retention period (and old raw SMS receipts and replies that
    asked nothing, past six months at the least); returns how many batches were purged."""
    days = get_settings().retention_days if retention_days is None else retention_days
    cutoff = now - timedelta(days=days)
    mailed = session.scalars(
        select(Batch).where(
            Batch.mailed_at.is_not(None), Batch.mailed_at <= cutoff, Batch.purged_at.is_(None)
        )
    ).all()
    sms_batches = session.scalars(
        select(Batch)
        .join(Run, Run.id == Batch.run_id)
        .join(Campaign, Campaign.id == Run.campaign_id)
        .where(
            Campaign.channel == "sms",
            Run.finished_at.is_not(None),
            Run.finished_at <= cutoff,
            Batch.purged_at.is_(None),
        )
    ).all()
    sms_ids = {b.id for b in sms_batches}
    due = {b.id: b for b in (*mailed, *sms_batches)}
    for batch in due.values():
        keys = {str(meta["key"]) for meta in batch.files.values()}
        if batch.id in sms_ids:
            prefix = batch_prefix(batch.run_id, batch.seq)
            keys |= {f"{prefix}/{name}" for name in _SMS_EXTRA_FILES if storage.exists(f"{prefix}/{name}")}
        for key in sorted(keys):
            storage.delete(key)
        batch.purged_at = now
    evidence_cutoff = now - timedelta(days=max(days, EVIDENCE_DAYS))
    session.execute(delete(SmsReceipt).where(SmsReceipt.received_at < evidence_cutoff))
    session.execute(
        delete(SmsReply).where(SmsReply.received_at < evidence_cutoff, SmsReply.suppression_id.is_(None))
    )
    session.flush()
    return len(due)
