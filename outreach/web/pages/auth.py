"""Sign-in, sign-out and the start page."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from outreach.accounts import audit, permissions, users
from outreach.accounts.auth_models import WebSession
from outreach.accounts.errors import Forbidden, Throttled, Unauthenticated
from outreach.i18n import _
from outreach.web.dependencies import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    DbSession,
    Principal,
    client_address,
    current_principal,
)
from outreach.web.pages.home import home_page
from outreach.web.pages.render import render

router = APIRouter(include_in_schema=False)


def _login_page(
    request: Request, *, status: int = 200, error: str | None = None, username: str = ""
) -> Response:
    # The sign-in form has no session yet: its CSRF token is a cookie that the form must echo (double submit).
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request, "login.html", status=status, principal=None, csrf_token=token, error=error, username=username
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _login_page(
            request, status=403, error=_("the form has expired; please sign in again"), username=username
        )
    address = client_address(request)
    try:
        account = users.authenticate(session=session, username=username, password=password, address=address)
    except (Unauthenticated, Forbidden, Throttled) as exc:
        session.rollback()
        if isinstance(exc, Throttled):
            audit.record(
                session=session,
                actor=audit.Actor(username=username.strip().lower()[:64], address=address),
                action="login.throttled",
                detail=str(exc),
            )
        else:
            users.record_failure(session=session, username=username, address=address, reason=str(exc))
        session.commit()
        status = 429 if isinstance(exc, Throttled) else 403 if isinstance(exc, Forbidden) else 401
        return _login_page(request, status=status, error=str(exc), username=username)
    web_session, secret = users.start_session(session=session, account=account, address=address)
    audit.record(
        session=session,
        actor=audit.Actor(
            account_id=account.id,
            username=account.username,
            organisation_id=account.organisation_id,
            address=address,
        ),
        action="login",
        object_type="session",
        object_id=web_session.id,
    )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=int(users.SESSION_LIFETIME.total_seconds()),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(session: DbSession, principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    found = session.get(WebSession, principal.session_id) if principal.session_id else None
    if found is not None:
        users.end_session(session=session, web_session=found)
        audit.record(
            session=session, actor=principal.actor, action="logout", object_type="session", object_id=found.id
        )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(
    request: Request, session: DbSession, principal: Annotated[Principal, Depends(current_principal)]
) -> Response:
    if permissions.allowed(principal.role, "batches.read"):
        return RedirectResponse("/portal", status_code=303)
    if permissions.allowed(principal.role, "offers.redeem"):
        return RedirectResponse("/counter", status_code=303)
    return home_page(request, session, principal)
