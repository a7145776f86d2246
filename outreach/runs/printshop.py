"""The print shop's side of a batch: its files handed out, what it reports (downloaded, printed, handed to the
post), and returned pieces. A batch whose campaign names no print shop is not handed out to anyone."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences import suppression
from outreach.accounts import service as accounts
from outreach.accounts import webhooks
from outreach.accounts.models import Organisation
from outreach.campaigns.models import Campaign
from outreach.channels import get_channel
from outreach.db import utcnow
from outreach.errors import InputError, NotFound, StateError
from outreach.i18n import _
from outreach.ledger import service as ledger
from outreach.ledger.models import LedgerEntry
from outreach.render import KitOptions, load_kit_cached
from outreach.runs.batchfiles import write_batch_files
from outreach.runs.models import BATCH_STATES, Batch, Piece, Run
from outreach.runs.states import batch_state_label, parse_batch_state
from outreach.settings import get_settings
from outreach.storage import Storage, digest_and_size

_NUMBER = re.compile(r"^R(\d{6})-(\d{7})$")


@dataclass(frozen=True)
class AssignedBatch:
    """A batch with the print shop it is assigned to."""

    batch: Batch
    campaign: str
    print_shop: Organisation


def _batch(session: Session, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(_("no batch with id {id}", id=batch_id))
    return batch


def assigned(*, session: Session, batch_id: int, print_shop: str | None = None) -> AssignedBatch:
    """The batch and its print shop; refused if the campaign names none, or another than `print_shop`."""
    batch = _batch(session, batch_id)
    run = session.get(Run, batch.run_id)
    assert run is not None  # a foreign key guarantees it
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    shop = campaign.print_shop
    if shop is None:
        raise StateError(
            _(
                "batch {id} of campaign {campaign} has no print shop (unassigned); name one with "
                "`outreach printshop assign` before handing it out",
                id=batch_id,
                campaign=campaign.name,
            )
        )
    if print_shop is not None and print_shop.strip() != shop.name:
        raise StateError(
            _(
                "batch {id} is assigned to print shop {shop}, not {other}",
                id=batch_id,
                shop=shop.name,
                other=print_shop,
            )
        )
    return AssignedBatch(batch=batch, campaign=campaign.name, print_shop=shop)


def assigned_batches(*, session: Session, print_shop: str) -> list[AssignedBatch]:
    """The batches a print shop may download, oldest first."""

    shop = accounts.print_shop(session=session, name=print_shop)
    rows = session.execute(
        select(Batch, Campaign.name)
        .join(Run, Run.id == Batch.run_id)
        .join(Campaign, Campaign.id == Run.campaign_id)
        .where(Campaign.print_shop_id == shop.id)
        .order_by(Batch.run_id, Batch.seq)
    ).all()
    return [AssignedBatch(batch=b, campaign=name, print_shop=shop) for b, name in rows]


def download(
    *, session: Session, storage: Storage, batch_id: int, dest: Path, print_shop: str | None = None
) -> list[Path]:
    """Copies a batch's files into `dest` (checking each checksum) and records it downloaded.

    Refused for a batch with no print shop, another print shop's batch, or a purged batch.
    """
    found = assigned(session=session, batch_id=batch_id, print_shop=print_shop)
    batch = found.batch
    if batch.purged_at is not None:
        raise StateError(_("batch {id}'s files were deleted after the retention period", id=batch_id))
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, meta in sorted(batch.files.items()):
        target = dest / name
        tmp = dest / f".{name}.part"
        try:
            with storage.open(str(meta["key"])) as src, tmp.open("wb") as out:
                for block in iter(lambda: src.read(1 << 20), b""):
                    out.write(block)
            with tmp.open("rb") as check:
                sha256, _size = digest_and_size(check)
            if sha256 != meta["sha256"]:
                raise StateError(
                    _("batch {id}: {name} does not match its recorded checksum", id=batch_id, name=name)
                )
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(target)
    if batch.state == "ready":
        report(session=session, batch_id=batch_id, state="downloaded")
    return written


def assign(*, session: Session, storage: Storage, campaign: Campaign, print_shop: str) -> int:
    """Names the campaign's print shop; the tickets of its batches not yet handed out are written again.

    Refused while another print shop holds one of its batches. Returns how many tickets were rewritten.
    """

    shop = accounts.print_shop(session=session, name=print_shop)
    rows = session.execute(
        select(Batch, Run).join(Run, Run.id == Batch.run_id).where(Run.campaign_id == campaign.id)
    ).all()
    held = [b for b, _run in rows if b.state != "ready" and campaign.print_shop_id not in (None, shop.id)]
    if held:
        raise StateError(
            _(
                "batch {id} of campaign {campaign} is with another print shop already ({state})",
                id=held[0].id,
                campaign=campaign.name,
                state=held[0].state,
            )
        )
    campaign.print_shop_id = shop.id
    session.flush()
    session.refresh(campaign)
    rewritten = 0
    kit = load_kit_cached(campaign.kit, KitOptions.from_settings(get_settings()))
    for batch, run in rows:
        if batch.state != "ready" or batch.purged_at is not None:
            continue
        if kit.digest != run.content_hash:
            raise StateError(
                _(
                    "kit {kit} changed since run {run}; restore it to rewrite the run's job tickets",
                    kit=campaign.kit,
                    run=run.id,
                )
            )
        write_batch_files(
            session=session,
            run=run,
            campaign=campaign,
            kit=kit,
            batch_seq=batch.seq,
            storage=storage,
            make_zip=get_settings().zip_batches,
            delivered={n: m for n, m in batch.files.items() if n in _delivery_files(kit.channel)},
        )
        rewritten += 1
    session.flush()
    return rewritten


def _delivery_files(channel: str) -> tuple[str, ...]:
    return get_channel(channel).delivery_files


def report(*, session: Session, batch_id: int, state: str) -> Batch:
    """Records a batch's progress at the print shop; states only move forward; unassigned batches refused."""
    state = parse_batch_state(state)
    if state == BATCH_STATES[0]:
        raise InputError(
            _(
                "a print shop reports one of {choices}, not {value}",
                choices="、".join(batch_state_label(s) for s in BATCH_STATES[1:]),
                value=batch_state_label(state),
            )
        )
    batch = assigned(session=session, batch_id=batch_id).batch
    if BATCH_STATES.index(state) < BATCH_STATES.index(batch.state):
        raise StateError(
            _(
                "batch {id} is {state} already; it cannot go back to {target}",
                id=batch_id,
                state=batch_state_label(batch.state),
                target=batch_state_label(state),
            )
        )
    now = utcnow()
    was = batch.state
    batch.state = state
    stamp = {"downloaded": "downloaded_at", "printed": "printed_at", "mailed": "mailed_at"}[state]
    if getattr(batch, stamp) is None:
        setattr(batch, stamp, now)
    session.flush()
    if state == "mailed" and was != "mailed":
        # Into the outbox in this transaction; sent to the print shop's webhook only once it commits.
        run = session.get(Run, batch.run_id)
        assert run is not None
        campaign = session.get(Campaign, run.campaign_id)
        webhooks.batch_mailed(session=session, batch=batch, run=run, campaign=campaign)
    return batch


def find_piece(*, session: Session, number: str) -> Piece:
    """The piece with a printed number such as R000012-0000345."""
    m = _NUMBER.match(number.strip().upper())
    if not m:
        raise InputError(_("{number} is not a piece number like R000012-0000345", number=number))
    piece = session.scalar(select(Piece).where(Piece.run_id == int(m.group(1)), Piece.seq == int(m.group(2))))
    if piece is None:
        raise NotFound(_("no piece numbered {number}", number=number))
    return piece


def record_returns(*, session: Session, numbers: Sequence[str], reason: str = "undeliverable") -> int:
    """Records returned letters: suppresses the address for letters and refunds where the offer says so."""
    for number in numbers:
        piece = find_piece(session=session, number=number)
        suppression.record_returned_mail(
            session=session, worker_id=piece.worker_id, note=f"{number}: {reason}"
        )
        ledger.refund(session=session, run_id=piece.run_id, piece_id=piece.id, reason=reason)
    return len(numbers)


def returned_by_batch(*, session: Session, run_id: int) -> dict[int, int]:
    """How many pieces of each of the run's batches the post brought back (batch seq -> count)."""
    rows = session.execute(
        select(Batch.seq, func.count(LedgerEntry.id))
        .join(Piece, (Piece.run_id == Batch.run_id) & Piece.seq.between(Batch.first_seq, Batch.last_seq))
        .join(LedgerEntry, (LedgerEntry.run_id == Piece.run_id) & (LedgerEntry.piece_id == Piece.id))
        .where(Batch.run_id == run_id, LedgerEntry.kind == "return")
        .group_by(Batch.seq)
    ).all()
    return {int(seq): int(count) for seq, count in rows}
