"""A batch's files beside what its channel delivered: manifest, job ticket (JSON and PDF), checksums, ZIP.

Every file is a pure function of the frozen pieces and the kit, so writing them twice gives the same bytes.
Only what is printed leaves for the print shop: names, units, addresses, postcodes, piece numbers. Which
files a batch has besides these, and whether it has a manifest, is its channel's say.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from outreach.accounts.models import Organisation
from outreach.campaigns.models import Campaign
from outreach.channels import BatchFolder, FileFacts, ManifestRow, get_channel
from outreach.errors import NotFound
from outreach.i18n import _
from outreach.render import Kit
from outreach.runs.models import Batch, Piece, Run, piece_number
from outreach.runs.ticket import JobTicket, write_ticket_pdf
from outreach.spreadsheet import write_csv
from outreach.storage import Storage

MANIFEST_FILE = "manifest.csv"
# ZIP entries carry a fixed timestamp so the archive's bytes (and checksum) do not depend on the clock.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# The piece states whose pieces a batch's manifest and totals count: what the channel delivered.
DELIVERED_STATES = ("rendered", "submitted", "delivered")


def batch_range(run: Run, batch_seq: int) -> tuple[int, int]:
    """The first and last piece sequence numbers of a batch (1-based)."""
    if not 1 <= batch_seq <= run.batch_count:
        raise NotFound(
            _(
                "run {run} has batches 1..{count}, not {batch}",
                run=run.id,
                count=run.batch_count,
                batch=batch_seq,
            )
        )
    first = (batch_seq - 1) * run.batch_size + 1
    return first, min(batch_seq * run.batch_size, run.piece_count)


def batch_prefix(run_id: int, batch_seq: int) -> str:
    """The storage folder of a batch's files."""
    return f"run-{run_id:06d}/batch-{batch_seq:04d}"


def batch_folder(storage: Storage, run: Run, batch_seq: int) -> BatchFolder:
    """Where one batch's files go."""
    return BatchFolder(storage, batch_prefix(run.id, batch_seq))


def batch_key(run: Run, batch_seq: int, name: str) -> str:
    """The storage key of one of a batch's files."""
    return f"{batch_prefix(run.id, batch_seq)}/{name}"


def write_batch_files(
    *,
    session: Session,
    run: Run,
    campaign: Campaign,
    kit: Kit,
    batch_seq: int,
    storage: Storage,
    make_zip: bool,
    delivered: dict[str, FileFacts] | None = None,
) -> None:
    """Writes one delivered batch's manifest, ticket, checksums (and ZIP) and records the batch.

    `delivered` describes the channel's files as the render task stored them; without it they are read back.
    """
    channel = get_channel(kit.channel)
    folder = batch_folder(storage, run, batch_seq)
    first, last = batch_range(run, batch_seq)
    pieces = [
        ManifestRow(seq, piece_number(run.id, seq), name, unit, address, postcode, pages, parts)
        for seq, name, unit, address, postcode, pages, parts in session.execute(
            select(
                Piece.seq,
                Piece.name,
                Piece.unit_name,
                Piece.address,
                Piece.postcode,
                Piece.pages,
                Piece.parts,
            )
            .where(
                Piece.run_id == run.id,
                Piece.seq.between(first, last),
                Piece.state.in_(DELIVERED_STATES),
            )
            .order_by(Piece.seq)
        )
    ]
    failed = (last - first + 1) - len(pieces)
    files: dict[str, FileFacts] = dict(delivered) if delivered else {}
    for name in channel.delivery_files:
        if name not in files:
            files[name] = folder.describe(name)
    print_shop = session.get(Organisation, campaign.print_shop_id) if campaign.print_shop_id else None
    with tempfile.TemporaryDirectory(prefix="outreach-batch-files-") as tmp_name:
        tmp = Path(tmp_name)
        manifest = channel.manifest(pieces)
        if manifest is not None:
            header, rows = manifest
            write_csv(tmp / MANIFEST_FILE, header, rows)
            files[MANIFEST_FILE] = folder.put(tmp / MANIFEST_FILE)
        pages = sum((p.pages or 0) for p in pieces)
        ticket = JobTicket.build(
            campaign=campaign,
            print_shop=print_shop,
            run=run,
            kit=kit,
            batch_seq=batch_seq,
            batch_count=run.batch_count,
            pieces=len(pieces),
            failed=failed,
            letter_pages=pages,
            sms_parts=sum((p.parts or 0) for p in pieces),
            first=first,
            last=last,
            checksums={name: str(meta["sha256"]) for name, meta in files.items()},
        )
        (tmp / "ticket.json").write_text(
            json.dumps(ticket.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        files["ticket.json"] = folder.put(tmp / "ticket.json")
        write_ticket_pdf(ticket, tmp / "ticket.pdf")
        files["ticket.pdf"] = folder.put(tmp / "ticket.pdf")
        sums = "".join(f"{meta['sha256']}  {name}\n" for name, meta in sorted(files.items()))
        (tmp / "SHA256SUMS").write_text(sums, encoding="ascii")
        files["SHA256SUMS"] = folder.put(tmp / "SHA256SUMS")
        if make_zip:
            archive = tmp / f"batch-{batch_seq:04d}.zip"
            with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name in sorted(files):
                    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with storage.open(folder.key(name)) as src:
                        zf.writestr(info, src.read())
            files[archive.name] = folder.put(archive)
    values = {
        "run_id": run.id,
        "seq": batch_seq,
        "first_seq": first,
        "last_seq": last,
        "pieces": len(pieces),
        "pages": pages,
        "files": files,
        "state": "ready",
    }
    # Upsert: a redelivered assembly finds the batch recorded already and writes the same facts again.
    dialect = session.get_bind().dialect.name
    ins = (postgresql if dialect == "postgresql" else sqlite).insert(Batch).values(**values)
    session.execute(
        ins.on_conflict_do_update(
            index_elements=["run_id", "seq"], set_={"pieces": len(pieces), "pages": pages, "files": files}
        )
    )
