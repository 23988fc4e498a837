"""One JSON shape for every error the API answers with.

    {"error": {"code": "refresh_too_soon", "message": "...", "reason": "...",
               "next_allowed_at": "2026-11-29T10:00:00Z", "field": "..."}}

`code` is stable (clients branch on it); `message` is for people. Application errors carry their
own status (`BrokerlinkError.status_code`); provider errors map by family, so "could not fetch"
is never an empty success; request validation names the field; anything else is a 500 whose
body says nothing about the internals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from brokerlink.domain.errors import (
    AuthFailed,
    NotFound,
    ProviderError,
    ProviderRejected,
    RateLimited,
)
from brokerlink.errors import BrokerlinkError

__all__ = ["error_body", "install_exception_handlers"]

log = structlog.get_logger("brokerlink.api")


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    for key, value in extra.items():
        if value is None:
            continue
        body[key] = _iso(value) if isinstance(value, datetime) else value
    return {"error": body}


def _provider_status(error: ProviderError) -> tuple[int, str]:
    if isinstance(error, AuthFailed):
        return 409, "reconnect_required"
    if isinstance(error, RateLimited):
        return 503, "provider_rate_limited"
    if isinstance(error, NotFound):
        return 404, "provider_not_found"
    if isinstance(error, ProviderRejected):
        return 422, "provider_rejected"
    return 502, "provider_unavailable"


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BrokerlinkError)
    extra: dict[str, Any] = {}
    for name in ("field", "reason", "next_allowed_at", "remaining", "budget", "can_override"):
        value = getattr(exc, name, None)
        if value is not None:
            extra[name] = str(value) if name in ("remaining", "budget") else value
    headers = {}
    next_at = getattr(exc, "next_allowed_at", None)
    retry_after = getattr(exc, "retry_after", None)
    if exc.status_code == 429 and isinstance(retry_after, int):
        # Worked out by the error itself, on the app's clock.
        headers["Retry-After"] = str(retry_after)
    elif exc.status_code == 429 and isinstance(next_at, datetime):
        headers["Retry-After"] = str(
            max(0, int((next_at - datetime.now(next_at.tzinfo)).total_seconds()))
        )
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        error_body(exc.code, exc.message, **extra), status_code=exc.status_code, headers=headers
    )


async def _provider_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProviderError)
    status, code = _provider_status(exc)
    log.warning("api.provider.failed", path=request.url.path, error=str(exc), code=code)
    headers = {}
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers["Retry-After"] = str(int(exc.retry_after + 0.999))
    return JSONResponse(
        error_body(
            code,
            f"{exc.provider.value} could not complete {exc.operation}: {exc.message}",
            provider=exc.provider.value,
            provider_code=exc.code,
            request_id=exc.request_id,
        ),
        status_code=status,
        headers=headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for item in exc.errors():
        loc = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path", "header")]
        errors.append({"field": ".".join(loc) or None, "message": item.get("msg", "invalid")})
    first = errors[0] if errors else {"field": None, "message": "invalid request"}
    message = str(first["message"])
    if first["field"]:
        message = f"{first['field']}: {message}"
    return JSONResponse(
        error_body("validation_error", message, field=first["field"], errors=errors),
        status_code=422,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated"}
    return JSONResponse(
        error_body(codes.get(exc.status_code, f"http_{exc.status_code}"), str(exc.detail)),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # A value the database cannot hold (a NUL character in text, a number past a column's
    # precision) is the request's fault; the transaction was rolled back, nothing was written.
    assert isinstance(exc, StatementError)
    if isinstance(exc, DataError) or isinstance(exc.orig, ValueError):
        log.info("api.request.unstorable", path=request.url.path, error=str(exc.orig))
        return JSONResponse(
            error_body("unstorable_value", f"a value in the request cannot be stored: {exc.orig}"),
            status_code=422,
        )
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("api.request.failed", path=request.url.path, error=repr(exc))
    return JSONResponse(
        error_body("internal_error", "something went wrong on our side; nothing was changed"),
        status_code=500,
    )


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BrokerlinkError, _app_error)
    app.add_exception_handler(ProviderError, _provider_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StatementError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
