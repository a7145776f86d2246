"""The processing log of the print shops as entrusted processors (PIPL art. 21): for each batch handed over,
which personal fields it carried, how many records, the file digests, who downloaded it and when, and when
its files were purged. Read from the batches and the audit log; nothing is stored twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach.accounts.auth_models import AuditEntry
from outreach.accounts.models import Organisation
from outreach.campaigns.models import Campaign
from outreach.channels.letter import MANIFEST_HEADER
from outreach.runs.models import Batch, Run

# The personal data a letter batch carries: what is printed (DESIGN: never mobiles or flags).
LETTER_FIELDS = tuple(f for f in MANIFEST_HEADER if f in ("name", "unit", "address", "postcode", "piece"))


@dataclass(frozen=True)
class Download:
    """One download of a batch file."""

    at: datetime
    username: str | None
    address: str | None
    detail: str | None


@dataclass(frozen=True)
class HandOver:
    """One batch handed to a print shop."""

    batch_id: int
    shop: str
    campaign: str
    period: str
    records: int
    fields: tuple[str, ...]
    digests: dict[str, str]
    mailed_at: datetime | None
    purged_at: datetime | None
    downloads: list[Download] = field(default_factory=list)


def hand_overs(
    *, session: Session, shop_id: int | None = None, before_id: int | None = None, limit: int = 100
) -> Sequence[HandOver]:
    """Batches handed to print shops (one shop, or all), newest first, with their downloads."""
    stmt = (
        select(Batch, Run, Campaign, Organisation)
        .join(Run, Run.id == Batch.run_id)
        .join(Campaign, Campaign.id == Run.campaign_id)
        .join(Organisation, Organisation.id == Campaign.print_shop_id)
        .order_by(Batch.id.desc())
        .limit(max(1, min(limit, 500)))
    )
    if shop_id is not None:
        stmt = stmt.where(Organisation.id == shop_id)
    if before_id is not None:
        stmt = stmt.where(Batch.id < before_id)
    rows = session.execute(stmt).all()
    found = [
        HandOver(
            batch_id=batch.id,
            shop=org.name,
            campaign=campaign.name,
            period=run.period,
            records=batch.pieces,
            fields=LETTER_FIELDS if campaign.channel == "letter" else (),
            digests={name: str(meta.get("sha256", "")) for name, meta in sorted((batch.files or {}).items())},
            mailed_at=batch.mailed_at,
            purged_at=batch.purged_at,
        )
        for batch, run, campaign, org in rows
    ]
    if found:
        by_id = {str(h.batch_id): h for h in found}
        downloads = session.scalars(
            select(AuditEntry)
            .where(
                AuditEntry.action == "batch.download",
                AuditEntry.object_type == "batch",
                AuditEntry.object_id.in_(list(by_id)),
            )
            .order_by(AuditEntry.id)
        )
        for entry in downloads:
            by_id[str(entry.object_id)].downloads.append(
                Download(at=entry.at, username=entry.username, address=entry.address, detail=entry.detail)
            )
    return found
