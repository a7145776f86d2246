"""The print shop's pages: its batches, one batch with its files and checksums, progress and returns."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from outreach.errors import InputError
from outreach.i18n import _
from outreach.runs.models import BATCH_STATES
from outreach.web import printshops
from outreach.web.api.batches import download, download_zip, organisation_of, report_returns, report_state
from outreach.web.dependencies import DbSession, Principal, require
from outreach.web.pages.render import render

router = APIRouter(prefix="/portal", include_in_schema=False)

MAX_RETURNS_FILE = 5 * 1024 * 1024


def _date_field(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InputError(_("{value} is not a date like 2027-01-15", value=text.strip()[:20])) from exc


@router.get("")
def batches(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("batches.read"))],
    before: int | None = None,
) -> Response:
    org = organisation_of(session, principal)
    items = printshops.list_batches(session=session, organisation=org, before_id=before, limit=50)
    return render(
        request,
        "batches.html",
        principal=principal,
        batches=items,
        next_before=items[-1].id if len(items) == 50 else None,
    )


@router.get("/batches/{batch_id}")
def batch(
    batch_id: int,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("batches.read"))],
    done: str | None = None,
) -> Response:
    org = organisation_of(session, principal)
    item = printshops.get_batch(session=session, organisation=org, batch_id=batch_id)
    position = BATCH_STATES.index(item.state)
    flash = {
        "state": _("Recorded."),
        "returns": _("The returned letters are recorded."),
    }.get(done or "")
    return render(
        request,
        "batch.html",
        principal=principal,
        batch=item,
        next_states=BATCH_STATES[position + 1 :],
        flash=flash,
    )


@router.get("/batches/{batch_id}/files/{role}")
def batch_file(
    batch_id: int,
    role: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("batches.download"))],
) -> Response:
    return download(request=request, session=session, principal=principal, batch_id=batch_id, role=role)


@router.get("/batches/{batch_id}/zip")
def batch_zip(
    batch_id: int, session: DbSession, principal: Annotated[Principal, Depends(require("batches.download"))]
) -> Response:
    return download_zip(session=session, principal=principal, batch_id=batch_id)


@router.post("/batches/{batch_id}/state")
def batch_state(
    batch_id: int,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("batches.report"))],
    state: Annotated[str, Form(max_length=20)],
    mailed_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    day = _date_field(mailed_on) if state == "mailed" else None
    report_state(session=session, principal=principal, batch_id=batch_id, state=state, mailed_on=day)
    return RedirectResponse(f"/portal/batches/{batch_id}?done=state", status_code=303)


@router.post("/batches/{batch_id}/returns")
def batch_returns(
    batch_id: int,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("batches.returns"))],
    numbers: Annotated[str, Form(max_length=2_000_000)] = "",
    reason: Annotated[str, Form(max_length=200)] = "undeliverable",
    file: UploadFile | None = None,
) -> Response:
    text = numbers
    if file is not None and file.filename:
        raw = file.file.read(MAX_RETURNS_FILE + 1)
        if len(raw) > MAX_RETURNS_FILE:
            raise InputError(_("a returns file may be at most {mb} MB", mb=MAX_RETURNS_FILE // (1024 * 1024)))
        try:
            text += "\n" + raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text += "\n" + raw.decode("gb18030", errors="replace")
    parsed = printshops.parse_numbers(text)
    report_returns(
        session=session,
        principal=principal,
        batch_id=batch_id,
        numbers=parsed,
        reason=reason or "undeliverable",
    )
    return RedirectResponse(f"/portal/batches/{batch_id}?done=returns", status_code=303)
