"""名址库 (the registry): upload a CSV/XLSX file (through the same importer as `outreach registry import`,
in the background, with a progress bar), the result with its rejects, search and view units and workers,
and the blank template to download.

An upload is streamed to a temporary file (at most settings.upload_limit_mb), then imported by a thread of
this process in its own session. The thread writes the job's progress to a small JSON file in the data
folder, so the progress page works from any web process on the machine; it polls that file (htmx every
second, or a meta refresh without JavaScript) and goes on to the import's result when it is done.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from audiences import browse
from audiences.importer import import_registry
from audiences.template import write_template
from outreach import db
from outreach.accounts import audit, permissions
from outreach.errors import InputError, NotFound, OutreachError
from outreach.i18n import _, current_language, use_language
from outreach.settings import get_settings
from outreach.web.api.registry import _receive, _rejects_path, _safe_name
from outreach.web.dependencies import DbSession, Principal, require
from outreach.web.pages.render import render

router = APIRouter(prefix="/registry", include_in_schema=False)
log = logging.getLogger(__name__)

# Rejected rows shown on the result page; the CSV download has all of them.
REJECTS_SHOWN = 200
JOB_TOKEN_BYTES = 16


@dataclass
class ImportJob:
    """An upload being imported: what the progress page shows."""

    token: str
    filename: str
    size: int
    state: str = "running"  # running | done | failed
    rows: int = 0
    # Data rows the file holds, counted before the import for a CSV; None for a workbook (unknown).
    expected_rows: int | None = None
    import_id: int | None = None
    error: str | None = None
    unknown_columns: list[str] = field(default_factory=list)
    skipped_sheets: list[str] = field(default_factory=list)

    @property
    def percent(self) -> int | None:
        """How far the import is, in percent, when the file's size in rows is known."""
        if self.state == "done":
            return 100
        if not self.expected_rows:
            return None
        return min(99, 100 * self.rows // self.expected_rows)


def _jobs_dir() -> Path:
    return get_settings().data_dir / "registry-jobs"


def _job_path(token: str) -> Path:
    if not token.replace("-", "").replace("_", "").isalnum() or len(token) > 64:
        raise NotFound(_("no registry upload {token}", token=token[:64]))
    return _jobs_dir() / f"{token}.json"


def _write_job(job: ImportJob) -> None:
    path = _job_path(job.token)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(job), ensure_ascii=False), encoding="utf-8")
    os.replace(partial, path)  # readers see the old state or the new one, never half of one


def _read_job(token: str) -> ImportJob:
    path = _job_path(token)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(_("no registry upload {token}", token=token)) from None
    return ImportJob(**data)


def _count_lines(path: Path) -> int | None:
    """Data rows of a CSV (lines after the header; quoted line breaks are rare in a registry)."""
    if path.suffix.lower() == ".xlsx":
        return None
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return max(lines - 1, 0) if lines else None


def _run_import(job: ImportJob, path: Path, folder: Path, principal: Principal, language: str) -> None:
    """The background part: import in a session of its own, commit, move the rejects file, record it."""
    with use_language(language):
        session = db.session_factory()()
        try:
            rejects = folder / "rejects.csv"

            def progress(rows: int) -> None:
                job.rows = rows
                _write_job(job)

            summary = import_registry(session=session, path=path, rejects=rejects, progress=progress)
            assert summary.import_id is not None
            if summary.rejected and rejects.is_file():
                target = _rejects_path(summary.import_id)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(rejects, target)
            audit.record(
                session=session,
                actor=principal.actor,
                action="registry.import",
                object_type="registry_import",
                object_id=summary.import_id,
                after={
                    "inserted": summary.inserted,
                    "updated": summary.updated,
                    "rejected": summary.rejected,
                },
                detail=summary.filename,
            )
            session.commit()
            job.rows = summary.rows
            job.import_id = summary.import_id
            job.unknown_columns = summary.unknown_columns
            job.skipped_sheets = summary.skipped_sheets
            job.state = "done"
        except OutreachError as exc:
            session.rollback()
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # the page must say it failed rather than spin forever
            session.rollback()
            log.exception("registry import %s failed", job.token)
            job.state = "failed"
            job.error = _(
                "the import failed unexpectedly ({kind}); nothing was imported", kind=type(exc).__name__
            )
        finally:
            session.close()
            _write_job(job)
            shutil.rmtree(folder, ignore_errors=True)


def _whole_mobile(principal: Principal) -> bool:
    return permissions.allowed(principal.role, "personal.unmasked")


def _registry_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    q: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    units, workers = browse.search(session=session, text=q, whole_mobile=_whole_mobile(principal))
    return render(
        request,
        "registry.html",
        status=status,
        principal=principal,
        section="registry",
        q=q,
        units=units,
        workers=workers,
        imports=browse.recent_imports(session=session),
        can_import=permissions.allowed(principal.role, "registry.import"),
        limit_mb=get_settings().upload_limit_mb,
        error=error,
    )


@router.get("")
def registry_page(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("registry.read"))],
    q: Annotated[str, Query(max_length=browse.MAX_SEARCH)] = "",
) -> Response:
    return _registry_page(request, session, principal, q=q)


@router.post("/imports")
def upload(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("registry.import"))],
    file: UploadFile,
) -> Response:
    """Receives the file, starts its import in the background, and shows the progress page."""
    folder = Path(tempfile.mkdtemp(prefix="outreach-upload-"))
    try:
        name = _safe_name(file.filename)
        path = folder / name
        _receive(file, path)
    except InputError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return _registry_page(request, session, principal, error=str(exc), status=422)
    job = ImportJob(
        token=secrets.token_urlsafe(JOB_TOKEN_BYTES),
        filename=name,
        size=path.stat().st_size,
        expected_rows=_count_lines(path),
    )
    _write_job(job)
    worker = threading.Thread(
        target=_run_import,
        args=(job, path, folder, principal, current_language()),
        name=f"registry-import-{job.token[:8]}",
        daemon=True,
    )
    worker.start()
    return RedirectResponse(f"/registry/uploads/{job.token}", status_code=303)


@router.get("/uploads/{token}")
def upload_progress(
    token: str,
    request: Request,
    principal: Annotated[Principal, Depends(require("registry.read"))],
) -> Response:
    """The progress page (or, with htmx, its progress fragment); the result once the import is done."""
    job = _read_job(token)
    fragment = request.headers.get("hx-request") == "true"
    if job.state == "done" and job.import_id is not None:
        target = f"/registry/imports/{job.import_id}?upload={token}"
        if fragment:
            return Response(status_code=200, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    template = "registry_progress_part.html" if fragment else "registry_progress.html"
    return render(request, template, principal=principal, section="registry", job=job)


def _rejects(import_id: int) -> tuple[list[dict[str, str]], bool]:
    """The first rejected rows of an import from its rejects file: line, column(s), reason(s), sheet."""
    path = _rejects_path(import_id)
    if not path.is_file():
        return [], False
    shown: list[dict[str, str]] = []
    more = False
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.reader(handle):
            # Header rows (written again for each sheet) have no line number.
            if len(row) >= 3 and row[0].isdigit():
                item = {"sheet": "", "line": row[0], "column": row[1], "reason": row[2]}
            elif len(row) >= 4 and row[1].isdigit():
                item = {"sheet": row[0], "line": row[1], "column": row[2], "reason": row[3]}
            else:
                continue
            if len(shown) >= REJECTS_SHOWN:
                more = True
                break
            shown.append(item)
    return shown, more


@router.get("/imports/{import_id}")
def import_result(
    import_id: int,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("registry.read"))],
    upload: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    found = browse.get_import(session=session, import_id=import_id)
    rejects, more = _rejects(import_id)
    job = None
    if upload:
        try:
            job = _read_job(upload)
        except NotFound:
            job = None
    return render(
        request,
        "registry_import.html",
        principal=principal,
        section="registry",
        item=found,
        rejects=rejects,
        more_rejects=more,
        has_rejects_file=_rejects_path(import_id).is_file(),
        job=job if job is not None and job.import_id == import_id else None,
    )


@router.get("/imports/{import_id}/rejects.csv")
def import_rejects(
    import_id: int, session: DbSession, principal: Annotated[Principal, Depends(require("registry.read"))]
) -> Response:
    browse.get_import(session=session, import_id=import_id)
    path = _rejects_path(import_id)
    if not path.is_file():
        raise NotFound(_("registry import {id} has no rejected rows", id=import_id))
    audit.record(
        session=session,
        actor=principal.actor,
        action="registry.rejects.download",
        object_type="registry_import",
        object_id=import_id,
    )
    return FileResponse(
        path, media_type="text/csv; charset=utf-8", filename=f"import-{import_id}-rejects.csv"
    )


@router.get("/template.xlsx")
def blank_template(principal: Annotated[Principal, Depends(require("registry.read"))]) -> Response:
    """The blank registry sheet (the same workbook as `outreach registry template`)."""
    folder = Path(tempfile.mkdtemp(prefix="outreach-template-"))
    path = folder / "registry-template.xlsx"
    write_template(path)
    data = path.read_bytes()
    shutil.rmtree(folder, ignore_errors=True)
    return Response(
        data,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": "attachment; filename*=UTF-8''%E5%90%8D%E5%9D%80%E6%A8%A1%E6%9D%BF.xlsx"
        },
    )


@router.get("/units/{unit_id}")
def unit_page(
    unit_id: int,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("registry.read"))],
) -> Response:
    found = browse.unit(session=session, unit_id=unit_id, whole_mobile=_whole_mobile(principal))
    return render(request, "registry_unit.html", principal=principal, section="registry", unit=found)


@router.get("/workers/{worker_id}")
def worker_page(
    worker_id: int,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("registry.read"))],
) -> Response:
    found = browse.worker(session=session, worker_id=worker_id, whole_mobile=_whole_mobile(principal))
    audit.record(
        session=session,
        actor=principal.actor,
        action="registry.worker.view",
        object_type="worker",
        object_id=worker_id,
    )
    return render(request, "registry_worker.html", principal=principal, section="registry", worker=found)
