"""Accounts: adding, listing and disabling them, Argon2 passwords, throttled sign-in, and browser sessions."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from outreach.accounts import audit
from outreach.accounts.auth_models import ROLES, ROLES_BY_KIND, Account, ApiToken, LoginAttempt, WebSession
from outreach.accounts.errors import Forbidden, Throttled, Unauthenticated
from outreach.accounts.models import Organisation
from outreach.db import utcnow
from outreach.errors import Conflict, InputError, NotFound
from outreach.i18n import _

# argon2-cffi's defaults are Argon2id with RFC 9106's low-memory parameters (64 MiB, t=3, p=4).
_hasher = PasswordHasher()
# Verified against when the account does not exist, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("no account has this password")

MIN_PASSWORD_LENGTH = 10
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20
SESSION_LIFETIME = timedelta(hours=12)


def hash_secret(secret: str) -> str:
    """The SHA-256 of a random secret (session id, API token): enough for 256-bit random values."""
    return hashlib.sha256(secret.encode()).hexdigest()


def organisation_by_name(*, session: Session, name: str) -> Organisation:
    """The organisation called `name`."""
    org = session.scalar(select(Organisation).where(Organisation.name == name))
    if org is None:
        raise NotFound(_("no organisation called {name}", name=name))
    return org


def ensure_union(*, session: Session, name: str) -> Organisation:
    """The union's organisation called `name`, made when there is no union yet (the first admin)."""
    org = session.scalar(select(Organisation).where(Organisation.name == name))
    if org is not None:
        return org
    if session.scalar(select(Organisation).where(Organisation.kind == "union")) is not None:
        raise NotFound(_("no organisation called {name}", name=name))
    org = Organisation(kind="union", name=name, active=True)
    session.add(org)
    session.flush()
    return org


def check_password(password: str) -> None:
    """Refuses a password too short to be safe."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(_("a password needs at least {n} characters", n=MIN_PASSWORD_LENGTH))


def add(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    organisation: Organisation,
    display_name: str | None = None,
) -> Account:
    """Adds an account to an organisation with a role its kind allows."""
    name = username.strip().lower()
    if not USERNAME.match(name):
        raise InputError(
            _(
                "“{name}” is not a usable account name: 2-64 lowercase letters, digits, . _ @ -",
                name=username,
            )
        )
    if role not in ROLES:
        raise InputError(_("unknown role {role}; roles are {roles}", role=role, roles=", ".join(ROLES)))
    allowed_roles = ROLES_BY_KIND.get(organisation.kind, ())
    if role not in allowed_roles:
        raise InputError(
            _(
                "an account of {org} ({kind}) can have the roles {roles}, not {role}",
                org=organisation.name,
                kind=organisation.kind,
                roles=", ".join(allowed_roles),
                role=role,
            )
        )
    check_password(password)
    if session.scalar(select(Account.id).where(Account.username == name)) is not None:
        raise Conflict(_("there is already an account called {name}", name=name))
    account = Account(
        organisation_id=organisation.id,
        username=name,
        display_name=display_name,
        role=role,
        password_hash=_hasher.hash(password),
        active=True,
    )
    session.add(account)
    session.flush()
    return account


def get(*, session: Session, username: str) -> Account:
    """The account called `username`."""
    account = session.scalar(select(Account).where(Account.username == username.strip().lower()))
    if account is None:
        raise NotFound(_("no account called {name}", name=username))
    return account


def list_accounts(*, session: Session) -> Sequence[tuple[Account, Organisation]]:
    """Every account with its organisation, by organisation and name."""
    stmt = (
        select(Account, Organisation)
        .join(Organisation, Organisation.id == Account.organisation_id)
        .order_by(Organisation.name, Account.username)
    )
    return [(a, o) for a, o in session.execute(stmt).all()]


def state_of(account: Account) -> dict[str, object]:
    """What the audit log digests of an account (never the password hash)."""
    return {
        "username": account.username,
        "role": account.role,
        "organisation_id": account.organisation_id,
        "active": account.active,
    }


def disable(*, session: Session, username: str) -> Account:
    """Disables an account: ends its sessions and revokes its tokens; it can no longer sign in."""
    account = get(session=session, username=username)
    now = utcnow()
    account.active = False
    account.disabled_at = account.disabled_at or now
    session.execute(
        update(WebSession)
        .where(WebSession.account_id == account.id, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    session.execute(
        update(ApiToken)
        .where(ApiToken.account_id == account.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.flush()
    return account


def set_password(*, session: Session, account: Account, password: str) -> None:
    """Sets a new password."""
    check_password(password)
    account.password_hash = _hasher.hash(password)
    session.flush()


@dataclass(frozen=True)
class Failure:
    """Why a sign-in failed: the audit action and the refusal to raise."""

    action: str
    error: Unauthenticated | Forbidden | Throttled


def check_throttle(*, session: Session, username: str, address: str) -> None:
    """Refuses a sign-in after too many recent failures for the account or from the address."""
    since = utcnow() - THROTTLE_WINDOW
    for column, value, limit in (
        (LoginAttempt.username, username.strip().lower(), MAX_FAILURES_PER_ACCOUNT),
        (LoginAttempt.address, address, MAX_FAILURES_PER_ADDRESS),
    ):
        count = session.scalar(select(func.count()).where(column == value, LoginAttempt.at >= since)) or 0
        if count >= limit:
            raise Throttled(
                _("too many failed sign-ins; try again in {minutes} minutes", minutes=15),
                retry_after=int(THROTTLE_WINDOW.total_seconds()),
            )


def authenticate(*, session: Session, username: str, password: str, address: str) -> Account:
    """The account whose name and password these are; raises Throttled, Unauthenticated or Forbidden.

    The caller records a failure with `record_failure` in a transaction of its own (this one rolls back).
    """
    check_throttle(session=session, username=username, address=address)
    account = session.scalar(select(Account).where(Account.username == username.strip().lower()))
    try:
        _hasher.verify(account.password_hash if account else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        account = None
    else:
        if account is not None and _hasher.check_needs_rehash(account.password_hash):
            account.password_hash = _hasher.hash(password)
    if account is None:
        raise Unauthenticated(_("wrong account name or password"))
    if not account.active:
        raise Forbidden(_("account {name} is disabled", name=account.username))
    return account


def record_failure(*, session: Session, username: str, address: str, reason: str) -> None:
    """Counts a failed sign-in toward the throttle and writes it to the audit log."""
    name = username.strip().lower()[:64]
    now = utcnow()
    # Attempts older than the window no longer count; dropping them keeps the table as small as the window.
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - THROTTLE_WINDOW))
    session.add(LoginAttempt(username=name, address=address, at=now))
    account = session.scalar(select(Account).where(Account.username == name))
    audit.record(
        session=session,
        actor=audit.Actor(
            account_id=account.id if account else None,
            username=name,
            organisation_id=account.organisation_id if account else None,
            address=address,
        ),
        action="login.failed",
        detail=reason,
    )


def start_session(*, session: Session, account: Account, address: str) -> tuple[WebSession, str]:
    """Opens a browser session; returns it and the random id that goes in the cookie (not stored)."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    # The account's sessions that can no longer be used go when it signs in again.
    session.execute(
        delete(WebSession).where(
            WebSession.account_id == account.id,
            or_(WebSession.expires_at <= now, WebSession.ended_at.is_not(None)),
        )
    )
    row = WebSession(
        id_hash=hash_secret(secret),
        account_id=account.id,
        csrf_token=secrets.token_urlsafe(32),
        address=address,
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(row)
    session.flush()
    return row, secret


def resolve_session(*, session: Session, secret: str) -> tuple[WebSession, Account] | None:
    """The live session and account a cookie names, or None (unknown, expired, ended, disabled)."""
    row = session.scalar(select(WebSession).where(WebSession.id_hash == hash_secret(secret)))
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    account = session.get(Account, row.account_id)
    if account is None or not account.active:
        return None
    return row, account


def end_session(*, session: Session, web_session: WebSession) -> None:
    """Signs a browser out."""
    web_session.ended_at = utcnow()
    session.flush()
