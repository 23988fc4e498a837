"""SnapTrade failures as typed errors, each also one of the neutral `domain.errors` classes.

    SnapTradeError (ProviderError)                    operation, status, code, request_id
    ├── SnapTradeConnectionError  (ProviderUnavailable)  connect/read failure or timeout
    ├── SnapTradeServerError      (ProviderUnavailable)  5xx, 408, 425
    ├── SnapTradeRateLimited      (RateLimited)          429; `retry_after` seconds when known
    ├── SnapTradeMalformedResponse(MalformedResponse)    body not JSON / not the documented shape
    ├── SnapTradeAuthError        (AuthFailed)           401/403 (1076 signature, 1077 timestamp,
    │   │                                                 1078 clientId, 1066 permission, ...)
    │   └── UserSecretInvalid                            401 1083: the user's secret is stale
    ├── SnapTradeConnectionDisabled (ReconnectRequired)  402 3003: the user must reconnect
    ├── SnapTradeNotFound         (NotFound)             404 (1011), 410
    └── SnapTradeBadRequest       (ProviderRejected)     400 (1012), 402, 422 and other 4xx

`error_from_response` and `error_from_exception` are the only places that choose a class. The
message is the operation, the server's `detail` (itself scrubbed) and its code; never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from brokerlink.domain.enums import Provider
from brokerlink.domain.errors import (
    AuthFailed,
    MalformedResponse,
    NotFound,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    ReconnectRequired,
)
from brokerlink.log import redact_text

__all__ = [
    "SnapTradeAuthError",
    "SnapTradeBadRequest",
    "SnapTradeConnectionDisabled",
    "SnapTradeConnectionError",
    "SnapTradeError",
    "SnapTradeMalformedResponse",
    "SnapTradeNotFound",
    "SnapTradeRateLimited",
    "SnapTradeServerError",
    "UserSecretInvalid",
    "error_from_exception",
    "error_from_response",
]

USER_SECRET_INVALID = "1083"
CONNECTION_DISABLED = "3003"
_MAX_DETAIL = 200


class SnapTradeError(ProviderError):
    """Root of every error the SnapTrade adapter raises."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            provider=Provider.SNAPTRADE,
            operation=operation,
            status=status,
            code=code,
            request_id=request_id,
        )


class SnapTradeConnectionError(SnapTradeError, ProviderUnavailable):
    pass


class SnapTradeServerError(SnapTradeError, ProviderUnavailable):
    pass


class SnapTradeRateLimited(SnapTradeError, RateLimited):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class SnapTradeMalformedResponse(SnapTradeError, MalformedResponse):
    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.field = field


class SnapTradeAuthError(SnapTradeError, AuthFailed):
    pass


class UserSecretInvalid(SnapTradeAuthError):
    """The user's secret was rejected; the connector may rotate it once."""


class SnapTradeConnectionDisabled(SnapTradeError, ReconnectRequired):
    pass


class SnapTradeNotFound(SnapTradeError, NotFound):
    pass


class SnapTradeBadRequest(SnapTradeError, ProviderRejected):
    pass


def parse_error_body(body: Any) -> tuple[str | None, str | None]:
    """(code, detail) from `{"detail", "status_code", "code"}`, falling back to `default_*`."""
    if not isinstance(body, Mapping):
        return None, None
    code = body.get("code", body.get("default_code"))
    detail = body.get("detail", body.get("default_detail"))
    if detail is None and isinstance(body.get("error"), str):
        detail = body["error"]
    return (
        None if code is None else str(code),
        None if detail is None else redact_text(str(detail))[:_MAX_DETAIL],
    )


def error_from_response(
    operation: str,
    status: int,
    body: Any,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> SnapTradeError:
    """The error for a non-2xx answer. `body` is the parsed JSON (or None)."""
    code, detail = parse_error_body(body)
    message = detail or f"HTTP {status}"
    kw: dict[str, Any] = {
        "operation": operation,
        "status": status,
        "code": code,
        "request_id": request_id,
    }
    if status == 429:
        return SnapTradeRateLimited(message, retry_after=retry_after, **kw)
    if status in (401, 403):
        if code == USER_SECRET_INVALID:
            return UserSecretInvalid(message, **kw)
        return SnapTradeAuthError(message, **kw)
    if code == CONNECTION_DISABLED:
        return SnapTradeConnectionDisabled(message, **kw)
    if status in (404, 410):
        return SnapTradeNotFound(message, **kw)
    if status in (408, 425) or status >= 500:
        return SnapTradeServerError(message, **kw)
    return SnapTradeBadRequest(message, **kw)


def error_from_exception(operation: str, exc: BaseException) -> SnapTradeError:
    """The error for a transport failure (nothing usable came back)."""
    if isinstance(exc, httpx.TimeoutException):
        return SnapTradeConnectionError(f"timed out ({type(exc).__name__})", operation=operation)
    return SnapTradeConnectionError(
        f"could not reach SnapTrade ({type(exc).__name__})", operation=operation
    )
