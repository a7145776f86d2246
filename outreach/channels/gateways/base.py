"""The SMS gateway interface: what a live SMS channel asks of Aliyun, Tencent Cloud or any other gateway.

A gateway submits batches of template messages (`send_batch`), finds out after a crash what it already took
for a batch (`query_sent`), reads the receipts and replies the gateway pushes to us (`parse_receipts`,
`parse_replies`, answered with `ack`), and says what one of its error codes means (`classify`). Credentials
come from the settings only; mobiles are masked in every log line and message.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from audiences.privacy import mask_mobile
from audiences.suppression import is_stop_reply
from outreach.errors import InputError, OutreachError
from outreach.i18n import _

GatewayName = Literal["aliyun", "tencent"]
# What an error code means for the numbers it answered:
# retryable: nothing was sent, the same call may go again after a pause (throttling, a gateway's bad moment);
# per_number: this number will not take this message (malformed, blacklisted, its daily cap) — record it on
#   the piece and carry on with the others;
# fatal: no call will succeed until a person acts (credentials, signature, template, balance) — stop the run.
ErrorKind = Literal["retryable", "per_number", "fatal"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("retryable", "per_number", "fatal")

# Our own code for a number given twice in one batch: a gateway id then could not tell the two apart.
DUPLICATE_NUMBER = "outreach.DUPLICATE_NUMBER"


@dataclass(frozen=True, slots=True)
class Sms:
    """One message to submit: the piece it belongs to, the number (11 digits) and the template's values."""

    piece: str
    mobile: str
    params: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Sms(piece={self.piece!r}, mobile={mask_mobile(self.mobile)!r})"


@dataclass(frozen=True, slots=True)
class SendResult:
    """The gateway's answer for one number of a batch: accepted with its id, or refused with an error code.

    `message_id` names the message for its receipts: Tencent's SerialNo, or for Aliyun (whose batch call has
    one BizId and one OutId for all its numbers) `<OutId>:<mobile>`; `gateway_ref` is the gateway's own id
    of the call or message (BizId, SerialNo).
    """

    piece: str
    mobile: str
    accepted: bool
    message_id: str | None = None
    gateway_ref: str | None = None
    error_code: str | None = None
    error: str | None = None
    kind: ErrorKind | None = None
    fee: int | None = None

    def __repr__(self) -> str:
        state = "accepted" if self.accepted else f"refused {self.error_code}"
        return f"SendResult(piece={self.piece!r}, mobile={mask_mobile(self.mobile)!r}, {state})"


def refused_result(message: Sms, code: str, error: str, kind: ErrorKind) -> SendResult:
    """The answer for a message the gateway did not take: its error code, why, and what may be done."""
    return SendResult(message.piece, message.mobile, False, error_code=code, error=error, kind=kind)


@dataclass(frozen=True, slots=True)
class SentRecord:
    """What a gateway's own records say it took for one number of a batch (after a crash)."""

    piece: str
    mobile: str
    message_id: str
    state: Literal["sent", "delivered", "failed"]
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Which of a batch's numbers the gateway has on record.

    `conclusive` says whether a number missing here was surely never taken (Aliyun lists a message as soon as
    it is taken); Tencent lists a message only once its receipt is in, so there a missing number may still be
    in flight and must not be sent again until its receipt is overdue.
    """

    found: dict[str, SentRecord]
    conclusive: bool


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A gateway's report that a message reached the phone or not (a receipt may come late, twice, or out of
    order; `key` tells repeats apart)."""

    gateway: GatewayName
    message_id: str
    mobile: str
    delivered: bool
    gateway_ref: str
    error_code: str | None = None
    error: str | None = None
    batch_ref: str | None = None
    reported_at: datetime | None = None
    parts: int | None = None

    @property
    def status(self) -> str:
        """The receipt's status as the gateway words it: DELIVERED, or its error code."""
        return "DELIVERED" if self.delivered else (self.error_code or "FAILED")

    @property
    def key(self) -> str:
        """The receipt's identity, (gateway id, number, status): a report sent twice has the same key."""
        return f"{self.gateway}|{self.gateway_ref}|{self.mobile}|{self.status}"

    def __repr__(self) -> str:
        return f"DeliveryReceipt({self.gateway}, {mask_mobile(self.mobile)}, {self.status})"


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMS a recipient sent back (上行短信): the number, the text and when."""

    gateway: GatewayName
    mobile: str
    text: str
    received_at: datetime | None
    gateway_ref: str
    dest_code: str | None = None

    @property
    def is_stop(self) -> bool:
        """Whether the reply asks to stop (R, T, TD, 退订...): the suppression list's own rule."""
        return is_stop_reply(self.text)

    @property
    def key(self) -> str:
        """The reply's identity, so one pushed twice is kept once."""
        return f"{self.gateway}|{self.gateway_ref}|{self.mobile}"

    def __repr__(self) -> str:
        return f"Reply({self.gateway}, {mask_mobile(self.mobile)}, stop={self.is_stop})"


class GatewayError(OutreachError):
    """A whole call failed: nothing in it was taken, unless `maybe_sent` (a timeout or a 5xx after the request
    went out), in which case `query_sent` must answer before the batch is sent again."""

    def __init__(
        self, *, gateway: GatewayName, code: str, kind: ErrorKind, message: str, maybe_sent: bool
    ) -> None:
        super().__init__(message)
        self.gateway = gateway
        self.code = code
        self.kind: ErrorKind = kind
        self.maybe_sent = maybe_sent
        # What earlier calls of the batch took or refused before this one failed: record these, send the rest.
        self.results: list[SendResult] = []

    def __str__(self) -> str:
        return _(
            "SMS gateway {gateway} refused the call: {code} ({kind}): {message}",
            gateway=self.gateway,
            code=self.code,
            kind=self.kind,
            message=self.args[0] if self.args else "",
        )


class RateLimit(Protocol):
    """Waits until `count` numbers may be submitted (a token bucket shared by every worker)."""

    def acquire(self, count: int) -> None:
        """Blocks until `count` tokens are taken."""


class Gateway(Protocol):
    """A live SMS gateway account."""

    name: GatewayName
    # Numbers one call takes at most (Aliyun SendBatchSms 100, Tencent SendSms 200).
    max_batch: int

    def send_batch(self, messages: Sequence[Sms], *, template: str, batch_ref: str) -> list[SendResult]:
        """Submits messages of one template; one result per message, in order. Raises GatewayError when a
        whole call failed (nothing of that call was taken unless the error says `maybe_sent`)."""

    def query_sent(self, messages: Sequence[Sms], *, batch_ref: str, since: datetime) -> QueryResult:
        """What the gateway took of a batch sent since `since`, by piece number (after a crash mid-call)."""

    def parse_receipts(self, body: bytes, headers: Mapping[str, str]) -> list[DeliveryReceipt]:
        """The delivery receipts in a pushed callback body; InputError saying where when it is malformed."""

    def parse_replies(self, body: bytes, headers: Mapping[str, str]) -> list[Reply]:
        """The replies in a pushed callback body; InputError saying where when it is malformed."""

    def ack(self) -> dict[str, object]:
        """The JSON body the gateway expects back once a callback is stored."""

    def classify(self, error_code: str) -> ErrorKind:
        """What an error code of this gateway means: retryable, per_number or fatal."""


def mask_text(text: str) -> str:
    """A text with every mainland mobile in it masked (138****5678), +86 prefix and all."""
    return _MOBILE.sub(lambda m: mask_mobile(m.group(1)), text)


class MaskMobiles(logging.Filter):
    """Masks every mainland mobile in a log record: SDKs log whole requests (numbers included) at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = mask_text(text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?(1[3-9]\d{9})(?!\d)")
# The loggers that write request lines or bodies: the Tencent SDK's own, and urllib3's (query strings).
SDK_LOGGERS = ("tencentcloud_sdk_common", "urllib3.connectionpool")


def guard_sdk_logs() -> None:
    """Puts the mobile mask on the loggers the SDKs write requests to (once per process)."""
    for name in SDK_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, MaskMobiles) for f in target.filters):
            target.addFilter(MaskMobiles())


def classify_code(
    code: str, table: Mapping[str, ErrorKind], prefixes: Iterable[tuple[str, ErrorKind]]
) -> ErrorKind:
    """An error code's kind by exact code, then by prefix; an unknown code is fatal (a person looks)."""
    if code in table:
        return table[code]
    for prefix, kind in prefixes:
        if code.startswith(prefix):
            return kind
    return "fatal"


def unique_numbers(messages: Sequence[Sms]) -> tuple[list[Sms], list[SendResult]]:
    """Splits a batch into the messages to send and refusals of a number given a second time."""
    seen: set[str] = set()
    keep: list[Sms] = []
    refused: list[SendResult] = []
    for m in messages:
        if m.mobile in seen:
            refused.append(
                refused_result(m, DUPLICATE_NUMBER, _("number given twice in one batch"), "per_number")
            )
        else:
            seen.add(m.mobile)
            keep.append(m)
    return keep, refused


def in_order(messages: Sequence[Sms], results: Iterable[SendResult]) -> list[SendResult]:
    """The results in the order of the messages (one per piece)."""
    by_piece = {r.piece: r for r in results}
    return [by_piece[m.piece] for m in messages]


def chunks(items: Sequence[Sms], size: int) -> Iterator[Sequence[Sms]]:
    """Consecutive slices of at most `size` messages."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_json(body: bytes, *, what: str) -> object:
    """A callback body as JSON, or InputError naming the callback and the position of the fault."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(_("{what}: the body is not UTF-8 (byte {at})", what=what, at=exc.start)) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            _(
                "{what}: not JSON at line {line}, column {column}: {reason}",
                what=what,
                line=exc.lineno,
                column=exc.colno,
                reason=exc.msg,
            )
        ) from None


def items_of(data: object, *, what: str) -> list[Mapping[str, object]]:
    """The objects of a callback body that is a JSON array of objects (or one object)."""
    rows = data if isinstance(data, list) else [data]
    out: list[Mapping[str, object]] = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise InputError(_("{what}: item {n} is not a JSON object", what=what, n=i))
        out.append(row)
    return out


def text_field(
    row: Mapping[str, object], name: str, *, what: str, n: int, required: bool = True
) -> str | None:
    """A field read as text: strings as they are, numbers (a sequence_id may come as either) as digits."""
    value = row.get(name)
    if value is None or value == "":
        if required:
            raise InputError(_("{what}: item {n} has no {field}", what=what, n=n, field=name))
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value).strip()
    raise InputError(_("{what}: item {n}: {field} is not text", what=what, n=n, field=name))


def parse_local_time(value: str | None) -> datetime | None:
    """A gateway's local time 'YYYY-MM-DD HH:MM:SS' (Beijing time), or None when absent or unreadable."""
    if not value:
        return None
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(value, pattern)
        except ValueError:
            continue
    return None


def dedupe(receipts: Iterable[DeliveryReceipt], seen: set[str] | None = None) -> list[DeliveryReceipt]:
    """The receipts not seen before, by key (receipts are not idempotent: gateways push some twice)."""
    known = seen if seen is not None else set()
    out: list[DeliveryReceipt] = []
    for r in receipts:
        if r.key not in known:
            known.add(r.key)
            out.append(r)
    return out


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """(scheme, host[:port]) of a configured endpoint: a bare host means https."""
    text = endpoint.strip().rstrip("/")
    for scheme in ("https", "http"):
        if text.startswith(f"{scheme}://"):
            return scheme, text[len(scheme) + 3 :]
    if "://" in text:
        raise InputError(
            _("SMS gateway endpoint {endpoint} must be a host or an http(s) URL", endpoint=endpoint)
        )
    return "https", text
