"""Tencent Cloud SMS (API 2021-01-11) through the official SDK: SendSms, PullSmsSendStatusByPhoneNumber, and
the status and reply callbacks.

SendSms takes up to 200 numbers that share one template parameter list and one SessionContext (our batch's
reference), and answers per number with a SerialNo — a message's id, which its status callback carries as
`sid` — or a per-number error code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

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

MAX_BATCH = 200
ACK: dict[str, object] = {"result": 0, "errmsg": "OK"}
_PULL_LIMIT = 100

_KINDS: dict[str, ErrorKind] = {
    "RequestLimitExceeded": "retryable",
    "InternalError": "retryable",
    "ServerNetworkError": "retryable",
    "ClientNetworkError": "retryable",
    "LimitExceeded.DeliveryFrequencyLimit": "per_number",
    "LimitExceeded.PhoneNumberCountLimit": "fatal",
    "LimitExceeded.PhoneNumberDailyLimit": "per_number",
    "LimitExceeded.PhoneNumberOneHourLimit": "per_number",
    "LimitExceeded.PhoneNumberSameContentDailyLimit": "per_number",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "per_number",
    "InvalidParameterValue.IncorrectPhoneNumber": "per_number",
    "FailedOperation.PhoneNumberInBlacklist": "per_number",
    "FailedOperation.PhoneNumberParseFail": "per_number",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": "fatal",
}
_PREFIXES: tuple[tuple[str, ErrorKind], ...] = (
    ("InternalError.", "retryable"),
    ("RequestLimitExceeded.", "retryable"),
)


class TencentPushes:
    """Tencent's status and reply callbacks read without an account: what the callbacks need."""

    name: GatewayName = "tencent"

    # -- what the gateway pushes -----------------------------------------------------------------------------

    def parse_receipts(self, body: bytes, headers: Mapping[str, str]) -> list[DeliveryReceipt]:
        """The status callback: a JSON array of {user_receive_time, nationcode, mobile, report_status, errmsg,
        description, sid}."""
        what = "Tencent SMS status callback"
        out: list[DeliveryReceipt] = []
        for n, row in enumerate(items_of(load_json(body, what=what), what=what), start=1):
            sid = text_field(row, "sid", what=what, n=n) or ""
            status = (text_field(row, "report_status", what=what, n=n) or "").upper()
            ok = status == "SUCCESS"
            out.append(
                DeliveryReceipt(
                    gateway=self.name,
                    message_id=sid,
                    mobile=national(text_field(row, "mobile", what=what, n=n) or ""),
                    delivered=ok,
                    gateway_ref=sid,
                    error_code=None
                    if ok
                    else (text_field(row, "errmsg", what=what, n=n, required=False) or status),
                    error=None if ok else text_field(row, "description", what=what, n=n, required=False),
                    reported_at=parse_local_time(
                        text_field(row, "user_receive_time", what=what, n=n, required=False)
                    ),
                )
            )
        return out

    def parse_replies(self, body: bytes, headers: Mapping[str, str]) -> list[Reply]:
        """The reply callback: {extend, mobile, nationcode, sign, text, time} (one object, or an array)."""
        what = "Tencent SMS reply callback"
        out: list[Reply] = []
        for n, row in enumerate(items_of(load_json(body, what=what), what=what), start=1):
            stamp = text_field(row, "time", what=what, n=n) or ""
            try:
                at: datetime | None = datetime.fromtimestamp(int(float(stamp)), UTC)
            except (ValueError, OverflowError, OSError):
                at = None
            out.append(
                Reply(
                    gateway=self.name,
                    mobile=national(text_field(row, "mobile", what=what, n=n) or ""),
                    text=str(row.get("text") or ""),
                    received_at=at,
                    gateway_ref=stamp,
                    dest_code=text_field(row, "extend", what=what, n=n, required=False),
                )
            )
        return out

    def ack(self) -> dict[str, object]:
        """{"result": 0, "errmsg": "OK"}: what Tencent wants back once a callback is stored."""
        return dict(ACK)


class TencentGateway(TencentPushes):
    """A Tencent Cloud SMS application (SecretId/SecretKey, SdkAppId, one approved signature)."""

    name: GatewayName = "tencent"
    max_batch = MAX_BATCH

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: SecretStr,
        sdk_app_id: str,
        sign_name: str,
        region: str = "ap-guangzhou",
        endpoint: str = "sms.tencentcloudapi.com",
        timeout: float = 10,
        limiter: RateLimit | None = None,
    ) -> None:
        guard_sdk_logs()
        scheme, host = split_endpoint(endpoint)
        http = HttpProfile(protocol=scheme, endpoint=host, reqTimeout=max(1, round(timeout)))
        profile = ClientProfile(httpProfile=http)
        # One endpoint, ours: the SDK must not switch to a backup domain behind our back.
        profile.disable_region_breaker = True
        self.account = sdk_app_id
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.limiter = limiter
        self._client = sms_client.SmsClient(
            credential.Credential(secret_id, secret_key.get_secret_value()), region, profile
        )

    # -- sending ---------------------------------------------------------------------------------------------

    def send_batch(self, messages: Sequence[Sms], *, template: str, batch_ref: str) -> list[SendResult]:
        """Submits messages in calls of up to 200 numbers that share their template values."""
        todo, done = unique_numbers(messages)
        groups: dict[tuple[str, ...], list[Sms]] = {}
        for m in todo:
            groups.setdefault(tuple(m.params.values()), []).append(m)
        try:
            for values, group in groups.items():
                for call in chunks(group, MAX_BATCH):
                    done.extend(self._send_call(call, values=values, template=template, batch_ref=batch_ref))
        except GatewayError as exc:
            exc.results = list(done)
            raise
        return in_order(messages, done)

    def _send_call(
        self, call: Sequence[Sms], *, values: tuple[str, ...], template: str, batch_ref: str
    ) -> list[SendResult]:
        if self.limiter is not None:
            self.limiter.acquire(len(call))
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [f"+86{m.mobile}" for m in call]
        request.SmsSdkAppId = self.sdk_app_id
        request.SignName = self.sign_name
        request.TemplateId = template
        request.TemplateParamSet = list(values)
        request.SessionContext = batch_ref
        try:
            response = self._client.SendSms(request)
        except TencentCloudSDKException as exc:
            raise self._call_error(exc) from None
        by_number = {national(s.PhoneNumber or ""): s for s in response.SendStatusSet or []}
        out: list[SendResult] = []
        for m in call:
            status = by_number.get(m.mobile)
            if status is None:
                # The gateway answered without this number: it was not taken (a resend is safe).
                out.append(refused_result(m, "MissingInAnswer", "no status for this number", "retryable"))
            elif status.Code == "Ok":
                out.append(
                    SendResult(
                        m.piece,
                        m.mobile,
                        True,
                        message_id=status.SerialNo,
                        gateway_ref=status.SerialNo,
                        fee=status.Fee,
                    )
                )
            else:
                code = str(status.Code)
                log.info("tencent refused %s: %s", mask_mobile(m.mobile), code)
                out.append(refused_result(m, code, str(status.Message or code), self.classify(code)))
        return out

    def _call_error(self, exc: TencentCloudSDKException) -> GatewayError:
        """A failed call as a GatewayError; a network failure or a non-200 may have been taken already."""
        code = str(exc.code or "ClientNetworkError")
        network = code in ("ClientNetworkError", "ServerNetworkError")
        kind: ErrorKind = "retryable" if network else self.classify(code)
        return GatewayError(
            gateway=self.name,
            code=code,
            kind=kind,
            message=str(exc.message or code)[:200],
            maybe_sent=network,
        )

    def query_sent(self, messages: Sequence[Sms], *, batch_ref: str, since: datetime) -> QueryResult:
        """PullSmsSendStatusByPhoneNumber per number since `since`: this batch's messages (by SessionContext).

        Tencent lists a message only once its receipt is in, so a missing number is not proof it was not sent.
        """
        found: dict[str, SentRecord] = {}
        begin = int(since.timestamp())
        end = int(datetime.now(UTC).timestamp()) + 60
        for m in messages:
            offset = 0
            while m.piece not in found:
                request = models.PullSmsSendStatusByPhoneNumberRequest()
                request.PhoneNumber = f"+86{m.mobile}"
                request.SmsSdkAppId = self.sdk_app_id
                request.BeginTime = begin
                request.EndTime = end
                request.Offset = offset
                request.Limit = _PULL_LIMIT
                try:
                    rows: list[Any] = list(
                        self._client.PullSmsSendStatusByPhoneNumber(request).PullSmsSendStatusSet or []
                    )
                except TencentCloudSDKException as exc:
                    raise self._call_error(exc) from None
                for row in rows:
                    if row.SessionContext == batch_ref:
                        ok = row.ReportStatus == "SUCCESS"
                        found[m.piece] = SentRecord(
                            m.piece,
                            m.mobile,
                            str(row.SerialNo),
                            "delivered" if ok else "failed",
                            error_code=None if ok else str(row.Description or "FAIL"),
                        )
                        break
                if len(rows) < _PULL_LIMIT:
                    break
                offset += _PULL_LIMIT
        return QueryResult(found=found, conclusive=False)

    def classify(self, error_code: str) -> ErrorKind:
        """Tencent codes: request limits and internal errors retry, a number's own limits and a bad number
        are per number, the rest (credentials, signature, template, balance) is fatal."""
        return classify_code(error_code, _KINDS, _PREFIXES)


def national(number: str) -> str:
    """A mainland number without its +86 / 86 prefix (Tencent writes numbers in E.164)."""
    digits = number.strip().replace(" ", "")
    if digits.startswith("+86"):
        return digits[3:]
    if digits.startswith("86") and len(digits) == 13:
        return digits[2:]
    return digits
