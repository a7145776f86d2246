"""The print shops' webhooks, for admins: set a shop's URL (the signing secret is shown once), turn it off,
list them, and read the log of delivery attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from outreach.accounts import audit, webhooks
from outreach.web.dependencies import DbSession, Principal, require

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Manager = Annotated[Principal, Depends(require("webhooks.manage"))]


class WebhookIn(BaseModel):
    """设置印刷厂的 Webhook 地址。"""

    url: str = Field(description="接收事件的地址（http:// 或 https://）", max_length=webhooks.MAX_URL)
    rotate_secret: bool = Field(default=False, description="同时生成新的签名密钥（旧密钥立即失效）")


class WebhookOut(BaseModel):
    """一个印刷厂的 Webhook（不含签名密钥）。"""

    shop: str = Field(description="印刷厂")
    shop_id: int = Field(description="印刷厂的单位编号")
    url: str = Field(description="接收事件的地址")
    active: bool = Field(description="是否启用")
    updated_at: datetime = Field(description="最后修改时间（UTC）")


class WebhookSet(WebhookOut):
    """设置后的 Webhook；secret 只在生成时返回这一次。"""

    secret: str | None = Field(
        description="签名密钥（HMAC-SHA256），只显示这一次；未重新生成时为空",
    )


class DeliveryOut(BaseModel):
    """一次投递尝试。"""

    id: int = Field(description="编号（递增）")
    at: datetime = Field(description="时间（UTC）")
    shop: str = Field(description="印刷厂")
    event_id: int = Field(description="事件编号")
    event: str = Field(description="事件：batch.ready、run.finished 或 batch.mailed")
    event_state: str = Field(description="事件的投递状态：pending（待重试）、delivered、failed")
    attempt: int = Field(description="第几次尝试")
    url: str = Field(description="投递地址")
    status_code: int | None = Field(description="对方的 HTTP 状态码；连接失败时为空")
    error: str | None = Field(description="失败原因；成功时为空")
    duration_ms: int = Field(description="耗时（毫秒）")


class DeliveryPage(BaseModel):
    """一页投递记录，最新的在前。"""

    items: list[DeliveryOut]
    next_before: int | None = Field(description="下一页：作为 before 参数传回；没有更多时为空")


def _out(endpoint: webhooks.WebhookEndpoint, shop: str) -> WebhookOut:
    return WebhookOut(
        shop=shop,
        shop_id=endpoint.organisation_id,
        url=endpoint.url,
        active=endpoint.active,
        updated_at=endpoint.updated_at,
    )


@router.get("", response_model=list[WebhookOut], summary="印刷厂的 Webhook", description="仅管理员。")
def list_webhooks(session: DbSession, principal: Manager) -> list[WebhookOut]:
    return [_out(e, o.name) for e, o in webhooks.endpoints(session=session)]


@router.put(
    "/{shop}",
    response_model=WebhookSet,
    summary="设置印刷厂的 Webhook",
    description=(
        "事件 batch.ready、run.finished、batch.mailed 以 JSON POST 到该地址，请求头 Outreach-Timestamp 为"
        "Unix 秒，Outreach-Signature 为 sha256=HMAC-SHA256(密钥, 时间戳 + '.' + 请求体) 的十六进制。"
        "密钥首次设置或要求重新生成时返回，只显示这一次。仅管理员。"
    ),
)
def set_webhook(shop: str, body: WebhookIn, session: DbSession, principal: Manager) -> WebhookSet:
    endpoint, secret = webhooks.configure(
        session=session, print_shop=shop, url=body.url, rotate=body.rotate_secret
    )
    audit.record(
        session=session,
        actor=principal.actor,
        action="webhook.set",
        object_type="organisation",
        object_id=endpoint.organisation_id,
        after={"url": endpoint.url, "active": True},
        detail="new secret" if secret else None,
    )
    return WebhookSet(**_out(endpoint, shop.strip()).model_dump(), secret=secret)


@router.delete("/{shop}", response_model=WebhookOut, summary="停用印刷厂的 Webhook", description="仅管理员。")
def disable_webhook(shop: str, session: DbSession, principal: Manager) -> WebhookOut:
    endpoint = webhooks.disable(session=session, print_shop=shop)
    audit.record(
        session=session,
        actor=principal.actor,
        action="webhook.disable",
        object_type="organisation",
        object_id=endpoint.organisation_id,
        after={"url": endpoint.url, "active": False},
    )
    return _out(endpoint, shop.strip())


@router.get(
    "/deliveries",
    response_model=DeliveryPage,
    summary="Webhook 投递记录",
    description="每次投递尝试：状态码、错误、耗时、第几次。可按印刷厂或事件筛选，按编号分页。仅管理员。",
)
def list_deliveries(
    session: DbSession,
    principal: Manager,
    shop: Annotated[str | None, Query(description="只看这个印刷厂")] = None,
    event: Annotated[int | None, Query(description="只看这个事件编号")] = None,
    before: Annotated[int | None, Query(description="只列编号小于它的")] = None,
    limit: Annotated[int, Query(ge=1, le=webhooks.MAX_PAGE, description="每页条数")] = 100,
) -> DeliveryPage:
    rows = webhooks.deliveries(
        session=session, print_shop=shop, event_id=event, before_id=before, limit=limit
    )
    return DeliveryPage(
        items=[
            DeliveryOut(
                id=r.delivery.id,
                at=r.delivery.at,
                shop=r.print_shop,
                event_id=r.event.id,
                event=r.event.event,
                event_state=r.event.state,
                attempt=r.delivery.attempt,
                url=r.delivery.url,
                status_code=r.delivery.status_code,
                error=r.delivery.error,
                duration_ms=r.delivery.duration_ms,
            )
            for r in rows
        ],
        next_before=rows[-1].delivery.id if len(rows) == limit else None,
    )
