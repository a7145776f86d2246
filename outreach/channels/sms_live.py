"""The live SMS channel: a batch of pieces is submitted to the configured gateway (Aliyun or Tencent Cloud) at
the account's shared rate; a piece is charged once the gateway has taken it (`submitted`, with the gateway's
id), and its receipt later says delivered or failed.

Each piece is submitted at most once. Before each call the batch's intent file lists the call's pieces; a
piece that is still pending and listed there was tried before (a crash between the call and the commit, or a
call that failed), so the gateway is asked what it already took (`query_sent`) and only the rest is sent. A
batch paused at the end of its sending window has recorded what it sent, so the next morning sends the rest
without a query. A throttled call is retried with a growing pause; a call that failed in a way that may have
been taken (a time-out, a 5xx) is resolved by the same query before any resend.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from outreach.channels import (
    BatchFolder,
    BatchOutput,
    ChannelName,
    PieceResult,
    Receipt,
    ResultState,
)
from outreach.channels.gateways.base import (
    DeliveryReceipt,
    Gateway,
    GatewayError,
    SendResult,
    SentRecord,
    Sms,
    mask_text,
)
from outreach.channels.quiet_hours import SEND_UNTIL
from outreach.channels.sms_files import SmsBase
from outreach.errors import InputError, NotFound
from outreach.i18n import _
from outreach.render import Kit, Recipient, render_sms
from outreach.settings import Settings, get_settings

log = logging.getLogger(__name__)

INTENT_FILE = "sms-intent.json"
RESULT_FILE = "sms-submitted.csv"
RESULT_HEADER = ("piece", "state", "message_id", "error_code")
# The gateway template's one variable: the composed text without its 【signature】 (the gateway adds that).
CONTENT_PARAM = "content"
# A query after a crash looks back this far before the intent's time (clocks of workers and gateway differ).
QUERY_MARGIN = timedelta(minutes=10)
UNRESOLVED = "outreach.UNRESOLVED"


class SmsLiveChannel(SmsBase):
    """SMS sent now through a live gateway account, charged per part when the gateway takes a message."""

    name: ChannelName = "sms"
    charge_on: str = "submitted"
    keeps_mobile: bool = True
    delivery_files: tuple[str, ...] = (RESULT_FILE,)
    # Messages leave now: a run sends its batches only inside the campaign's window, one worker per batch.
    sends_live: bool = True

    def __init__(
        self,
        gateway: Gateway | None = None,
        *,
        template: str | None = None,
        attempts: int = 6,
        backoff: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._gateway = gateway
        self._template = template
        self.attempts = attempts
        # The first retry's pause (doubling after): OUTREACH_SMS_RETRY_BACKOFF unless given.
        self.backoff = get_settings().sms_retry_backoff if backoff is None else backoff
        self._sleep = sleep

    @property
    def gateway(self) -> Gateway:
        """The settings' gateway, with the account's rate shared through the broker's Redis (built once)."""
        if self._gateway is None:
            from outreach.channels.gateways import gateway_from_settings

            settings = get_settings()
            self._gateway = gateway_from_settings(settings, redis_client=_redis(settings))
        return self._gateway

    @property
    def template(self) -> str:
        """The gateway's approved template code (OUTREACH_SMS_TEMPLATE_CODE)."""
        code = self._template or get_settings().sms_template_code
        if not code:
            raise InputError(_("live SMS needs an approved gateway template: set OUTREACH_SMS_TEMPLATE_CODE"))
        return code

    def deliver(
        self,
        kit: Kit,
        recipients: Sequence[Recipient],
        *,
        context: Mapping[str, object],
        folder: BatchFolder,
        workdir: Path,
    ) -> BatchOutput:
        """Submits the batch's messages (each at most once, also across a crash) and stores the answers.

        With `context[SEND_UNTIL]` (the end of the sending window) no call starts at or after that moment:
        the pieces not yet sent then get no result and stay pending for the next window.
        """
        rendered = render_sms(kit, recipients, context=context)
        parts = {m.number: m.parts for m in rendered}
        results: dict[str, PieceResult] = {}
        outgoing: list[Sms] = []
        for m in rendered:
            if m.error is not None or not m.mobile:
                results[m.number] = PieceResult(m.number, "failed", reason=m.error or _("no mobile number"))
            else:
                outgoing.append(Sms(m.number, m.mobile, {CONTENT_PARAM: _body(m.text)}))
        until = context.get(SEND_UNTIL)
        deadline = until if isinstance(until, datetime) else None
        batch_ref = folder.prefix
        intent = Intent.load(folder, workdir, gateway=self.gateway.name)
        doubtful = [m for m in outgoing if intent.tried(m.piece)]
        if doubtful:
            # Tried before and not recorded (a crash, or a call that failed): the gateway says what it took.
            left = {
                m.piece
                for m in self._resolve(
                    doubtful, results, parts, batch_ref=batch_ref, since=intent.since(doubtful)
                )
            }
            outgoing = [m for m in outgoing if not intent.tried(m.piece) or m.piece in left]
        self._send(outgoing, results, parts, batch_ref=batch_ref, intent=intent, until=deadline)
        output = BatchOutput(results=[results[m.number] for m in rendered if m.number in results])
        path = workdir / RESULT_FILE
        rows = _earlier_rows(folder)
        for r in output.results:
            # Aliyun's ids carry the number: the file shows it masked, as every log does.
            rows[r.number] = [r.number, r.state, mask_text(r.message_id or ""), r.error_code or ""]
        with path.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(RESULT_HEADER)
            out.writerows(rows[number] for number in sorted(rows))
        output.files[RESULT_FILE] = folder.put(path)
        return output

    def _resolve(
        self,
        outgoing: list[Sms],
        results: dict[str, PieceResult],
        parts: Mapping[str, int],
        *,
        batch_ref: str,
        since: datetime,
    ) -> list[Sms]:
        """Records what the gateway already took; the messages still to send. Raises when it cannot tell."""
        if not outgoing:
            return outgoing
        answer = self.gateway.query_sent(outgoing, batch_ref=batch_ref, since=since)
        for piece, record in answer.found.items():
            results[piece] = _from_record(record, parts[piece])
        left = [m for m in outgoing if m.piece not in answer.found]
        if left and not answer.conclusive:
            raise GatewayError(
                gateway=self.gateway.name,
                code=UNRESOLVED,
                kind="retryable",
                message=_(
                    "{count} messages of batch {batch} may have been taken; retry when their receipts are in",
                    count=len(left),
                    batch=batch_ref,
                ),
                maybe_sent=True,
            )
        return left

    def _send(
        self,
        outgoing: list[Sms],
        results: dict[str, PieceResult],
        parts: Mapping[str, int],
        *,
        batch_ref: str,
        intent: Intent,
        until: datetime | None,
    ) -> None:
        """Sends in calls of the gateway's size, each call's pieces written to the intent file first; stops
        before a call that would start after `until`."""
        size = max(1, self.gateway.max_batch)
        for start in range(0, len(outgoing), size):
            if until is not None and datetime.now(UTC) >= until:
                log.info("sms batch %s: the sending window closed; %d left", batch_ref, len(outgoing) - start)
                return
            call = outgoing[start : start + size]
            intent.record(call)
            self._send_call(call, results, parts, batch_ref=batch_ref, since=intent.started - QUERY_MARGIN)

    def _send_call(
        self,
        outgoing: Sequence[Sms],
        results: dict[str, PieceResult],
        parts: Mapping[str, int],
        *,
        batch_ref: str,
        since: datetime,
    ) -> None:
        """Sends until every message has an answer: retries with a growing pause, resolves doubtful calls."""
        attempt = 0
        todo = list(outgoing)
        while todo:
            # A message's submitted time is when its call went out (the gateway stamps it on arrival).
            called = datetime.now(UTC)
            try:
                answers = self.gateway.send_batch(todo, template=self.template, batch_ref=batch_ref)
                failure: GatewayError | None = None
            except GatewayError as exc:
                answers, failure = exc.results, exc
            again = self._record(answers, results, parts, at=called)
            answered = {r.piece for r in answers}
            todo = [m for m in todo if m.piece not in answered or m.piece in again]
            if failure is not None:
                if failure.kind == "fatal":
                    raise failure
                if failure.maybe_sent:
                    todo = self._resolve(todo, results, parts, batch_ref=batch_ref, since=since)
            elif not todo:
                return
            attempt += 1
            if todo and attempt >= self.attempts:
                if failure is not None:
                    raise failure
                raise GatewayError(
                    gateway=self.gateway.name,
                    code="outreach.RETRIES",
                    kind="retryable",
                    message=_(
                        "{count} messages still refused after {attempts} tries",
                        count=len(todo),
                        attempts=attempt,
                    ),
                    maybe_sent=False,
                )
            if todo:
                pause = self.backoff * 2 ** (attempt - 1)
                log.info(
                    "sms batch %s: %d messages wait %.1fs (attempt %d)",
                    batch_ref,
                    len(todo),
                    pause,
                    attempt,
                )
                self._sleep(pause)

    def _record(
        self,
        answers: Sequence[SendResult],
        results: dict[str, PieceResult],
        parts: Mapping[str, int],
        *,
        at: datetime,
    ) -> set[str]:
        """Records accepted and refused numbers; the pieces a retry may still send (a retryable refusal)."""
        again: set[str] = set()
        for r in answers:
            if r.accepted:
                results[r.piece] = PieceResult(
                    r.piece, "submitted", parts=parts[r.piece], message_id=r.message_id, at=at
                )
            elif r.kind == "retryable":
                again.add(r.piece)
            else:
                results[r.piece] = PieceResult(
                    r.piece,
                    "failed",
                    reason=r.error or r.error_code,
                    error_code=r.error_code,
                    parts=parts[r.piece],
                )
        return again


class Intent:
    """A batch's intent file: which pieces each attempt handed to the gateway, and when it started.

    Written before each call, so a piece found pending later and listed here may have been taken.
    """

    def __init__(self, folder: BatchFolder, workdir: Path, *, gateway: str, attempts: list[dict[str, Any]]):
        self.folder = folder
        self.workdir = workdir
        self.started = datetime.now(UTC)
        self._attempts = attempts
        self._mine: dict[str, Any] = {"started": self.started.isoformat(), "gateway": gateway, "pieces": []}
        self._tried: dict[str, datetime] = {}
        self._all_since: datetime | None = None
        for attempt in attempts:
            try:
                at = datetime.fromisoformat(str(attempt["started"]))
                pieces = attempt.get("pieces")
            except (KeyError, ValueError, TypeError, AttributeError):
                at, pieces = self.started - timedelta(days=2), None
            if not isinstance(pieces, list):
                # An intent without its pieces (older file, or unreadable): every piece is in doubt.
                self._all_since = at if self._all_since is None else min(self._all_since, at)
                continue
            for piece in pieces:
                key = str(piece)
                self._tried[key] = min(self._tried.get(key, at), at)

    @classmethod
    def load(cls, folder: BatchFolder, workdir: Path, *, gateway: str) -> Intent:
        """The batch's intent file as stored (none yet: no attempt)."""
        key = folder.key(INTENT_FILE)
        attempts: list[dict[str, Any]] = []
        if folder.storage.exists(key):
            try:
                with folder.storage.open(key) as stream:
                    data = json.load(stream)
                attempts = list(data["attempts"]) if "attempts" in data else [data]
            except (NotFound, ValueError, KeyError, TypeError):
                attempts = [{"started": "unreadable"}]
        return cls(folder, workdir, gateway=gateway, attempts=attempts)

    def tried(self, piece: str) -> bool:
        """Whether an earlier attempt may have handed this piece to the gateway."""
        return self._all_since is not None or piece in self._tried

    def since(self, messages: Sequence[Sms]) -> datetime:
        """How far back the gateway's records must be searched for these messages."""
        times = [self._tried[m.piece] for m in messages if m.piece in self._tried]
        if self._all_since is not None:
            times.append(self._all_since)
        return min(times, default=self.started) - QUERY_MARGIN

    def record(self, messages: Sequence[Sms]) -> None:
        """Stores that this attempt is about to hand these messages to the gateway."""
        if not self._mine["pieces"]:
            self._attempts.append(self._mine)
        self._mine["pieces"].extend(m.piece for m in messages)
        path = self.workdir / INTENT_FILE
        path.write_text(json.dumps({"attempts": self._attempts}), encoding="utf-8")
        self.folder.put(path)


def _earlier_rows(folder: BatchFolder) -> dict[str, list[str]]:
    """The rows of the batch's submitted list from earlier attempts (before a pause), by piece."""
    key = folder.key(RESULT_FILE)
    if not folder.storage.exists(key):
        return {}
    try:
        with folder.storage.open(key) as stream:
            text = stream.read().decode("utf-8")
    except (NotFound, UnicodeDecodeError):
        return {}
    rows = list(csv.reader(text.splitlines()))
    return {row[0]: row for row in rows[1:] if len(row) == len(RESULT_HEADER)}


def channel_receipts(receipts: Sequence[DeliveryReceipt]) -> list[Receipt]:
    """Parsed receipts as the runs record them (by message id: delivered, or failed with its code)."""
    return [
        Receipt(r.message_id, "delivered")
        if r.delivered
        else Receipt(r.message_id, "failed", error_code=r.error_code, reason=r.error or r.error_code)
        for r in receipts
    ]


def _body(text: str) -> str:
    """The composed text without its leading 【signature】, which the gateway adds from the sign name."""
    if text.startswith("【") and "】" in text:
        return text[text.index("】") + 1 :]
    return text


def _from_record(record: SentRecord, parts: int) -> PieceResult:
    """A piece's result from the gateway's own record of it (found after a crash)."""
    if record.state == "failed":
        return PieceResult(
            record.piece,
            "failed",
            reason=record.error_code,
            error_code=record.error_code,
            parts=parts,
            message_id=record.message_id,
        )
    state: ResultState = "delivered" if record.state == "delivered" else "submitted"
    return PieceResult(record.piece, state, parts=parts, message_id=record.message_id)


def _redis(settings: Settings) -> Any | None:
    """A client of the broker's Redis, where the account's rate is shared; None without one."""
    url = settings.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    return redis.Redis.from_url(url)
