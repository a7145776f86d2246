"""The audit log for admins (filtered, keyset paging, CSV export) and the print shops' processing log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from outreach.accounts import audit
from outreach.accounts.auth_models import AuditEntry
from outreach.web import processing
from outreach.web.dependencies import DbSession, Principal, require

router = APIRouter(prefix="/audit", tags=["audit"])
processing_router = APIRouter(prefix="/processing-log", tags=["audit"])


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


class DownloadOut(BaseModel):
    """批次文件的一次下载。"""

    at: datetime = Field(description="时间（UTC）")
    username: str | None = Field(description="账号")
    address: str | None = Field(description="来源地址")
    detail: str | None = Field(description="文件或范围")


class HandOverOut(BaseModel):
    """交给印刷厂（受托处理方）的一个批次。"""

    batch_id: int
    shop: str = Field(description="印刷厂")
    campaign: str
    period: str
    records: int = Field(description="记录数（件数）")
    fields: list[str] = Field(description="批次文件中的个人信息字段")
    digests: dict[str, str] = Field(description="各文件的 SHA-256")
    downloads: list[DownloadOut] = Field(description="何时、由谁下载")
    mailed_at: datetime | None
    purged_at: datetime | None = Field(description="文件按保留期删除的时间")


class HandOverPage(BaseModel):
    """一页委托处理记录。"""

    items: list[HandOverOut]
    next_before: int | None


@processing_router.get(
    "",
    response_model=HandOverPage,
    summary="委托处理记录",
    description="每个交给印刷厂的批次：个人信息字段、记录数、文件校验值、下载时间和账号、文件删除时间。仅管理员。",
)
def processing_log(
    session: DbSession,
    principal: Annotated[Principal, Depends(require("processing.read"))],
    shop: Annotated[int | None, Query(description="只看这个印刷厂（单位编号）")] = None,
    before: Annotated[int | None, Query(description="只列批次编号小于它的")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="每页条数")] = 100,
) -> HandOverPage:
    rows = processing.hand_overs(session=session, shop_id=shop, before_id=before, limit=limit)
    return HandOverPage(
        items=[
            HandOverOut(
                batch_id=h.batch_id,
                shop=h.shop,
                campaign=h.campaign,
                period=h.period,
                records=h.records,
                fields=list(h.fields),
                digests=h.digests,
                downloads=[DownloadOut(**d.__dict__) for d in h.downloads],
                mailed_at=h.mailed_at,
                purged_at=h.purged_at,
            )
            for h in rows
        ],
        next_before=rows[-1].batch_id if len(rows) == limit else None,
    )
