"""A batch's files beside its prints: manifest, job ticket (JSON and PDF), checksums, optional ZIP.

Every file is a pure function of the frozen pieces and the kit, so writing them twice gives the same bytes.
Only what is printed leaves for the print shop: names, units, addresses, postcodes, piece numbers.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from outreach.campaigns.models import Campaign
from outreach.errors import NotFound
from outreach.render import Kit
from outreach.runs.models import Batch, Piece, Run, piece_number
from outreach.runs.ticket import JobTicket, write_ticket_pdf
from outreach.spreadsheet import write_csv
from outreach.storage import Storage, digest_and_size

MANIFEST_HEADER = ("sequence", "piece", "name", "unit", "address", "postcode", "pages", "file")
# ZIP entries carry a fixed timestamp so the archive's bytes (and checksum) do not depend on the clock.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# What a batch records of each file: {"key": storage key, "sha256": hex digest, "bytes": size}.
FileFacts = dict[str, object]


def batch_range(run: Run, batch_seq: int) -> tuple[int, int]:
    """The first and last piece sequence numbers of a batch (1-based)."""
    if not 1 <= batch_seq <= run.batch_count:
        raise NotFound(f"run {run.id} has batches 1..{run.batch_count}, not {batch_seq}")
    first = (batch_seq - 1) * run.batch_size + 1
    return first, min(batch_seq * run.batch_size, run.piece_count)


def batch_key(run: Run, batch_seq: int, name: str) -> str:
    """The storage key of one of a batch's files."""
    return f"run-{run.id:06d}/batch-{batch_seq:04d}/{name}"


def write_batch_files(
    *,
    session: Session,
    run: Run,
    campaign: Campaign,
    kit: Kit,
    batch_seq: int,
    storage: Storage,
    make_zip: bool,
    printed: dict[str, FileFacts] | None = None,
) -> None:
    """Writes one rendered batch's manifest, ticket, checksums (and ZIP) and records the batch.

    `printed` describes the print files as the render task stored them; without it they are read back.
    """
    first, last = batch_range(run, batch_seq)
    pieces = session.execute(
        select(
            Piece.seq, Piece.name, Piece.unit_name, Piece.address, Piece.postcode, Piece.pages, Piece.parts
        )
        .where(Piece.run_id == run.id, Piece.seq.between(first, last), Piece.state == "rendered")
        .order_by(Piece.seq)
    ).all()
    failed = (last - first + 1) - len(pieces)
    letter = kit.channel == "letter"
    print_files = ("envelopes.pdf", "letters.pdf") if letter else ("sms.csv",)
    files: dict[str, FileFacts] = dict(printed) if printed else {}
    for name in print_files:
        if name not in files:
            files[name] = _describe(storage, batch_key(run, batch_seq, name))
    with tempfile.TemporaryDirectory(prefix="outreach-batch-files-") as tmp_name:
        tmp = Path(tmp_name)
        if letter:
            write_csv(
                tmp / "manifest.csv",
                MANIFEST_HEADER,
                (
                    (
                        i,
                        piece_number(run.id, p.seq),
                        p.name,
                        p.unit_name,
                        p.address,
                        p.postcode,
                        p.pages,
                        "letters.pdf",
                    )
                    for i, p in enumerate(pieces, start=1)
                ),
            )
            _put(storage, run, batch_seq, tmp / "manifest.csv", files)
        pages = sum((p.pages or 0) for p in pieces)
        ticket = JobTicket.build(
            campaign=campaign,
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
        _put(storage, run, batch_seq, tmp / "ticket.json", files)
        write_ticket_pdf(ticket, tmp / "ticket.pdf")
        _put(storage, run, batch_seq, tmp / "ticket.pdf", files)
        sums = "".join(f"{meta['sha256']}  {name}\n" for name, meta in sorted(files.items()))
        (tmp / "SHA256SUMS").write_text(sums, encoding="ascii")
        _put(storage, run, batch_seq, tmp / "SHA256SUMS", files)
        if make_zip:
            archive = tmp / f"batch-{batch_seq:04d}.zip"
            with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name in sorted(files):
                    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with storage.open(batch_key(run, batch_seq, name)) as src:
                        zf.writestr(info, src.read())
            _put(storage, run, batch_seq, archive, files)
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


def _describe(storage: Storage, key: str) -> FileFacts:
    with storage.open(key) as stream:
        sha256, size = digest_and_size(stream)
    return {"key": key, "sha256": sha256, "bytes": size}


def put_file(storage: Storage, run: Run, batch_seq: int, path: Path) -> FileFacts:
    """Stores a local file among the batch's files; its key, SHA-256 and size (hashed locally)."""
    key = batch_key(run, batch_seq, path.name)
    storage.put(key, path)
    with path.open("rb") as f:
        sha256, size = digest_and_size(f)
    return {"key": key, "sha256": sha256, "bytes": size}


def _put(storage: Storage, run: Run, batch_seq: int, path: Path, files: dict[str, FileFacts]) -> None:
    files[path.name] = put_file(storage, run, batch_seq, path)
