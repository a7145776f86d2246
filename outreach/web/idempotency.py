"""Idempotency-Key on POSTs that create or spend: the same key and body within 24 hours gets the first
answer again; the same key with another body is a 409. Answers are kept per account, in the database, so
every web process sees them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from outreach.accounts.auth_models import IdempotentAnswer
from outreach.db import utcnow
from outreach.errors import Conflict, InputError
from outreach.i18n import _
from outreach.web.dependencies import Principal

KEEP = timedelta(hours=24)
MAX_KEY = 200


def answer(
    *,
    request: Request,
    session: Session,
    principal: Principal,
    body: Any,
    compute: Callable[[], tuple[int, Any]],
) -> JSONResponse:
    """Runs `compute` once per Idempotency-Key (when the request has one) and replays its answer."""
    key = request.headers.get("idempotency-key")
    if key is None:
        status, payload = compute()
        return JSONResponse(jsonable_encoder(payload), status_code=status)
    key = key.strip()
    if not key or len(key) > MAX_KEY:
        raise InputError(_("an Idempotency-Key has 1 to {n} characters", n=MAX_KEY))
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    request_digest = hashlib.sha256(f"{request.method} {request.url.path}\n{canonical}".encode()).hexdigest()
    now = utcnow()
    session.execute(
        delete(IdempotentAnswer).where(
            IdempotentAnswer.account_id == principal.account_id,
            IdempotentAnswer.created_at < now - KEEP,
        )
    )
    kept = session.scalar(
        select(IdempotentAnswer).where(
            IdempotentAnswer.account_id == principal.account_id, IdempotentAnswer.key == key
        )
    )
    if kept is not None:
        if kept.request_digest != request_digest:
            raise Conflict(_("Idempotency-Key {key} was used with another request", key=key))
        return JSONResponse(
            json.loads(kept.body), status_code=kept.status, headers={"Idempotent-Replayed": "true"}
        )
    status, result = compute()
    payload = jsonable_encoder(result)
    stored = json.dumps(payload, ensure_ascii=False).encode()
    try:
        with session.begin_nested():
            session.add(
                IdempotentAnswer(
                    account_id=principal.account_id,
                    key=key,
                    request_digest=request_digest,
                    status=status,
                    body=stored,
                    created_at=now,
                )
            )
    except IntegrityError as exc:
        # Another process answered the same key a moment ago; this request's work rolls back with it.
        raise Conflict(
            _("a request with Idempotency-Key {key} is being answered; retry it", key=key)
        ) from exc
    return JSONResponse(payload, status_code=status)
