"""The refusals of sign-in and authorisation, under OutreachError (see outreach/errors.py).

OutreachError
├── Unauthenticated     no valid credentials: unknown account, wrong password, expired/revoked token (401)
├── Forbidden           known caller, not allowed: disabled account, a role without the permission (403)
└── Throttled           too many failed sign-ins for an account or from an address; wait (429)
"""

from __future__ import annotations

from outreach.errors import OutreachError


class Unauthenticated(OutreachError):
    """The caller is not signed in, or its credentials are not valid (any more)."""


class Forbidden(OutreachError):
    """The caller is known but may not do this."""


class Throttled(OutreachError):
    """Too many failed sign-ins; `retry_after` is in seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)
