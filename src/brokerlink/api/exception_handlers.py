"""One JSON shape for every error the API answers with.

    {"error": {"code": "refresh_too_soon", "message": "...", "reason": "...",
               "next_allowed_at": "2026-11-29T10:00:00Z", "field": "..."}}

`code` is stable (clients branch on it); `message` is for people. Application errors carry their
own status (`BrokerlinkError.status_code`); provider errors map by family, so "could not fetch"
is never an empty success; request validation names the field; a body that is not JSON is 400
`invalid_json` (`field: "body"`), answered only after the caller is known (FastAPI reads the
body before a route's dependencies, so the sign-in check is made here first: a signed-out
caller gets 401 whatever the body); anything else is a 500 whose body says nothing about the
internals.

The API (`/api/...`, `/health`, `/openapi.json`) and the providers' webhooks (`/webhooks/...`)
always answer JSON. Any other path is the web
app's: when the app has an error page (`app.state.error_page`, set by the web app), the same
error is rendered as an HTML page with the same status and code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
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

__all__ = ["ErrorPage", "error_body", "install_exception_handlers", "is_api_path"]

# (request, status, the error body's "error" object, headers) -> the page
ErrorPage = Callable[[Request, int, dict[str, Any], dict[str, str]], Response]
_API_PATHS = frozenset({"/api", "/health", "/openapi.json"})

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


def is_api_path(path: str) -> bool:
    return path in _API_PATHS or path.startswith(("/api/", "/webhooks/"))


def _answer(
    request: Request, body: dict[str, Any], status: int, headers: Mapping[str, str] | None = None
) -> Response:
    page: ErrorPage | None = getattr(request.app.state, "error_page", None)
    if page is not None and not is_api_path(request.url.path):
        return page(request, status, body["error"], dict(headers or {}))
    return JSONResponse(body, status_code=status, headers=headers)


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


async def _app_error(request: Request, exc: Exception) -> Response:
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
    return _answer(request, error_body(exc.code, exc.message, **extra), exc.status_code, headers)


async def _provider_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProviderError)
    status, code = _provider_status(exc)
    log.warning("api.provider.failed", path=request.url.path, error=str(exc), code=code)
    headers = {}
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers["Retry-After"] = str(int(exc.retry_after + 0.999))
    body = error_body(
        code,
        f"{exc.provider.value} could not complete {exc.operation}: {exc.message}",
        provider=exc.provider.value,
        provider_code=exc.code,
        request_id=exc.request_id,
    )
    return _answer(request, body, status, headers)


async def _invalid_json(request: Request, item: dict[str, Any]) -> Response:
    route = request.scope.get("route")
    # deps imports the app state, which imports this module: imported where it is needed.
    from brokerlink.api.deps import current_user, needs_caller

    if isinstance(route, APIRoute) and needs_caller(route.dependant):
        state = request.app.state.brokerlink
        try:
            async with state.sessionmaker() as session:
                await current_user(request, session)
        except BrokerlinkError as error:
            return await _app_error(request, error)
    position = item.get("loc", ("body", None))[-1]
    reason = str((item.get("ctx") or {}).get("error") or "cannot be parsed")
    where = f" at character {position}" if isinstance(position, int) else ""
    body = error_body("invalid_json", f"the body is not valid JSON: {reason}{where}", field="body")
    return _answer(request, body, 400)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    for item in exc.errors():
        if item.get("type") == "json_invalid":
            return await _invalid_json(request, item)
    errors = []
    for item in exc.errors():
        loc = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path", "header")]
        errors.append({"field": ".".join(loc) or None, "message": item.get("msg", "invalid")})
    first = errors[0] if errors else {"field": None, "message": "invalid request"}
    message = str(first["message"])
    if first["field"]:
        message = f"{first['field']}: {message}"
    body = error_body("validation_error", message, field=first["field"], errors=errors)
    return _answer(request, body, 422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated"}
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    return _answer(request, error_body(code, str(exc.detail)), exc.status_code, exc.headers)


async def _database_error(request: Request, exc: Exception) -> Response:
    # A value the database cannot hold (a NUL character in text, a number past a column's
    # precision) is the request's fault; the transaction was rolled back, nothing was written.
    assert isinstance(exc, StatementError)
    if isinstance(exc, DataError) or isinstance(exc.orig, ValueError):
        log.info("api.request.unstorable", path=request.url.path, error=str(exc.orig))
        body = error_body(
            "unstorable_value", f"a value in the request cannot be stored: {exc.orig}"
        )
        return _answer(request, body, 422)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("api.request.failed", path=request.url.path, error=repr(exc))
    body = error_body("internal_error", "something went wrong on our side; nothing was changed")
    return _answer(request, body, 500)


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BrokerlinkError, _app_error)
    app.add_exception_handler(ProviderError, _provider_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StatementError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
