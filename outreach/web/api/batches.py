"""The print shop's API: its batches, their files (streamed, with checksums and Range), its reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from outreach.accounts import audit
from outreach.accounts.models import Organisation
from outreach.errors import NotFound
from outreach.i18n import _
from outreach.storage import get_storage
from outreach.web import printshops
from outreach.web.dependencies import DbSession, Principal, require

router = APIRouter(prefix="/batches", tags=["batches"])

FILE_MEDIA_TYPES = {".pdf": "application/pdf", ".csv": "text/csv; charset=utf-8", ".zip": "application/zip"}


class BatchFile(BaseModel):
    """一个批次文件。"""

    role: str = Field(
        description="文件名：envelopes.pdf 信封、letters.pdf 信函、manifest.csv 清单、ticket.pdf 工单等"
    )
    bytes: int | None = Field(description="字节数")
    sha256: str | None = Field(description="SHA-256 校验值（十六进制）")
    url: str = Field(description="下载地址（支持 Range 断点续传）")


class BatchOut(BaseModel):
    """印刷厂看到的一个批次。"""

    id: int = Field(description="批次编号")
    run_id: int = Field(description="所属运行")
    seq: int = Field(description="运行内的批次序号")
    campaign: str = Field(description="活动名称")
    period: str = Field(description="期次，如 2027-Q1")
    channel: str = Field(description="渠道：letter 信函 / sms 短信")
    pieces: int = Field(description="件数")
    pages: int = Field(description="页数（印张）")
    state: str = Field(description="状态：ready 待下载 / downloaded 已下载 / printed 已印制 / mailed 已交寄")
    first_number: str = Field(description="第一件的件号")
    last_number: str = Field(description="最后一件的件号")
    downloaded_at: datetime | None = Field(description="下载时间")
    printed_at: datetime | None = Field(description="印制完成时间")
    mailed_at: datetime | None = Field(description="交寄时间")
    purged_at: datetime | None = Field(description="文件按保留期删除的时间")
    files: list[BatchFile] = Field(description="文件及其校验值")


class BatchPage(BaseModel):
    """一页批次（按编号倒序）。"""

    items: list[BatchOut] = Field(description="批次，最新的在前")
    next_before: int | None = Field(description="下一页：把它作为 before 参数传回；没有更多时为空")


class StateIn(BaseModel):
    """印刷厂报告的批次进度。"""

    state: str = Field(description="downloaded 已下载、printed 已印制或 mailed 已交寄；只能向前")
    mailed_on: date | None = Field(default=None, description="交寄日期（仅 mailed；默认今天）")


class ReturnsIn(BaseModel):
    """退回的信件。"""

    numbers: list[str] = Field(description="退回信件的件号，如 R000012-0000345", max_length=100_000)
    reason: str = Field(default="undeliverable", description="退回原因", max_length=200)


class ReturnsOut(BaseModel):
    """记录了多少件退信。"""

    recorded: int = Field(description="已记录的退信件数")


def organisation_of(session: Session, principal: Principal) -> Organisation:
    """The caller's organisation row."""
    org = session.get(Organisation, principal.organisation_id)
    if org is None:  # pragma: no cover - the principal was built from it in this request
        raise NotFound(_("no organisation {id}", id=principal.organisation_id))
    return org


def batch_out(batch: printshops.ShopBatch, *, url_prefix: str) -> BatchOut:
    """The API's shape of a batch."""
    files = [
        BatchFile(
            role=role,
            bytes=meta.get("bytes") if isinstance(meta.get("bytes"), int) else None,
            sha256=str(meta["sha256"]) if meta.get("sha256") else None,
            url=f"{url_prefix}/{batch.id}/files/{role}",
        )
        for role, meta in batch.downloadable
    ]
    return BatchOut(
        id=batch.id,
        run_id=batch.run_id,
        seq=batch.seq,
        campaign=batch.campaign,
        period=batch.period,
        channel=batch.channel,
        pieces=batch.pieces,
        pages=batch.pages,
        state=batch.state,
        first_number=batch.first_number,
        last_number=batch.last_number,
        downloaded_at=batch.downloaded_at,
        printed_at=batch.printed_at,
        mailed_at=batch.mailed_at,
        purged_at=batch.purged_at,
        files=files,
    )


@router.get(
    "",
    response_model=BatchPage,
    summary="本印刷厂的批次",
    description="只列出分配给调用者所在印刷厂的批次，最新的在前；按编号分页。",
)
def list_batches(
    session: DbSession,
    principal: Annotated[Principal, Depends(require("batches.read"))],
    before: Annotated[int | None, Query(description="只列编号小于它的批次（上一页的 next_before）")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="每页条数")] = 50,
) -> BatchPage:
    org = organisation_of(session, principal)
    items = printshops.list_batches(session=session, organisation=org, before_id=before, limit=limit)
    return BatchPage(
        items=[batch_out(b, url_prefix="/api/v1/batches") for b in items],
        next_before=items[-1].id if len(items) == limit else None,
    )


@router.get(
    "/{batch_id}",
    response_model=BatchOut,
    summary="一个批次",
    description="别家印刷厂的批次或不存在的编号一律 404。",
)
def get_batch(
    batch_id: int, session: DbSession, principal: Annotated[Principal, Depends(require("batches.read"))]
) -> BatchOut:
    org = organisation_of(session, principal)
    return batch_out(
        printshops.get_batch(session=session, organisation=org, batch_id=batch_id),
        url_prefix="/api/v1/batches",
    )


def download(
    *, request: Request, session: Session, principal: Principal, batch_id: int, role: str
) -> Response:
    """A batch file as a streamed answer: SHA-256 in headers, Range for resuming, one audit line."""
    org = organisation_of(session, principal)
    batch = printshops.get_batch(session=session, organisation=org, batch_id=batch_id)
    meta = printshops.file_of(batch, role)
    key = str(meta["key"])
    storage = get_storage()
    if not storage.exists(key):
        raise NotFound(_("the file {role} of batch {id} is not in storage", role=role, id=batch_id))
    size = meta.get("bytes")
    if not isinstance(size, int):
        with storage.open(key) as fh:
            size = sum(len(b) for b in iter(lambda: fh.read(1 << 20), b""))
    sha = str(meta.get("sha256") or "")
    etag = f'"{sha}"' if sha else None
    if_range = request.headers.get("if-range")
    wanted = request.headers.get("range") if (if_range is None or if_range == etag) else None
    try:
        byte_range = printshops.parse_range(wanted, size)
    except printshops.RangeNotSatisfiable:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    suffix = key[key.rfind(".") :] if "." in key else ""
    filename = f"R{batch.run_id:06d}-batch{batch.seq:03d}-{role if '.' in role else role + suffix}"
    headers: dict[str, Any] = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-SHA256": sha,
        "Cache-Control": "no-store",
    }
    if etag:
        headers["ETag"] = etag
    if byte_range is None:
        headers["Content-Length"] = str(size)
        status = 200
    else:
        headers["Content-Length"] = str(byte_range.length)
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
        status = 206
    audit.record(
        session=session,
        actor=principal.actor,
        action="batch.download",
        object_type="batch",
        object_id=batch.id,
        detail=f"{role} bytes {byte_range.start}-{byte_range.end}" if byte_range else role,
    )
    session.commit()
    return StreamingResponse(
        printshops.stream(storage, key, byte_range),
        status_code=status,
        headers=headers,
        media_type=FILE_MEDIA_TYPES.get(suffix.lower(), "application/octet-stream"),
    )


@router.get(
    "/{batch_id}/files/{role}",
    summary="下载批次文件",
    description="从存储流式传出；响应头 X-Content-SHA256 和 ETag 带文件的 SHA-256；支持 Range 断点续传。",
    response_class=Response,
)
def download_file(
    batch_id: int,
    role: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("batches.download"))],
) -> Response:
    return download(request=request, session=session, principal=principal, batch_id=batch_id, role=role)


def download_zip(*, session: Session, principal: Principal, batch_id: int) -> Response:
    """Every file of a batch as one ZIP, streamed as it is packed; one audit line."""
    org = organisation_of(session, principal)
    batch = printshops.get_batch(session=session, organisation=org, batch_id=batch_id)
    members = printshops.zip_members(batch)
    storage = get_storage()
    missing = [name for name, key in members if not storage.exists(key)]
    if missing:
        raise NotFound(_("the file {role} of batch {id} is not in storage", role=missing[0], id=batch_id))
    audit.record(
        session=session,
        actor=principal.actor,
        action="batch.download",
        object_type="batch",
        object_id=batch.id,
        detail="zip: " + ", ".join(name for name, _key in members),
    )
    filename = f"R{batch.run_id:06d}-batch{batch.seq:03d}.zip"
    return StreamingResponse(
        printshops.stream_zip(storage, members),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.get(
    "/{batch_id}/zip",
    summary="整批下载（ZIP）",
    description="批次的全部文件打成一个 ZIP，边打包边传；各文件的 SHA-256 见批次详情。",
    response_class=Response,
)
def download_batch_zip(
    batch_id: int, session: DbSession, principal: Annotated[Principal, Depends(require("batches.download"))]
) -> Response:
    return download_zip(session=session, principal=principal, batch_id=batch_id)


def report_state(
    *, session: Session, principal: Principal, batch_id: int, state: str, mailed_on: date | None = None
) -> printshops.ShopBatch:
    """Records a shop's progress and writes it to the audit log."""
    org = organisation_of(session, principal)
    before = printshops.get_batch(session=session, organisation=org, batch_id=batch_id)
    after = printshops.report(
        session=session, organisation=org, batch_id=batch_id, state=state, mailed_on=mailed_on
    )
    audit.record(
        session=session,
        actor=principal.actor,
        action=f"batch.{state}",
        object_type="batch",
        object_id=batch_id,
        before={"state": before.state},
        after={"state": after.state, "mailed_at": after.mailed_at},
    )
    return after


@router.post(
    "/{batch_id}/state",
    response_model=BatchOut,
    summary="报告批次进度",
    description="已下载、已印制、已交寄；只能向前，不能回退（409）。",
)
def post_state(
    batch_id: int,
    body: StateIn,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("batches.report"))],
) -> BatchOut:
    batch = report_state(
        session=session, principal=principal, batch_id=batch_id, state=body.state, mailed_on=body.mailed_on
    )
    return batch_out(batch, url_prefix="/api/v1/batches")


def report_returns(
    *, session: Session, principal: Principal, batch_id: int, numbers: list[str], reason: str
) -> int:
    """Records a shop's returned letters and writes them to the audit log."""
    org = organisation_of(session, principal)
    count = printshops.record_returns(
        session=session, organisation=org, batch_id=batch_id, numbers=numbers, reason=reason
    )
    audit.record(
        session=session,
        actor=principal.actor,
        action="batch.returns",
        object_type="batch",
        object_id=batch_id,
        after={"numbers": sorted(numbers), "reason": reason},
        detail=_("{count} returned", count=count),
    )
    return count


@router.post(
    "/{batch_id}/returns",
    response_model=ReturnsOut,
    summary="上报退信",
    description="退信件号必须属于该批次；随后按联合会的规则停止寄信并退费。",
)
def post_returns(
    batch_id: int,
    body: ReturnsIn,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("batches.returns"))],
) -> ReturnsOut:
    numbers = list(dict.fromkeys(n.strip().upper() for n in body.numbers if n.strip()))
    count = report_returns(
        session=session, principal=principal, batch_id=batch_id, numbers=numbers, reason=body.reason
    )
    return ReturnsOut(recorded=count)
