"""A print shop's view of its batches: every query here is scoped to the caller's organisation, so that
another shop's batch, or a guessed id, is simply not found. The state changes call outreach.runs.printshop."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach.accounts.models import Organisation
from outreach.campaigns.models import Campaign
from outreach.db import utcnow
from outreach.errors import InputError, NotFound
from outreach.i18n import _
from outreach.periods import local_date
from outreach.runs import printshop
from outreach.runs.models import Batch, Run, piece_number
from outreach.settings import get_settings
from outreach.storage import Storage

PIECE_NUMBER = re.compile(r"R(\d{6})-(\d{7})")
MAX_RETURNS_PER_UPLOAD = 100_000
CHUNK = 256 * 1024


@dataclass(frozen=True)
class ShopBatch:
    """A batch as its print shop sees it."""

    id: int
    run_id: int
    seq: int
    campaign: str
    period: str
    channel: str
    pieces: int
    pages: int
    state: str
    first_seq: int
    last_seq: int
    first_number: str
    last_number: str
    files: dict[str, dict[str, Any]]
    created_at: datetime
    downloaded_at: datetime | None
    printed_at: datetime | None
    mailed_at: datetime | None
    purged_at: datetime | None

    @property
    def downloadable(self) -> list[tuple[str, dict[str, Any]]]:
        """The files a shop downloads, by role, in a stable order."""
        return sorted(self.files.items())


def _shop_batch(batch: Batch, run: Run, campaign: Campaign) -> ShopBatch:
    return ShopBatch(
        id=batch.id,
        run_id=run.id,
        seq=batch.seq,
        campaign=campaign.name,
        period=run.period,
        channel=campaign.channel,
        pieces=batch.pieces,
        pages=batch.pages,
        state=batch.state,
        first_seq=batch.first_seq,
        last_seq=batch.last_seq,
        first_number=piece_number(run.id, batch.first_seq),
        last_number=piece_number(run.id, batch.last_seq),
        files=dict(batch.files or {}),
        created_at=run.created_at,
        downloaded_at=batch.downloaded_at,
        printed_at=batch.printed_at,
        mailed_at=batch.mailed_at,
        purged_at=batch.purged_at,
    )


def _scoped(organisation: Organisation) -> Any:
    return (
        select(Batch, Run, Campaign)
        .join(Run, Run.id == Batch.run_id)
        .join(Campaign, Campaign.id == Run.campaign_id)
        .where(Campaign.print_shop_id == organisation.id)
    )


def list_batches(
    *, session: Session, organisation: Organisation, before_id: int | None = None, limit: int = 50
) -> Sequence[ShopBatch]:
    """The shop's batches, newest first; keyset paging: pass the last id seen as `before_id`."""
    stmt = _scoped(organisation).order_by(Batch.id.desc()).limit(max(1, min(limit, 200)))
    if before_id is not None:
        stmt = stmt.where(Batch.id < before_id)
    return [_shop_batch(b, r, c) for b, r, c in session.execute(stmt).all()]


def get_batch(*, session: Session, organisation: Organisation, batch_id: int) -> ShopBatch:
    """One of the shop's batches; another shop's (or no) batch is not found, alike."""
    row = session.execute(_scoped(organisation).where(Batch.id == batch_id)).first()
    if row is None:
        raise NotFound(_("no batch {id} for {org}", id=batch_id, org=organisation.name))
    return _shop_batch(*row)


def file_of(batch: ShopBatch, role: str) -> dict[str, Any]:
    """The stored file of one role of a batch (its key, sha256, bytes); refused after purging."""
    meta = batch.files.get(role)
    if meta is None:
        raise NotFound(_("batch {id} has no file {role}", id=batch.id, role=role))
    if batch.purged_at is not None:
        raise NotFound(_("the files of batch {id} were deleted after the retention period", id=batch.id))
    return meta


def report(
    *, session: Session, organisation: Organisation, batch_id: int, state: str, mailed_on: date | None = None
) -> ShopBatch:
    """Records the shop's progress on one of its batches (forward only); `mailed_on` dates a mailing."""
    before = get_batch(session=session, organisation=organisation, batch_id=batch_id)
    if mailed_on is not None:
        if state != "mailed":
            raise InputError(_("a mailing date goes with the state mailed only"))
        earliest = local_date(before.created_at)
        if not earliest <= mailed_on <= local_date():
            raise InputError(
                _(
                    "the mailing date {day} must lie between {earliest} and today",
                    day=mailed_on.isoformat(),
                    earliest=earliest.isoformat(),
                )
            )
    batch = printshop.report(session=session, batch_id=batch_id, state=state)
    if mailed_on is not None and before.mailed_at is None:
        # Noon of that day in the union's zone (or now, if earlier): people read back the date they gave.
        noon = datetime.combine(mailed_on, time(12), tzinfo=ZoneInfo(get_settings().timezone))
        batch.mailed_at = min(noon.astimezone(UTC), utcnow())
        session.flush()
    return get_batch(session=session, organisation=organisation, batch_id=batch_id)


def parse_numbers(text: str) -> list[str]:
    """Piece numbers from typed or pasted text or a barcode scanner's CSV: every R000000-0000000 in it.

    Anything else that is not blank, a separator or a CSV header is refused, naming the line.
    """
    numbers: list[str] = []
    header_allowed = True
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        tokens = [t for cell in row for t in re.split(r"[\s,;，；、]+", cell.strip()) if t]
        if not tokens:
            continue
        if header_allowed and not any(PIECE_NUMBER.fullmatch(t.upper()) for t in tokens):
            header_allowed = False  # the first line with text may be a CSV header such as "piece" or "件号"
            continue
        header_allowed = False
        for token in tokens:
            if not PIECE_NUMBER.fullmatch(token.upper()):
                raise InputError(
                    _(
                        "line {line}: {value} is not a piece number like R000012-0000345",
                        line=line_no,
                        value=token[:40],
                    )
                )
            numbers.append(token.upper())
    if len(numbers) > MAX_RETURNS_PER_UPLOAD:
        raise InputError(_("at most {n} piece numbers at a time", n=MAX_RETURNS_PER_UPLOAD))
    return list(dict.fromkeys(numbers))


def record_returns(
    *, session: Session, organisation: Organisation, batch_id: int, numbers: Sequence[str], reason: str
) -> int:
    """Records returned letters of one of the shop's batches; a number outside the batch is refused."""
    batch = get_batch(session=session, organisation=organisation, batch_id=batch_id)
    if not numbers:
        raise InputError(_("no piece numbers given"))
    outside = []
    for number in numbers:
        m = PIECE_NUMBER.fullmatch(number)
        run_id, seq = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if run_id != batch.run_id or not batch.first_seq <= seq <= batch.last_seq:
            outside.append(number)
    if outside:
        raise InputError(
            _(
                "{count} numbers are not in batch {id} ({first} to {last}): {numbers}",
                count=len(outside),
                id=batch.id,
                first=batch.first_number,
                last=batch.last_number,
                numbers=", ".join(outside[:10]),
            )
        )
    return printshop.record_returns(session=session, numbers=numbers, reason=reason)


@dataclass(frozen=True)
class ByteRange:
    """Bytes start..end (both included) of a file of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a Range header asks for; None for the whole file; InputError if unsatisfiable."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return None  # several ranges or a unit we do not serve: RFC 9110 lets us answer the whole file
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:
        start, end = max(0, size - int(m.group(2))), size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(size)
    return ByteRange(start, end, size)


class RangeNotSatisfiable(Exception):
    """A Range outside the file (HTTP 416)."""

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(size)


def stream(storage: Storage, key: str, byte_range: ByteRange | None) -> Iterator[bytes]:
    """The stored file (or a range of it) in blocks of CHUNK bytes: memory stays flat at any size."""
    with storage.open(key) as fh:
        remaining: int | None = None
        if byte_range is not None:
            _skip(fh, byte_range.start)
            remaining = byte_range.length
        while remaining is None or remaining > 0:
            block = fh.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not block:
                return
            if remaining is not None:
                remaining -= len(block)
            yield block


def _skip(fh: BinaryIO, offset: int) -> None:
    # A local file seeks; an object store's body is read past (still in blocks).
    try:
        if fh.seekable():
            fh.seek(offset)
            return
    except (AttributeError, OSError):
        pass
    while offset > 0:
        block = fh.read(min(CHUNK, offset))
        if not block:
            return
        offset -= len(block)


class _Sink:
    """A write-only stream that hands over what was written since the last `take` (for a streamed ZIP)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: `take` hands the bytes over."""

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


# A fixed time stamp for every member: the same batch zips to the same bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def zip_members(batch: ShopBatch) -> list[tuple[str, str]]:
    """The (name in the ZIP, storage key) of every file of a batch, except ZIPs made at assembly."""
    if batch.purged_at is not None:
        raise NotFound(_("the files of batch {id} were deleted after the retention period", id=batch.id))
    return [
        (name, str(meta["key"]))
        for name, meta in batch.downloadable
        if not name.lower().endswith(".zip") and meta.get("key")
    ]


def stream_zip(storage: Storage, members: Sequence[tuple[str, str]]) -> Iterator[bytes]:
    """One ZIP of the members, written as it is sent: stored (PDFs are compressed already), memory flat."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[call-overload]
        for name, key in members:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            with storage.open(key) as source, archive.open(info, "w", force_zip64=True) as target:
                for block in iter(lambda: source.read(CHUNK), b""):
                    target.write(block)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
