"""Looking the registry up for people: search units and workers, view one, list recent imports.

Returns plain frozen dataclasses, never ORM objects; a worker's mobile leaves masked unless the caller is
allowed to see it whole (the pages decide that with the permission `personal.unmasked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from audiences.models import RegistryImport, Unit, Worker
from audiences.privacy import mask_mobile
from outreach.errors import InputError, NotFound
from outreach.i18n import _

MAX_RESULTS = 50
MAX_SEARCH = 100
UNIT_WORKERS_SHOWN = 100


@dataclass(frozen=True)
class UnitRow:
    """A work unit as a list shows it."""

    id: int
    name: str
    kind: str
    township: str | None
    address: str | None
    postcode: str | None
    credit_code: str | None


@dataclass(frozen=True)
class WorkerRow:
    """A worker as a list shows her: the mobile masked (or whole, for those allowed)."""

    id: int
    worker_no: str | None
    name: str
    gender: str
    category: str | None
    unit_id: int
    unit_name: str
    mobile: str


@dataclass(frozen=True)
class WorkerView:
    """One worker with everything the registry holds about her; the mobile as `WorkerRow` says."""

    row: WorkerRow
    birth_year: int | None
    home_address: str | None
    home_postcode: str | None
    hardship: bool
    migrant: bool
    consent_sms: bool
    mail_opt_out: bool
    updated_at: datetime


@dataclass(frozen=True)
class UnitView:
    """One unit, how many workers it has, and the first of them."""

    row: UnitRow
    industry: str | None
    worker_count: int
    workers: tuple[WorkerRow, ...]


@dataclass(frozen=True)
class ImportRow:
    """A registry import as the lists show it."""

    id: int
    filename: str
    encoding: str | None
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    units_inserted: int
    units_updated: int
    started_at: datetime
    finished_at: datetime | None


def _unit_row(u: Unit) -> UnitRow:
    return UnitRow(u.id, u.name, u.kind, u.township, u.address, u.postcode, u.credit_code)


def _worker_row(w: Worker, unit_name: str, *, whole_mobile: bool) -> WorkerRow:
    mobile = (w.mobile or "") if whole_mobile else mask_mobile(w.mobile)
    return WorkerRow(w.id, w.worker_no, w.name, w.gender, w.category, w.unit_id, unit_name, mobile)


def search(
    *, session: Session, text: str, whole_mobile: bool = False, limit: int = MAX_RESULTS
) -> tuple[tuple[UnitRow, ...], tuple[WorkerRow, ...]]:
    """Units whose name, credit code or township holds `text`, and workers whose name or number does."""
    text = text.strip()
    if not text:
        return (), ()
    if len(text) > MAX_SEARCH:
        raise InputError(_("search for at most {n} characters", n=MAX_SEARCH))
    units = session.scalars(
        select(Unit)
        .where(
            or_(
                Unit.name.contains(text, autoescape=True),
                Unit.credit_code == text.upper(),
                Unit.township == text,
            )
        )
        .order_by(Unit.name)
        .limit(limit)
    ).all()
    workers = session.execute(
        select(Worker, Unit.name)
        .join(Unit, Worker.unit_id == Unit.id)
        .where(or_(Worker.name.contains(text, autoescape=True), Worker.worker_no == text))
        .order_by(Worker.id)
        .limit(limit)
    ).all()
    return (
        tuple(_unit_row(u) for u in units),
        tuple(_worker_row(w, name, whole_mobile=whole_mobile) for w, name in workers),
    )


def unit(*, session: Session, unit_id: int, whole_mobile: bool = False) -> UnitView:
    """One unit with its worker count and its first workers; NotFound if there is none."""
    found = session.get(Unit, unit_id)
    if found is None:
        raise NotFound(_("no work unit {id} in the registry", id=unit_id))
    total = session.scalar(select(func.count()).select_from(Worker).where(Worker.unit_id == unit_id)) or 0
    workers = session.scalars(
        select(Worker).where(Worker.unit_id == unit_id).order_by(Worker.id).limit(UNIT_WORKERS_SHOWN)
    ).all()
    return UnitView(
        row=_unit_row(found),
        industry=found.industry,
        worker_count=total,
        workers=tuple(_worker_row(w, found.name, whole_mobile=whole_mobile) for w in workers),
    )


def worker(*, session: Session, worker_id: int, whole_mobile: bool = False) -> WorkerView:
    """One worker; NotFound if there is none."""
    found = session.get(Worker, worker_id)
    if found is None:
        raise NotFound(_("no worker {id} in the registry", id=worker_id))
    return WorkerView(
        row=_worker_row(found, found.unit.name, whole_mobile=whole_mobile),
        birth_year=found.birth_year,
        home_address=found.home_address,
        home_postcode=found.home_postcode,
        hardship=found.hardship,
        migrant=found.migrant,
        consent_sms=found.consent_sms,
        mail_opt_out=found.mail_opt_out,
        updated_at=found.updated_at,
    )


def _import_row(r: RegistryImport) -> ImportRow:
    return ImportRow(
        r.id,
        r.filename,
        r.encoding,
        r.inserted,
        r.updated,
        r.unchanged,
        r.rejected,
        r.units_inserted,
        r.units_updated,
        r.started_at,
        r.finished_at,
    )


def recent_imports(*, session: Session, limit: int = 10) -> tuple[ImportRow, ...]:
    """The latest registry imports, newest first."""
    rows = session.scalars(select(RegistryImport).order_by(RegistryImport.id.desc()).limit(limit)).all()
    return tuple(_import_row(r) for r in rows)


def get_import(*, session: Session, import_id: int) -> ImportRow:
    """One registry import; NotFound if there is none."""
    found = session.get(RegistryImport, import_id)
    if found is None:
        raise NotFound(_("no registry import {id}", id=import_id))
    return _import_row(found)
