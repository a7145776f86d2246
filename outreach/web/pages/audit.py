"""The audit log page for admins: filter by account, action and date, page back in time, export as CSV."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from outreach.accounts import audit
from outreach.web.dependencies import DbSession, Principal, require
from outreach.web.pages.render import render

router = APIRouter(include_in_schema=False)
PAGE = 100


@router.get("/audit")
def audit_page(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("audit.read"))],
    account: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    since: date | None = None,
    until: date | None = None,
    before: int | None = None,
) -> Response:
    account, action = account or None, action or None
    filters: dict[str, object] = {"account": account, "action": action, "since": since, "until": until}
    rows = audit.query(
        session=session,
        username=account,
        action=action,
        since=since,
        until=until,
        before_id=before,
        limit=PAGE,
    )
    query = {k: str(v) for k, v in filters.items() if v}
    return render(
        request,
        "audit.html",
        principal=principal,
        rows=rows,
        filters=filters,
        next_url=f"/audit?{urlencode({**query, 'before': rows[-1].id})}" if len(rows) == PAGE else None,
        export_url=f"/api/v1/audit/export.csv?{urlencode(query)}",
    )
