"""Aliyun SMS (dysmsapi 2017-05-25) through the official SDK: SendBatchSms, QuerySendDetails, and the
SmsReport / SmsUp pushes.

SendBatchSms takes up to 100 numbers with one OutId and answers with one BizId, so a message is named by
`<OutId>:<mobile>` (the batch's reference and the number), which its receipt and QuerySendDetails both carry.
A call is refused whole when one of its numbers is bad (isv.MOBILE_NUMBER_ILLEGAL); nothing of it was sent,
so the batch is halved until the bad number stands alone and the rest goes through.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alibabacloud_dysmsapi20170525 import models as dysms
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import models as open_api
from darabonba.exceptions import ResponseException
from pydantic import SecretStr

from audiences.privacy import mask_mobile
from outreach.channels.gateways.base import (
    DeliveryReceipt,
    ErrorKind,
    GatewayError,
    GatewayName,
    QueryResult,
    RateLimit,
    Reply,
    SendResult,
    SentRecord,
    Sms,
    chunks,
    classify_code,
    guard_sdk_logs,
    in_order,
    items_of,
    load_json,
    parse_local_time,
    refused_result,
    split_endpoint,
    text_field,
    unique_numbers,
)

log = logging.getLogger(__name__)

# The gateway's days (QuerySendDetails' SendDate) are Beijing days.
GATEWAY_TZ = ZoneInfo("Asia/Shanghai")

MAX_BATCH = 100
ACK: dict[str, object] = {"code": 0, "msg": "接收成功"}
# QuerySendDetails' SendStatus: 1 waiting for the receipt, 2 failed, 3 delivered.
_SEND_STATUS = {"1": "sent", "2": "failed", "3": "delivered"}
_QUERY_PAGE = 50
# QuerySendDetails calls in flight at once while resolving a batch after a crash.
QUERY_THREADS = 8

_KINDS: dict[str, ErrorKind] = {
    "isv.BUSINESS_LIMIT_CONTROL": "retryable",
    "isp.SYSTEM_ERROR": "retryable",
    "isp.GATEWAY_ERROR": "retryable",
    "Throttling": "retryable",
    "Throttling.User": "retryable",
    "Throttling.Api": "retryable",
    "ServiceUnavailable": "retryable",
    "InternalError": "retryable",
    "SignatureNonceUsed": "retryable",
    "NetworkError": "retryable",
    "isv.MOBILE_NUMBER_ILLEGAL": "per_number",
    "isv.DAY_LIMIT_CONTROL": "per_number",
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": "per_number",
}
_PREFIXES: tuple[tuple[str, ErrorKind], ...] = (("Throttling.", "retryable"),)


class _CallRefused(Exception):
    """A call refused for a per-number reason: nothing of it was sent."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AliyunPushes:
    """Aliyun's pushes (SmsReport receipts, SmsUp replies), read without an account (the callbacks)."""

    name: GatewayName = "aliyun"

    # -- what the gateway pushes -----------------------------------------------------------------------------

    def parse_receipts(self, body: bytes, headers: Mapping[str, str]) -> list[DeliveryReceipt]:
        """SmsReport: a JSON array of {phone_number, send_time, report_time, success, err_code, err_msg,
        sms_size, biz_id, out_id}."""
        what = "Aliyun SmsReport"
        out: list[DeliveryReceipt] = []
        for n, row in enumerate(items_of(load_json(body, what=what), what=what), start=1):
            phone = text_field(row, "phone_number", what=what, n=n) or ""
            biz_id = text_field(row, "biz_id", what=what, n=n) or ""
            out_id = text_field(row, "out_id", what=what, n=n, required=False)
            success = row.get("success")
            if not isinstance(success, bool):
                success = str(success).strip().lower() == "true"
            size = text_field(row, "sms_size", what=what, n=n, required=False)
            out.append(
                DeliveryReceipt(
                    gateway=self.name,
                    message_id=message_id(out_id or "", phone),
                    mobile=phone,
                    delivered=success,
                    gateway_ref=biz_id,
                    error_code=None
                    if success
                    else text_field(row, "err_code", what=what, n=n, required=False),
                    error=None if success else text_field(row, "err_msg", what=what, n=n, required=False),
                    batch_ref=out_id,
                    reported_at=parse_local_time(
                        text_field(row, "report_time", what=what, n=n, required=False)
                    ),
                    parts=int(size) if size and size.isdigit() else None,
                )
            )
        return out

    def parse_replies(self, body: bytes, headers: Mapping[str, str]) -> list[Reply]:
        """SmsUp: a JSON array of {phone_number, content, send_time, dest_code, sequence_id} (sequence_id is a
        string or a number)."""
        what = "Aliyun SmsUp"
        out: list[Reply] = []
        for n, row in enumerate(items_of(load_json(body, what=what), what=what), start=1):
            out.append(
                Reply(
                    gateway=self.name,
                    mobile=text_field(row, "phone_number", what=what, n=n) or "",
                    text=str(row.get("content") or ""),
                    received_at=parse_local_time(
                        text_field(row, "send_time", what=what, n=n, required=False)
                    ),
                    gateway_ref=text_field(row, "sequence_id", what=what, n=n) or "",
                    dest_code=text_field(row, "dest_code", what=what, n=n, required=False),
                )
            )
        return out

    def ack(self) -> dict[str, object]:
        """{"code": 0, "msg": "接收成功"}: Aliyun's answer (anything but HTTP 200 makes it push again)."""
        return dict(ACK)


class AliyunGateway(AliyunPushes):
    """An Aliyun SMS account (one AccessKey, one approved signature)."""

    name: GatewayName = "aliyun"
    max_batch = MAX_BATCH

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: SecretStr,
        sign_name: str,
        endpoint: str = "dysmsapi.aliyuncs.com",
        timeout: float = 10,
        limiter: RateLimit | None = None,
    ) -> None:
        guard_sdk_logs()
        scheme, host = split_endpoint(endpoint)
        millis = max(1, int(timeout * 1000))
        config = open_api.Config(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret.get_secret_value(),
            endpoint=host,
            protocol=scheme,
            read_timeout=millis,
            connect_timeout=millis,
        )
        self.account = access_key_id
        self.sign_name = sign_name
        self.limiter = limiter
        self._client = Client(config)

    # -- sending ---------------------------------------------------------------------------------------------

    def send_batch(self, messages: Sequence[Sms], *, template: str, batch_ref: str) -> list[SendResult]:
        """Submits messages in calls of up to 100 numbers; a bad number is found by halving, refused alone."""
        todo, done = unique_numbers(messages)
        queue: deque[Sequence[Sms]] = deque(chunks(todo, MAX_BATCH))
        while queue:
            call = queue.popleft()
            try:
                done.extend(self._send_call(call, template=template, batch_ref=batch_ref))
            except _CallRefused as refused:
                if len(call) == 1:
                    m = call[0]
                    log.info("aliyun refused %s: %s", mask_mobile(m.mobile), refused.code)
                    done.append(refused_result(m, refused.code, str(refused), "per_number"))
                else:
                    half = len(call) // 2
                    queue.appendleft(call[half:])
                    queue.appendleft(call[:half])
            except GatewayError as exc:
                exc.results = [r for r in done]
                raise
        return in_order(messages, done)

    def _send_call(self, call: Sequence[Sms], *, template: str, batch_ref: str) -> list[SendResult]:
        if self.limiter is not None:
            self.limiter.acquire(len(call))
        request = dysms.SendBatchSmsRequest(
            phone_number_json=json.dumps([m.mobile for m in call]),
            sign_name_json=json.dumps([self.sign_name] * len(call), ensure_ascii=False),
            template_code=template,
            template_param_json=json.dumps([dict(m.params) for m in call], ensure_ascii=False),
            out_id=batch_ref,
        )
        try:
            response = self._client.send_batch_sms(request)
        except Exception as exc:
            raise self._call_error(exc) from None
        body = response.body
        code = str(body.code or "")
        if code == "OK":
            return [
                SendResult(
                    m.piece,
                    m.mobile,
                    True,
                    message_id=message_id(batch_ref, m.mobile),
                    gateway_ref=body.biz_id,
                )
                for m in call
            ]
        kind = self.classify(code)
        if kind == "per_number":
            raise _CallRefused(code, str(body.message or code))
        raise GatewayError(
            gateway=self.name, code=code, kind=kind, message=str(body.message or code), maybe_sent=False
        )

    def _call_error(self, exc: Exception) -> GatewayError:
        """A failed call as a GatewayError; a timeout or a 5xx may have been taken before it failed."""
        if isinstance(exc, ResponseException):
            status = exc.status_code or 0
            code = str(exc.code or f"HTTP{status}")
            if status >= 500:
                return GatewayError(
                    gateway=self.name, code=code, kind="retryable", message=str(exc.message), maybe_sent=True
                )
            return GatewayError(
                gateway=self.name,
                code=code,
                kind=self.classify(code),
                message=str(exc.message),
                maybe_sent=False,
            )
        inner = getattr(exc, "inner_exception", exc)
        return GatewayError(
            gateway=self.name,
            code="NetworkError",
            kind="retryable",
            message=type(inner).__name__,
            maybe_sent=True,
        )

    def query_sent(self, messages: Sequence[Sms], *, batch_ref: str, since: datetime) -> QueryResult:
        """QuerySendDetails per number and day since `since`: the messages of this batch (by OutId).

        The numbers are asked a few at a time (the query takes one number a call, and a batch lost in a
        crash may hold a thousand); any failed query fails the whole answer, so nothing is guessed.
        """
        first = since.astimezone(GATEWAY_TZ).date() if since.tzinfo else since.date()
        days = _days(first, datetime.now(GATEWAY_TZ).date())

        def one(m: Sms) -> SentRecord | None:
            for day in days:
                record = self._query_one(m, batch_ref=batch_ref, day=day)
                if record is not None:
                    return record
            return None

        with ThreadPoolExecutor(max_workers=QUERY_THREADS, thread_name_prefix="aliyun-query") as pool:
            answers = list(pool.map(one, messages))
        found = {m.piece: r for m, r in zip(messages, answers, strict=True) if r is not None}
        return QueryResult(found=found, conclusive=True)

    def _query_one(self, m: Sms, *, batch_ref: str, day: date) -> SentRecord | None:
        page = 1
        while True:
            request = dysms.QuerySendDetailsRequest(
                phone_number=m.mobile,
                send_date=day.strftime("%Y%m%d"),
                page_size=_QUERY_PAGE,
                current_page=page,
            )
            try:
                body = self._client.query_send_details(request).body
            except Exception as exc:
                raise self._call_error(exc) from None
            if str(body.code) != "OK":
                code = str(body.code)
                raise GatewayError(
                    gateway=self.name,
                    code=code,
                    kind=self.classify(code),
                    message=str(body.message or code),
                    maybe_sent=False,
                )
            rows: list[Any] = []
            if body.sms_send_detail_dtos is not None and body.sms_send_detail_dtos.sms_send_detail_dto:
                rows = list(body.sms_send_detail_dtos.sms_send_detail_dto)
            for row in rows:
                if row.out_id == batch_ref and str(row.phone_num) == m.mobile:
                    state = _SEND_STATUS.get(str(row.send_status), "sent")
                    return SentRecord(
                        m.piece,
                        m.mobile,
                        message_id(batch_ref, m.mobile),
                        state,  # type: ignore[arg-type]
                        error_code=row.err_code if state == "failed" else None,
                    )
            total = int(body.total_count or 0)
            if page * _QUERY_PAGE >= total or not rows:
                return None
            page += 1

    def classify(self, error_code: str) -> ErrorKind:
        """Aliyun codes: throttling and system errors retry, a bad number is per number, the rest is fatal."""
        return classify_code(error_code, _KINDS, _PREFIXES)


def message_id(batch_ref: str, mobile: str) -> str:
    """The id of one Aliyun message: its batch's OutId and its number."""
    return f"{batch_ref}:{mobile}"


def _days(first: date, last: date) -> list[date]:
    """Every day from `first` to `last` (at least `first`), newest first: a resend would be recent."""
    span = max(0, (last - first).days)
    return [last - timedelta(days=i) for i in range(span + 1)]
