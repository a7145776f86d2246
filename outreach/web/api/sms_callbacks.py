"""The SMS gateways' pushes: delivery receipts and replies from Aliyun (SmsReport, SmsUp) and Tencent Cloud
(status and reply callbacks).

Neither gateway signs its pushes, so the callback URL carries a shared secret (`?token=`, the setting
OUTREACH_SMS_CALLBACK_TOKEN), compared in constant time. A push is stored (once per receipt or reply) before
the gateway's acknowledgement goes back; anything but that answer makes the gateway push again, which the
deduplication absorbs.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from outreach.accounts.errors import Forbidden
from outreach.channels.gateways import pushes
from outreach.i18n import _
from outreach.runs import sms
from outreach.settings import get_settings
from outreach.web.dependencies import DbSession

router = APIRouter(prefix="/sms", tags=["sms"])

Token = Annotated[str, Query(description="回调密钥（OUTREACH_SMS_CALLBACK_TOKEN）", max_length=200)]


def _check(token: str) -> None:
    """Refuses a push without the configured secret (or when none is configured)."""
    secret = get_settings().sms_callback_token
    if secret is None or not secret.get_secret_value():
        raise Forbidden(_("SMS callbacks are off: set OUTREACH_SMS_CALLBACK_TOKEN"))
    if not hmac.compare_digest(token.encode("utf-8"), secret.get_secret_value().encode("utf-8")):
        raise Forbidden(_("wrong SMS callback token"))


async def _receipts(gateway: str, request: Request, session: DbSession, token: str) -> JSONResponse:
    _check(token)
    reader = pushes(gateway)
    body = await request.body()
    receipts = reader.parse_receipts(body, request.headers)
    await run_in_threadpool(sms.take_receipts, session=session, receipts=receipts)
    return JSONResponse(reader.ack())


async def _replies(gateway: str, request: Request, session: DbSession, token: str) -> JSONResponse:
    _check(token)
    reader = pushes(gateway)
    body = await request.body()
    replies = reader.parse_replies(body, request.headers)
    await run_in_threadpool(sms.take_replies, session=session, replies=replies)
    return JSONResponse(reader.ack())


@router.post("/aliyun/report", summary="阿里云短信回执（SmsReport）")
async def aliyun_report(request: Request, session: DbSession, token: Token) -> JSONResponse:
    """送达回执：每条按（BizId、号码、状态）只记一次；失败的按费率卡退费。
    应答 {"code":0,"msg":"接收成功"}。"""
    return await _receipts("aliyun", request, session, token)


@router.post("/aliyun/up", summary="阿里云上行短信（SmsUp）")
async def aliyun_up(request: Request, session: DbSession, token: Token) -> JSONResponse:
    """回复：R、T、TD、N、退订等在所有渠道屏蔽该号码，回复留作凭证；其他回复待人阅读。"""
    return await _replies("aliyun", request, session, token)


@router.post("/tencent/status", summary="腾讯云短信状态回调")
async def tencent_status(request: Request, session: DbSession, token: Token) -> JSONResponse:
    """送达回执：每条按（SerialNo、号码、状态）只记一次。应答 {"result":0,"errmsg":"OK"}。"""
    return await _receipts("tencent", request, session, token)


@router.post("/tencent/reply", summary="腾讯云短信回复回调")
async def tencent_reply(request: Request, session: DbSession, token: Token) -> JSONResponse:
    """回复：退订类回复在所有渠道屏蔽该号码；其他回复待人阅读。"""
    return await _replies("tencent", request, session, token)
