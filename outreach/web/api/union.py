"""The union side of the API: audiences (count, preview, save), campaigns, runs (start, status, cancel)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from audiences import service as audiences
from outreach.accounts import audit
from outreach.campaigns import service as campaigns
from outreach.runs import executor
from outreach.runs import service as runs
from outreach.web import idempotency
from outreach.web.dependencies import DbSession, Principal, require

router = APIRouter(tags=["union"])

EXPRESSION = Field(
    description="受众表达式（受众查询语言），如 gender = 'F' and unit.kind in ('企业', '学校')",
    max_length=4000,
)
CHANNEL = Field(default=None, description="只算该渠道能到达的人：letter 信函（有地址）、sms 短信（同意接收）")


class CountIn(BaseModel):
    """受众计数请求。"""

    expression: str = EXPRESSION
    channel: Literal["letter", "sms"] | None = CHANNEL
    by: str | None = Field(default=None, description="按这个字段分组，如 unit.township", max_length=40)


class GroupOut(BaseModel):
    """分组的一行。"""

    value: str | int | bool | None = Field(description="字段的值（缺失为空）")
    count: int = Field(description="人数")


class CountOut(BaseModel):
    """受众人数及分组。"""

    total: int = Field(description="总人数")
    by: str | None = Field(description="分组字段")
    groups: list[GroupOut] = Field(description="各组人数，之和等于总人数")


class PreviewIn(BaseModel):
    """受众预览请求。"""

    expression: str = EXPRESSION
    channel: Literal["letter", "sms"] | None = CHANNEL
    sample: int = Field(default=10, ge=0, le=100, description="示例人数")


class SampleOut(BaseModel):
    """预览中的一个人（手机号已遮盖）。"""

    worker_id: int
    name: str
    gender: str
    unit_name: str
    township: str | None
    address: str | None
    postcode: str | None
    mobile: str = Field(description="遮盖后的手机号")


class PreviewOut(BaseModel):
    """受众预览：人数、按镇/单位类别/职工类别分组、示例。"""

    total: int
    breakdowns: dict[str, list[GroupOut]]
    sample: list[SampleOut]


class AudienceIn(BaseModel):
    """保存一个受众。"""

    name: str = Field(description="受众名称", max_length=100)
    expression: str = EXPRESSION


class AudienceOut(BaseModel):
    """保存的受众。"""

    id: int
    name: str
    expression: str


class CampaignOut(BaseModel):
    """一个活动。"""

    id: int
    name: str
    channel: str = Field(description="letter 信函 / sms 短信")
    state: str = Field(description="draft 草稿 / approved 已批准 / active / finished / cancelled")
    schedule: str = Field(description="quarterly 每季度 / manual 手动")
    approved_period: str | None = Field(description="已批准的期次")
    created_at: datetime


class RunStatusOut(BaseModel):
    """一次运行的进度。"""

    id: int
    campaign: str
    period: str
    state: str
    total: int = Field(description="件数")
    rendered: int = Field(description="已生成")
    failed: int = Field(description="失败")
    pending: int = Field(description="待生成")
    batches_total: int
    batches_done: int
    errors: list[str] = Field(description="前几条错误")
    note: str | None


@router.post(
    "/audiences/count",
    response_model=CountOut,
    summary="受众计数",
    description="表达式有误时返回 422，带出错位置（position）。",
)
def count_audience(
    body: CountIn, session: DbSession, principal: Annotated[Principal, Depends(require("audiences.read"))]
) -> CountOut:
    result = audiences.count(session=session, expression=body.expression, channel=body.channel, by=body.by)
    return CountOut(
        total=result.total, by=result.by, groups=[GroupOut(value=r.value, count=r.count) for r in result.rows]
    )


@router.post("/audiences/preview", response_model=PreviewOut, summary="受众预览")
def preview_audience(
    body: PreviewIn, session: DbSession, principal: Annotated[Principal, Depends(require("audiences.read"))]
) -> PreviewOut:
    result = audiences.preview(
        session=session, expression=body.expression, channel=body.channel, sample=body.sample
    )
    return PreviewOut(
        total=result.total,
        breakdowns={
            k: [GroupOut(value=r.value, count=r.count) for r in v] for k, v in result.breakdowns.items()
        },
        sample=[SampleOut(**s.__dict__) for s in result.sample],
    )


@router.post(
    "/audiences",
    response_model=AudienceOut,
    status_code=201,
    summary="保存受众",
    description=(
        "可带 Idempotency-Key 请求头：24 小时内同一键同一请求返回第一次的结果，同一键不同请求返回 409。"
    ),
)
def save_audience(
    body: AudienceIn,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("audiences.save"))],
) -> JSONResponse:
    def create() -> tuple[int, AudienceOut]:
        saved = audiences.save(session=session, name=body.name, expression=body.expression)
        audit.record(
            session=session,
            actor=principal.actor,
            action="audience.save",
            object_type="audience",
            object_id=saved.id,
            after={"name": saved.name, "expression": saved.expression},
        )
        return 201, AudienceOut(id=saved.id, name=saved.name, expression=saved.expression)

    return idempotency.answer(
        request=request, session=session, principal=principal, body=body.model_dump(), compute=create
    )


@router.get("/campaigns", response_model=list[CampaignOut], summary="活动列表")
def list_campaigns(
    session: DbSession, principal: Annotated[Principal, Depends(require("campaigns.read"))]
) -> list[CampaignOut]:
    return [CampaignOut.model_validate(c, from_attributes=True) for c in campaigns.list_all(session=session)]


def _run_status(session: Session, run_id: int) -> RunStatusOut:
    s = runs.status(session=session, run_id=run_id)
    return RunStatusOut(
        id=s.run.id,
        campaign=s.campaign,
        period=s.run.period,
        state=s.run.state,
        total=s.total,
        rendered=s.rendered,
        failed=s.failed,
        pending=s.pending,
        batches_total=s.batches_total,
        batches_done=s.batches_done,
        errors=list(s.errors),
        note=s.run.note,
    )


@router.get("/runs/{run_id}", response_model=RunStatusOut, summary="运行进度")
def run_status(
    run_id: int, session: DbSession, principal: Annotated[Principal, Depends(require("runs.read"))]
) -> RunStatusOut:
    return _run_status(session, run_id)


class RunIn(BaseModel):
    """开始一次运行。"""

    campaign: str = Field(description="活动名称", max_length=100)
    period: str = Field(description="期次，如 2027-Q1", max_length=10)


@router.post(
    "/runs",
    response_model=RunStatusOut,
    status_code=202,
    summary="开始运行",
    description=(
        "冻结收件人、预留预算，然后在后台生成（有 Celery 时交给 worker）。期次未批准为 409。"
        "可带 Idempotency-Key；同一活动同一期次只有一次运行。"
    ),
)
def start_run(
    body: RunIn,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("runs.start"))],
) -> JSONResponse:
    def begin() -> tuple[int, RunStatusOut]:
        campaign = campaigns.get_by_name(session=session, name=body.campaign)
        run, started = runs.start_by_hand(session=session, campaign=campaign, period=body.period)
        audit.record(
            session=session,
            actor=principal.actor,
            action="run.start" if started else "run.start.existing",
            object_type="run",
            object_id=run.id,
            after={"state": run.state, "pieces": run.piece_count, "period": run.period},
        )
        return 202, _run_status(session, run.id)

    response = idempotency.answer(
        request=request, session=session, principal=principal, body=body.model_dump(), compute=begin
    )
    run_id = int(json.loads(bytes(response.body))["id"])
    # The executor opens its own sessions: what this request stored must be committed first.
    session.commit()
    executor.execute(run_id, wait=False)
    return response


@router.post("/runs/{run_id}/resume", response_model=RunStatusOut, status_code=202, summary="继续运行")
def resume_run(
    run_id: int, session: DbSession, principal: Annotated[Principal, Depends(require("runs.start"))]
) -> RunStatusOut:
    runs.get(session=session, run_id=run_id)
    audit.record(
        session=session, actor=principal.actor, action="run.resume", object_type="run", object_id=run_id
    )
    session.commit()
    executor.resume(run_id, wait=False)
    return _run_status(session, run_id)


@router.post("/runs/{run_id}/cancel", response_model=RunStatusOut, summary="取消运行")
def cancel_run(
    run_id: int, session: DbSession, principal: Annotated[Principal, Depends(require("runs.cancel"))]
) -> RunStatusOut:
    before = runs.get(session=session, run_id=run_id).state
    run = runs.cancel(session=session, run_id=run_id)
    audit.record(
        session=session,
        actor=principal.actor,
        action="run.cancel",
        object_type="run",
        object_id=run_id,
        before={"state": before},
        after={"state": run.state},
    )
    return _run_status(session, run_id)
