"""API tokens for machine clients: random, shown once, kept only as a SHA-256, expiring, revocable."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from outreach.accounts.auth_models import Account, ApiToken
from outreach.accounts.errors import Forbidden, Unauthenticated
from outreach.accounts.users import hash_secret
from outreach.db import utcnow
from outreach.errors import InputError, NotFound
from outreach.i18n import _

TOKEN_PREFIX = "otk_"  # noqa: S105 (a marker that says what the string is, not a secret)
DEFAULT_DAYS = 90
MAX_DAYS = 366


def issue(*, session: Session, account: Account, name: str, days: int = DEFAULT_DAYS) -> tuple[ApiToken, str]:
    """Makes a token for `account`; returns the row and the token, which is never stored or shown again."""
    if not 1 <= days <= MAX_DAYS:
        raise InputError(_("a token lasts 1 to {max} days, not {days}", max=MAX_DAYS, days=days))
    if not account.active:
        raise Forbidden(_("account {name} is disabled", name=account.username))
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    row = ApiToken(
        account_id=account.id,
        name=name.strip()[:100] or "token",
        token_hash=hash_secret(secret),
        prefix=secret[:12],
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(row)
    session.flush()
    return row, secret


def resolve(*, session: Session, secret: str) -> tuple[ApiToken, Account]:
    """The token and account a bearer token names; refuses unknown, expired, revoked, a disabled account."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(secret.strip())))
    if row is None:
        raise Unauthenticated(_("unknown API token"))
    if row.revoked_at is not None:
        raise Unauthenticated(_("API token {prefix}… was revoked", prefix=row.prefix))
    if row.expires_at <= utcnow():
        raise Unauthenticated(_("API token {prefix}… has expired", prefix=row.prefix))
    account = session.get(Account, row.account_id)
    if account is None or not account.active:
        raise Forbidden(_("account {name} is disabled", name=account.username if account else "?"))
    return row, account


def list_tokens(*, session: Session, account: Account) -> Sequence[ApiToken]:
    """An account's tokens, newest first."""
    stmt = select(ApiToken).where(ApiToken.account_id == account.id).order_by(ApiToken.id.desc())
    return session.scalars(stmt).all()


def revoke(*, session: Session, account: Account, token_id: int) -> ApiToken:
    """Revokes one of an account's tokens (at once, for every process)."""
    row = session.get(ApiToken, token_id)
    if row is None or row.account_id != account.id:
        raise NotFound(_("account {name} has no token {id}", name=account.username, id=token_id))
    row.revoked_at = row.revoked_at or utcnow()
    session.flush()
    return row
