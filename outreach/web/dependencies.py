"""What views depend on: a database session per request, the signed-in caller, `require(permission)`,
the CSRF check of form posts. Authorisation happens here, once; views never look at roles."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from outreach import db
from outreach.accounts import audit, permissions, tokens, users
from outreach.accounts.auth_models import Account
from outreach.accounts.errors import Forbidden, Unauthenticated
from outreach.accounts.models import Organisation
from outreach.db import utcnow
from outreach.i18n import _

SESSION_COOKIE = "outreach_session"
LOGIN_CSRF_COOKIE = "outreach_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# A token's use is written to the audit log at most this often (each request would drown the log).
TOKEN_USE_AUDIT_INTERVAL = timedelta(minutes=10)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_address(request: Request) -> str:
    """The caller's address (uvicorn's --proxy-headers puts the forwarded one here behind a proxy)."""
    return request.client.host if request.client else "unknown"


def get_session() -> Iterator[Session]:
    """A session for the request: committed when the view returns, rolled back when it raises."""
    session = db.session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": the commit happens when the view returns, before the answer is sent.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class Principal:
    """The signed-in caller: an account of an organisation, by browser session or by API token."""

    account_id: int
    username: str
    display_name: str | None
    role: str
    organisation_id: int
    organisation_name: str
    organisation_kind: str
    via: str
    address: str
    csrf_token: str | None = None
    session_id: int | None = None

    @property
    def actor(self) -> audit.Actor:
        """Who to write in the audit log."""
        return audit.Actor(
            account_id=self.account_id,
            username=self.username,
            organisation_id=self.organisation_id,
            address=self.address,
        )


def _principal(
    session: Session, account: Account, *, via: str, address: str, csrf: str | None, sid: int | None
) -> Principal:
    org = session.get(Organisation, account.organisation_id)
    if org is None or not org.active:
        raise Forbidden(_("the organisation of account {name} is not active", name=account.username))
    return Principal(
        account_id=account.id,
        username=account.username,
        display_name=account.display_name,
        role=account.role,
        organisation_id=org.id,
        organisation_name=org.name,
        organisation_kind=org.kind,
        via=via,
        address=address,
        csrf_token=csrf,
        session_id=sid,
    )


def record_refusal(*, session: Session, actor: audit.Actor, action: str, detail: str) -> None:
    """Writes a refusal to the audit log and commits it, before the refusal is raised (which rolls back).

    The request's own session is used, not a second one: on SQLite a second writer would wait for this one.
    """
    session.rollback()
    audit.record(session=session, actor=actor, action=action, detail=detail)
    session.commit()


async def sent_csrf_token(request: Request) -> str | None:
    """The CSRF token an unsafe request carries (header or form field); reads the body, not the database."""
    if request.method in SAFE_METHODS:
        return None
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent


# The dependencies below are plain functions on purpose: FastAPI runs them in its thread pool. Database work
# in an `async def` would block the event loop, and a request waiting for a row lock there would stop the
# request that holds the lock from ever finishing.


def current_principal(
    request: Request, session: DbSession, sent_csrf: Annotated[str | None, Depends(sent_csrf_token)]
) -> Principal:
    """The caller, from `Authorization: Bearer` or the session cookie; 401 without either."""
    address = client_address(request)
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        try:
            token, account = tokens.resolve(session=session, secret=header[7:])
            principal = _principal(session, account, via="token", address=address, csrf=None, sid=None)
        except (Unauthenticated, Forbidden) as exc:
            record_refusal(
                session=session, actor=audit.Actor(address=address), action="token.refused", detail=str(exc)
            )
            raise
        now = utcnow()
        if token.last_used_at is None or now - token.last_used_at >= TOKEN_USE_AUDIT_INTERVAL:
            token.last_used_at = now
            audit.record(
                session=session,
                actor=principal.actor,
                action="token.used",
                object_type="token",
                object_id=token.id,
                detail=f"{request.method} {request.url.path}",
            )
        return principal
    secret = request.cookies.get(SESSION_COOKIE)
    found = users.resolve_session(session=session, secret=secret) if secret else None
    if found is None:
        raise Unauthenticated(_("please sign in (or send an API token as Authorization: Bearer)"))
    web_session, account = found
    principal = _principal(
        session, account, via="session", address=address, csrf=web_session.csrf_token, sid=web_session.id
    )
    if request.method not in SAFE_METHODS:
        _check_csrf(request, principal, session, sent_csrf)
    return principal


def _check_csrf(request: Request, principal: Principal, session: Session, sent: str | None) -> None:
    # A browser session's unsafe request carries the session's CSRF token in a form field or a header;
    # a forged cross-site form cannot know it. Bearer tokens are not sent by browsers on their own.
    if not sent or not principal.csrf_token or not hmac.compare_digest(sent, principal.csrf_token):
        record_refusal(
            session=session,
            actor=principal.actor,
            action="csrf.refused",
            detail=f"{request.method} {request.url.path}",
        )
        raise Forbidden(
            _("the form has expired or did not come from this site; reload the page and try again")
        )


def require(permission: str) -> Callable[..., object]:
    """A dependency that lets the request through only if the caller's role holds `permission`."""
    permissions.PERMISSIONS[permission]  # an unknown permission fails at import, not at request time

    def check(
        request: Request, session: DbSession, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        if not permissions.allowed(principal.role, permission):
            record_refusal(
                session=session,
                actor=principal.actor,
                action="access.denied",
                detail=f"{permission}: {request.method} {request.url.path}",
            )
            raise Forbidden(
                _("role {role} may not do this ({permission})", role=principal.role, permission=permission)
            )
        return principal

    return check
