"""The audit log for admins: filtered, paged by keyset, exportable as CSV."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from outreach.accounts import audit
from outreach.accounts.auth_models import AuditEntry
from outreach.web.dependencies import DbSession, Principal, require

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditOut(BaseModel):
    """审计日志的一行。"""

    id: int = Field(description="编号（递增）")
    at: datetime = Field(description="时间（UTC）")
    username: str | None = Field(description="账号")
    account_id: int | None = Field(description="账号编号")
    organisation_id: int | None = Field(description="单位编号")
    address: str | None = Field(description="来源地址")
    action: str = Field(description="动作，如 login、login.failed、batch.download、batch.printed")
    object_type: str | None = Field(description="对象类型")
    object_id: str | None = Field(description="对象编号")
    before_digest: str | None = Field(description="变更前状态的 SHA-256")
    after_digest: str | None = Field(description="变更后状态的 SHA-256")
    detail: str | None = Field(description="说明")


class AuditPage(BaseModel):
    """一页审计日志，最新的在前。"""

    items: list[AuditOut]
    next_before: int | None = Field(description="下一页：作为 before 参数传回；没有更多时为空")


def _out(entry: AuditEntry) -> AuditOut:
    return AuditOut.model_validate(entry, from_attributes=True)


Account = Annotated[str | None, Query(description="只看这个账号")]
Action = Annotated[str | None, Query(description="只看这个动作")]
Since = Annotated[date | None, Query(description="从这一天起（含，联合会所在时区）")]
Until = Annotated[date | None, Query(description="到这一天止（含）")]


@router.get(
    "",
    response_model=AuditPage,
    summary="审计日志",
    description="仅管理员可看；可按账号、动作、日期筛选，按编号分页。",
)
def list_audit(
    session: DbSession,
    principal: Annotated[Principal, Depends(require("audit.read"))],
    account: Account = None,
    action: Action = None,
    since: Since = None,
    until: Until = None,
    before: Annotated[int | None, Query(description="只列编号小于它的行")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE, description="每页条数")] = 100,
) -> AuditPage:
    rows = audit.query(
        session=session,
        username=account,
        action=action,
        since=since,
        until=until,
        before_id=before,
        limit=limit,
    )
    return AuditPage(items=[_out(r) for r in rows], next_before=rows[-1].id if len(rows) == limit else None)


@router.get(
    "/export.csv",
    summary="导出审计日志（CSV）",
    response_class=StreamingResponse,
    description="与列表相同的筛选，全部行，流式输出。",
)
def export_audit(
    session: DbSession,
    principal: Annotated[Principal, Depends(require("audit.read"))],
    account: Account = None,
    action: Action = None,
    since: Since = None,
    until: Until = None,
) -> StreamingResponse:
    # Read now, inside the request's session: the stream runs after the session is closed.
    entries = list(audit.iter_all(session=session, username=account, action=action, since=since, until=until))
    audit.record(session=session, actor=principal.actor, action="audit.export", detail=f"{len(entries)} rows")
    return StreamingResponse(
        (line.encode("utf-8") for line in _with_bom(audit.csv_lines(entries))),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


def _with_bom(lines: Iterator[str]) -> Iterator[str]:
    # Excel opens UTF-8 CSV as Chinese text only with a byte-order mark.
    yield "\ufeff"
    yield from lines
