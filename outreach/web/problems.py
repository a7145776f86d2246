"""Errors as RFC 9457 problem documents (application/problem+json), with the wording the CLI gives.

Each OutreachError subclass maps to one status and one problem type; the detail is the error's own (Chinese)
message, so the API, the pages and the command line say the same thing. A QueryError keeps its position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from outreach.accounts.errors import Forbidden, Throttled, Unauthenticated
from outreach.errors import (
    BudgetExceeded,
    Conflict,
    InputError,
    NotFound,
    OutreachError,
    QueryError,
    SchemaMissing,
    StateError,
    StorageError,
)
from outreach.i18n import N_, _, translate

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    """How one kind of error is answered."""

    status: int
    slug: str
    title: str


# Most specific first: the first class an error is an instance of decides.
PROBLEM_TYPES: tuple[tuple[type[OutreachError], ProblemType], ...] = (
    (QueryError, ProblemType(422, "query-error", N_("The audience expression is not valid"))),
    (InputError, ProblemType(422, "invalid-input", N_("The input is not valid"))),
    (NotFound, ProblemType(404, "not-found", N_("Not found"))),
    (BudgetExceeded, ProblemType(409, "budget-exceeded", N_("The budget would be overspent"))),
    (StateError, ProblemType(409, "wrong-state", N_("Not allowed in the current state"))),
    (Conflict, ProblemType(409, "conflict", N_("Conflicts with what is stored"))),
    (Unauthenticated, ProblemType(401, "unauthenticated", N_("Sign-in required"))),
    (Forbidden, ProblemType(403, "forbidden", N_("Not allowed"))),
    (Throttled, ProblemType(429, "throttled", N_("Too many attempts"))),
    (SchemaMissing, ProblemType(503, "schema-missing", N_("The database is not ready"))),
    (StorageError, ProblemType(503, "storage-unavailable", N_("Batch-file storage failed"))),
    (OutreachError, ProblemType(400, "refused", N_("Refused"))),
)


def problem_type(exc: OutreachError) -> ProblemType:
    """The problem type of an error."""
    for cls, kind in PROBLEM_TYPES:
        if isinstance(exc, cls):
            return kind
    raise AssertionError("OutreachError is the last entry")  # pragma: no cover


def document(
    *, status: int, slug: str, title: str, detail: str, instance: str, **extra: Any
) -> dict[str, Any]:
    """A problem document."""
    return {
        "type": f"/api/v1/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }


def problem_response(
    *, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    """A problem document as a response."""
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def from_error(exc: OutreachError, request: Request) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status, problem document and headers that answer an OutreachError."""
    kind = problem_type(exc)
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, QueryError):
        # The caret picture is in the detail (as on the terminal); clients also get the position itself.
        extra = {"position": exc.position, "expression": exc.text, "message": exc.message}
    if isinstance(exc, Throttled):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="outreach"'
    if isinstance(exc, StorageError):
        extra = {"kind": exc.kind}
    body = document(
        status=kind.status,
        slug=kind.slug,
        title=translate(kind.title),
        detail=str(exc),
        instance=request.url.path,
        **extra,
    )
    return kind.status, body, headers


def from_validation(exc: RequestValidationError, request: Request) -> dict[str, Any]:
    """A problem document for a request FastAPI could not parse: each field, where and why."""
    errors = [
        {"where": ".".join(str(part) for part in error.get("loc", ())), "why": str(error.get("msg", ""))}
        for error in exc.errors()
    ]
    detail = "; ".join(_("{where}: {why}", where=e["where"], why=e["why"]) for e in errors)
    return document(
        status=422,
        slug="invalid-request",
        title=_("The request is not valid"),
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )


def from_http(exc: StarletteHTTPException, request: Request) -> dict[str, Any]:
    """A problem document for routing errors (no such path, wrong method)."""
    titles = {404: N_("Not found"), 405: N_("Method not allowed")}
    title = translate(titles.get(exc.status_code, N_("Refused")))
    detail = title if exc.status_code in titles else str(exc.detail)
    return document(
        status=exc.status_code,
        slug=f"http-{exc.status_code}",
        title=title,
        detail=detail,
        instance=request.url.path,
    )
