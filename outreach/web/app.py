"""The FastAPI application: the API under /api/v1 (OpenAPI at /api/v1/openapi.json), the print-shop portal's
pages, /healthz, and one place that turns every refusal into a problem document or an error page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from outreach import db
from outreach.accounts.errors import Unauthenticated
from outreach.errors import OutreachError
from outreach.i18n import _
from outreach.settings import get_settings
from outreach.web import problems
from outreach.web.api import audit as audit_api
from outreach.web.api import batches as batches_api
from outreach.web.api import me as me_api
from outreach.web.api import offers as offers_api
from outreach.web.api import registry as registry_api
from outreach.web.api import sms_callbacks as sms_api
from outreach.web.api import union as union_api
from outreach.web.api import webhooks as webhooks_api
from outreach.web.pages import approvals as approvals_pages
from outreach.web.pages import audiences as audiences_pages
from outreach.web.pages import audit as audit_pages
from outreach.web.pages import auth as auth_pages
from outreach.web.pages import campaigns as campaigns_pages
from outreach.web.pages import counter as counter_pages
from outreach.web.pages import ledger as ledger_pages
from outreach.web.pages import portal as portal_pages
from outreach.web.pages import registry as registry_pages
from outreach.web.pages import runs as runs_pages
from outreach.web.pages import sms as sms_pages
from outreach.web.pages.render import render_error

API_PREFIX = "/api/v1"
STATIC = Path(__file__).resolve().parent / "static"
DESCRIPTION = """Outreach 的 REST 接口：印刷厂的批次（下载、进度、退信）、审计日志、受众、活动、运行。

认证：浏览器用登录会话（Cookie，表单需带 CSRF 令牌）；程序用 `Authorization: Bearer <API 令牌>`
（由管理员用 `outreach user token` 签发，只显示一次，可吊销，有有效期）。
错误按 RFC 9457 以 application/problem+json 返回，措辞与命令行相同。"""


def _is_api(request: Request) -> bool:
    return request.url.path.startswith((API_PREFIX, "/healthz"))


async def _outreach_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OutreachError)
    if not _is_api(request) and isinstance(exc, Unauthenticated):
        return RedirectResponse("/login", status_code=303)
    status, body, headers = problems.from_error(exc, request)
    if _is_api(request):
        return problems.problem_response(status=status, body=body, headers=headers)
    return render_error(request, status=status, title=body["title"], detail=body["detail"], headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    body = problems.from_validation(exc, request)
    if _is_api(request):
        return problems.problem_response(status=422, body=body)
    return render_error(request, status=422, title=body["title"], detail=body["detail"])


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    body = problems.from_http(exc, request)
    if _is_api(request):
        return problems.problem_response(status=exc.status_code, body=body)
    return render_error(request, status=exc.status_code, title=body["title"], detail=body["detail"])


def healthz() -> JSONResponse:
    """The database answers, and Redis too when a broker is configured; 503 otherwise."""
    checks: dict[str, str] = {}
    ok = True
    try:
        with db.get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        ok = False
        checks["database"] = type(exc).__name__
    broker = get_settings().broker_url
    if broker and broker.startswith(("redis://", "rediss://")):
        import redis

        try:
            client = redis.Redis.from_url(broker, socket_connect_timeout=2, socket_timeout=2)
            client.ping()
            client.close()
            checks["redis"] = "ok"
        except Exception as exc:
            ok = False
            checks["redis"] = type(exc).__name__
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


def _security_headers(app: FastAPI) -> None:
    limit = get_settings().upload_limit_mb * 1024 * 1024

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            body = problems.document(
                status=413,
                slug="too-large",
                title=_("The upload is too large"),
                detail=_("uploads may be at most {mb} MB", mb=limit // (1024 * 1024)),
                instance=request.url.path,
            )
            return problems.problem_response(status=413, body=body)
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith(f"{API_PREFIX}/docs"):
            response.headers.setdefault(
                "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"
            )
        return response


def create_app() -> FastAPI:
    """The web application."""
    app = FastAPI(
        title="Outreach",
        description=DESCRIPTION,
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    handlers: list[tuple[Any, Any]] = [
        (OutreachError, _outreach_error),
        (RequestValidationError, _validation_error),
        (StarletteHTTPException, _http_error),
    ]
    for exc_class, handler in handlers:
        app.add_exception_handler(exc_class, handler)
    _security_headers(app)
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(me_api.router)
    api.include_router(batches_api.router)
    api.include_router(audit_api.router)
    api.include_router(audit_api.processing_router)
    api.include_router(registry_api.router)
    api.include_router(union_api.router)
    api.include_router(sms_api.router)
    api.include_router(offers_api.router)
    api.include_router(webhooks_api.router)
    app.include_router(api)
    app.include_router(auth_pages.router)
    app.include_router(portal_pages.router)
    app.include_router(counter_pages.router)
    app.include_router(audit_pages.router)
    app.include_router(audiences_pages.router)
    app.include_router(registry_pages.router)
    app.include_router(runs_pages.router)
    app.include_router(ledger_pages.router)
    app.include_router(sms_pages.router)
    app.include_router(campaigns_pages.router)
    app.include_router(approvals_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route(
        "/healthz",
        healthz,
        methods=["GET"],
        summary="健康检查",
        description="数据库可用，配置了 Redis 时 Redis 也可用。",
    )
    return app
