"""A fake SMS gateway on loopback that speaks enough of Aliyun's dysmsapi and Tencent Cloud SMS for the real
SDKs to talk to it: the tests (and the benchmark) point the adapters at `gateway.endpoint`.

Aliyun: POST / with the action in `x-acs-action` (ACS3 signature) or `Action=` (RPC signature), parameters
in the query string and the form body; SendBatchSms and QuerySendDetails. Tencent: POST / with JSON and
`X-TC-Action` (TC3 signature); SendSms, PullSmsSendStatusByPhoneNumber and PullSmsSendStatus.

It counts every number it takes, and can be told to throttle, refuse a number, fail a call with HTTP 500,
answer too late (a time-out, after taking the call or not), and make the receipts and replies a gateway
would push — late, twice, out of order — for the test to POST to a callback URL.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

BEIJING = timezone(timedelta(hours=8))
Gateway = Literal["aliyun", "tencent"]


@dataclass
class Taken:
    """One number the fake took: which gateway, the call's reference (OutId / SessionContext), its ids."""

    gateway: Gateway
    mobile: str
    batch_ref: str
    biz_id: str
    serial_no: str
    template: str
    params: Any
    at: datetime
    delivered: bool = True
    reported: bool = False


@dataclass
class Faults:
    """What the next calls do wrong; each counter is used up one call at a time."""

    throttle: int = 0
    fail: int = 0
    timeout: int = 0
    timeout_takes: bool = False
    delay: float = 0.0
    # One entry per coming send call, used before the counters: "throttle", "fail", "timeout" or None (fine).
    plan: list[str | None] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)
    undeliverable: set[str] = field(default_factory=set)


class FakeSmsGateway:
    """The fake gateway: `with FakeSmsGateway() as gw:` serves on 127.0.0.1 on a free port in a thread."""

    def __init__(
        self, *, access_key_id: str = "fake-ak", secret_id: str = "fake-sid", hang: float = 3.0
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_id = secret_id
        self.hang = hang  # how long a "time-out" answer waits: longer than the client's timeout
        self.faults = Faults()
        self.taken: list[Taken] = []
        self.calls: Counter[str] = Counter()
        self.refused_auth = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-sms-gateway",
            daemon=True,
        )

    # -- lifecycle -------------------------------------------------------------------------------------------

    def __enter__(self) -> FakeSmsGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what the tests read ---------------------------------------------------------------------------------

    def submitted(self) -> Counter[str]:
        """How many times each number was taken."""
        with self._lock:
            return Counter(t.mobile for t in self.taken)

    # -- receipts and replies --------------------------------------------------------------------------------

    def receipts(
        self, gateway: str, *, limit: int | None = None, only_new: bool = True
    ) -> list[dict[str, Any]]:
        """Receipts of the numbers taken (at most `limit`, not yet reported), as the gateway pushes them."""
        out: list[dict[str, Any]] = []
        with self._lock:
            for t in self.taken:
                if t.gateway != gateway or (only_new and t.reported):
                    continue
                if limit is not None and len(out) >= limit:
                    break
                t.reported = True
                out.append(_aliyun_report(t) if gateway == "aliyun" else _tencent_report(t))
        return out

    def reply(
        self, gateway: str, mobile: str, text: str, *, sequence_as_number: bool = False
    ) -> dict[str, Any]:
        """A reply from `mobile` as the gateway pushes it."""
        now = datetime.now(BEIJING)
        if gateway == "aliyun":
            seq = random.randint(10**9, 10**10 - 1)
            return {
                "phone_number": mobile,
                "content": text,
                "send_time": now.strftime("%Y-%m-%d %H:%M:%S"),
                "dest_code": "1234",
                "sequence_id": seq if sequence_as_number else str(seq),
            }
        return {
            "extend": "",
            "mobile": mobile,
            "nationcode": "86",
            "sign": "尤溪县总工会",
            "text": text,
            "time": int(now.timestamp()),
        }

    @staticmethod
    def push(
        url: str, payload: Any, *, shuffle: bool = False, twice: bool = False, timeout: float = 10
    ) -> list[Any]:
        """POSTs a callback body (shuffled and/or twice over, as gateways do); the answers."""
        items = list(payload) if isinstance(payload, list) else [payload]
        if shuffle:
            random.shuffle(items)
        bodies = [items] if isinstance(payload, list) else items
        answers = []
        for _ in range(2 if twice else 1):
            for body in bodies:
                request = urllib.request.Request(
                    url,
                    data=json.dumps(body, ensure_ascii=False).encode(),
                    method="POST",
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    answers.append(json.loads(response.read()))
        return answers

    # -- serving ---------------------------------------------------------------------------------------------

    def _fault(self) -> str | None:
        """Uses up one fault for the next send call: throttle, fail, timeout, or None."""
        with self._lock:
            if self.faults.plan:
                return self.faults.plan.pop(0)
            for name in ("throttle", "fail", "timeout"):
                if getattr(self.faults, name) > 0:
                    setattr(self.faults, name, getattr(self.faults, name) - 1)
                    return name
        return None

    def _take(
        self, gateway: Gateway, mobiles: list[str], batch_ref: str, template: str, params: list[Any]
    ) -> list[Taken]:
        biz_id = f"{random.randint(10**5, 10**6 - 1)}^{random.randint(10**9, 10**10 - 1)}"
        now = datetime.now(BEIJING)
        rows = [
            Taken(
                gateway,
                m,
                batch_ref,
                biz_id,
                uuid.uuid4().hex[:20],
                template,
                p,
                now,
                delivered=m not in self.faults.undeliverable,
            )
            for m, p in zip(mobiles, params, strict=True)
        ]
        with self._lock:
            self.taken.extend(rows)
        return rows

    def aliyun(self, action: str, params: dict[str, str], headers: Any) -> tuple[int, dict[str, Any]]:
        auth = headers.get("Authorization", "")
        if self.access_key_id not in auth and params.get("AccessKeyId") != self.access_key_id:
            self.refused_auth += 1
            return 404, {
                "Code": "InvalidAccessKeyId.NotFound",
                "Message": "Specified access key is not found.",
                "RequestId": uuid.uuid4().hex,
            }
        request_id = uuid.uuid4().hex
        if action == "SendBatchSms":
            mobiles = json.loads(params.get("PhoneNumberJson", "[]"))
            signs = json.loads(params.get("SignNameJson", "[]"))
            values = json.loads(params.get("TemplateParamJson", "[]") or "[]") or [{}] * len(mobiles)
            if not mobiles or len(mobiles) > 100 or len(signs) != len(mobiles) or len(values) != len(mobiles):
                return 200, {"Code": "isv.INVALID_PARAMETERS", "Message": "参数异常", "RequestId": request_id}
            fault = self._fault()
            if fault == "throttle":
                return 200, {
                    "Code": "isv.BUSINESS_LIMIT_CONTROL",
                    "Message": "触发流控",
                    "RequestId": request_id,
                }
            if fault == "fail":
                return 500, {"Code": "isp.SYSTEM_ERROR", "Message": "系统错误", "RequestId": request_id}
            if any(m in self.faults.reject for m in mobiles):
                return 200, {
                    "Code": "isv.MOBILE_NUMBER_ILLEGAL",
                    "Message": "非法手机号",
                    "RequestId": request_id,
                }
            if fault == "timeout" and not self.faults.timeout_takes:
                time.sleep(self.hang)
                return 500, {"Code": "isp.SYSTEM_ERROR", "Message": "too late", "RequestId": request_id}
            rows = self._take(
                "aliyun", mobiles, params.get("OutId", ""), params.get("TemplateCode", ""), values
            )
            if fault == "timeout":
                time.sleep(self.hang)
            return 200, {"Code": "OK", "Message": "OK", "BizId": rows[0].biz_id, "RequestId": request_id}
        if action == "QuerySendDetails":
            mobile = params.get("PhoneNumber", "")
            day = params.get("SendDate", "")
            size = int(params.get("PageSize", "10"))
            page = int(params.get("CurrentPage", "1"))
            with self._lock:
                rows = [
                    t
                    for t in self.taken
                    if t.gateway == "aliyun" and t.mobile == mobile and t.at.strftime("%Y%m%d") == day
                ]
            shown = rows[(page - 1) * size : page * size]
            details = [
                {
                    "PhoneNum": t.mobile,
                    "SendStatus": (3 if t.delivered else 2) if t.reported else 1,
                    "ErrCode": "DELIVERED" if t.delivered else "MK:0001",
                    "TemplateCode": t.template,
                    "Content": "【尤溪县总工会】...",
                    "SendDate": t.at.strftime("%Y-%m-%d %H:%M:%S"),
                    "ReceiveDate": t.at.strftime("%Y-%m-%d %H:%M:%S"),
                    "OutId": t.batch_ref,
                }
                for t in shown
            ]
            return 200, {
                "Code": "OK",
                "Message": "OK",
                "RequestId": request_id,
                "TotalCount": len(rows),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
            }
        return 400, {"Code": "InvalidAction.NotFound", "Message": action, "RequestId": request_id}

    def tencent(self, action: str, payload: dict[str, Any], headers: Any) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4())
        if self.secret_id not in headers.get("Authorization", ""):
            self.refused_auth += 1
            return 200, _tc_error("AuthFailure.SecretIdNotFound", "SecretId not found", request_id)
        if action == "SendSms":
            numbers = payload.get("PhoneNumberSet") or []
            if not numbers or len(numbers) > 200:
                return 200, _tc_error("LimitExceeded.PhoneNumberCountLimit", "too many numbers", request_id)
            fault = self._fault()
            if fault == "throttle":
                return 200, _tc_error("RequestLimitExceeded", "请求的次数超过了频率限制", request_id)
            if fault == "fail":
                return 500, {"message": "internal server error"}
            if fault == "timeout" and not self.faults.timeout_takes:
                time.sleep(self.hang)
                return 500, {"message": "too late"}
            good = [n for n in numbers if n[3:] not in self.faults.reject]
            taken = {
                t.mobile: t
                for t in self._take(
                    "tencent",
                    [n[3:] for n in good],
                    str(payload.get("SessionContext") or ""),
                    str(payload.get("TemplateId") or ""),
                    [payload.get("TemplateParamSet")] * len(good),
                )
            }
            statuses = []
            for n in numbers:
                t = taken.get(n[3:])
                if t is None:
                    statuses.append(
                        {
                            "SerialNo": "",
                            "PhoneNumber": n,
                            "Fee": 0,
                            "SessionContext": "",
                            "Code": "InvalidParameterValue.IncorrectPhoneNumber",
                            "Message": "手机号格式错误",
                            "IsoCode": "CN",
                        }
                    )
                else:
                    statuses.append(
                        {
                            "SerialNo": t.serial_no,
                            "PhoneNumber": n,
                            "Fee": 1,
                            "SessionContext": t.batch_ref,
                            "Code": "Ok",
                            "Message": "send success",
                            "IsoCode": "CN",
                        }
                    )
            if fault == "timeout":
                time.sleep(self.hang)
            return 200, {"Response": {"SendStatusSet": statuses, "RequestId": request_id}}
        if action in ("PullSmsSendStatusByPhoneNumber", "PullSmsSendStatus"):
            mobile = str(payload.get("PhoneNumber") or "")[3:]
            offset = int(payload.get("Offset") or 0)
            limit = int(payload.get("Limit") or 100)
            with self._lock:
                rows = [
                    t
                    for t in self.taken
                    if t.gateway == "tencent"
                    and t.reported
                    and (action == "PullSmsSendStatus" or t.mobile == mobile)
                ]
            rows = rows[offset : offset + limit]
            out = [
                {
                    "UserReceiveTime": t.at.strftime("%Y-%m-%d %H:%M:%S"),
                    "CountryCode": "86",
                    "SubscriberNumber": t.mobile,
                    "PhoneNumber": f"+86{t.mobile}",
                    "SerialNo": t.serial_no,
                    "ReportStatus": "SUCCESS" if t.delivered else "FAIL",
                    "Description": "用户短信送达成功" if t.delivered else "MK:0001",
                    "SessionContext": t.batch_ref,
                }
                for t in rows
            ]
            return 200, {"Response": {"PullSmsSendStatusSet": out, "RequestId": request_id}}
        return 200, _tc_error("InvalidAction", f"action {action} not found", request_id)


def _tc_error(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}}


def _aliyun_report(t: Taken) -> dict[str, Any]:
    now = datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "phone_number": t.mobile,
        "send_time": t.at.strftime("%Y-%m-%d %H:%M:%S"),
        "report_time": now,
        "success": t.delivered,
        "err_code": "DELIVERED" if t.delivered else "MK:0001",
        "err_msg": "用户接收成功" if t.delivered else "手机关机",
        "sms_size": "1",
        "biz_id": t.biz_id,
        "out_id": t.batch_ref,
    }


def _tencent_report(t: Taken) -> dict[str, Any]:
    return {
        "user_receive_time": datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        "nationcode": "86",
        "mobile": t.mobile,
        "report_status": "SUCCESS" if t.delivered else "FAIL",
        "errmsg": "DELIVRD" if t.delivered else "MK:0001",
        "description": "用户短信送达成功" if t.delivered else "手机关机",
        "sid": t.serial_no,
    }


def _handler(gateway: FakeSmsGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if gateway.faults.delay:
                time.sleep(gateway.faults.delay)
            tc_action = self.headers.get("X-TC-Action")
            if tc_action:
                gateway.calls[f"tencent.{tc_action}"] += 1
                payload = json.loads(raw or b"{}")
                status, body = gateway.tencent(tc_action, payload, self.headers)
            else:
                params = dict(parse_qsl(urlsplit(self.path).query))
                if raw:
                    params.update(parse_qsl(raw.decode("utf-8")))
                action = self.headers.get("x-acs-action") or params.get("Action", "")
                gateway.calls[f"aliyun.{action}"] += 1
                status, body = gateway.aliyun(action, params, self.headers)
            data = json.dumps(body, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up waiting (a time-out test)

        do_GET = do_POST

    return Handler


def utc_now() -> datetime:
    """Now, aware, in UTC (the `since` of a query after a crash)."""
    return datetime.now(UTC)
