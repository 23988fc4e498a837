"""Plaid's error object mapped onto the domain's two error families, in one function.

    ProviderError (domain)
    ├── TechnicalError                          # retrying later can succeed
    │   ├── ProviderUnavailable
    │   │   └── PlaidUnavailable                # 5xx, INTERNAL_SERVER_ERROR, PLANNED_MAINTENANCE,
    │   │       │                               #   network failures
    │   │       └── InstitutionDown             # INSTITUTION_DOWN, INSTITUTION_NOT_RESPONDING
    │   ├── ProductNotReady                     # PRODUCT_NOT_READY: data still being extracted
    │   ├── RateLimited
    │   │   └── PlaidRateLimited                # 429, error_type RATE_LIMIT_EXCEEDED
    │   └── MalformedResponse
    │       └── PlaidMalformedResponse          # non-JSON body, unknown error shape, bad field
    └── LogicalError                            # retrying cannot help
        ├── AuthFailed
        │   ├── PlaidAuthFailed                 # INVALID_API_KEYS, UNAUTHORIZED_ENVIRONMENT
        │   ├── InvalidAccessToken              # INVALID_ACCESS_TOKEN
        │   └── ReconnectRequired
        │       └── LoginRequired               # ITEM_LOGIN_REQUIRED (Link update mode fixes it)
        ├── NotFound
        │   └── ItemNotFound                    # ITEM_NOT_FOUND (removed or revoked)
        └── ProviderRejected
            └── PlaidRejected                   # INVALID_REQUEST, INVALID_INPUT, other 4xx
                └── ProductsNotSupported        # PRODUCTS_NOT_SUPPORTED / PRODUCT_NOT_SUPPORTED,
                                                #   PRODUCT_NOT_ENABLED, NO_INVESTMENT_ACCOUNTS

Every class also derives from `PlaidError`, which carries Plaid's `error_type`, `error_code`
(as `code`), `display_message` and `request_id`. Messages name the operation and the error code;
Plaid's own `error_message` is kept with any token-shaped string masked.
"""

from __future__ import annotations

import re
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
    TechnicalError,
)

__all__ = [
    "RETRYABLE_CODES",
    "InstitutionDown",
    "InvalidAccessToken",
    "ItemNotFound",
    "LoginRequired",
    "PlaidAuthFailed",
    "PlaidError",
    "PlaidMalformedResponse",
    "PlaidRateLimited",
    "PlaidRejected",
    "PlaidUnavailable",
    "ProductNotReady",
    "ProductsNotSupported",
    "error_from_response",
    "is_transient",
    "malformed",
    "scrub",
]

# Codes Plaid documents as "try again later"; all other 4xx are final.
RETRYABLE_CODES = frozenset(
    {
        "PRODUCT_NOT_READY",
        "INSTITUTION_DOWN",
        "INSTITUTION_NOT_RESPONDING",
        "INTERNAL_SERVER_ERROR",
        "PLANNED_MAINTENANCE",
    }
)

_TOKEN = re.compile(r"\b(?:access|public|link)-(?:sandbox|development|production)-[A-Za-z0-9-]+")


def scrub(text: str) -> str:
    """Mask anything shaped like a Plaid token (`access-sandbox-…`) in free text."""
    return _TOKEN.sub("[REDACTED]", text)


class PlaidError(ProviderError):
    """Root of every error this adapter raises; mixes into a domain error class."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        error_type: str | None = None,
        display_message: str | None = None,
        plaid_message: str | None = None,
        error_code_reason: str | None = None,
    ) -> None:
        super().__init__(
            message,
            provider=Provider.PLAID,
            operation=operation,
            status=status,
            code=code,
            request_id=request_id,
        )
        self.error_type = error_type
        self.display_message = display_message
        self.plaid_message = plaid_message
        self.error_code_reason = error_code_reason

    @property
    def error_code(self) -> str | None:
        return self.code


class PlaidUnavailable(PlaidError, ProviderUnavailable):
    pass


class InstitutionDown(PlaidUnavailable):
    pass


class ProductNotReady(PlaidError, TechnicalError):
    """The Item's data is still being extracted; retry later with backoff."""


class PlaidRateLimited(PlaidError, RateLimited):
    pass


class PlaidMalformedResponse(PlaidError, MalformedResponse):
    pass


class PlaidAuthFailed(PlaidError, AuthFailed):
    pass


class InvalidAccessToken(PlaidError, AuthFailed):
    pass


class LoginRequired(PlaidError, ReconnectRequired):
    """The user must re-authenticate through Link update mode with the Item's access token."""

    #: The Item concerned, when the adapter knows it.
    item_id: str | None = None


class ItemNotFound(PlaidError, NotFound):
    pass


class PlaidRejected(PlaidError, ProviderRejected):
    pass


class ProductsNotSupported(PlaidRejected):
    pass


_BY_CODE: dict[str, type[PlaidError]] = {
    "ITEM_LOGIN_REQUIRED": LoginRequired,
    "PRODUCT_NOT_READY": ProductNotReady,
    "INSTITUTION_DOWN": InstitutionDown,
    "INSTITUTION_NOT_RESPONDING": InstitutionDown,
    "INTERNAL_SERVER_ERROR": PlaidUnavailable,
    "PLANNED_MAINTENANCE": PlaidUnavailable,
    "INVALID_ACCESS_TOKEN": InvalidAccessToken,
    "INVALID_API_KEYS": PlaidAuthFailed,
    "UNAUTHORIZED_ENVIRONMENT": PlaidAuthFailed,
    "ITEM_NOT_FOUND": ItemNotFound,
    # The refresh docs say PRODUCT_NOT_SUPPORTED, the error pages PRODUCTS_NOT_SUPPORTED.
    "PRODUCTS_NOT_SUPPORTED": ProductsNotSupported,
    "PRODUCT_NOT_SUPPORTED": ProductsNotSupported,
    "PRODUCT_NOT_ENABLED": ProductsNotSupported,
    "NO_INVESTMENT_ACCOUNTS": ProductsNotSupported,
}

_BY_TYPE: dict[str, type[PlaidError]] = {
    "RATE_LIMIT_EXCEEDED": PlaidRateLimited,
    "INSTITUTION_ERROR": InstitutionDown,
    "API_ERROR": PlaidUnavailable,
    "INVALID_REQUEST": PlaidRejected,
    "INVALID_INPUT": PlaidRejected,
    "INVALID_RESULT": PlaidRejected,
}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _class_for_status(status: int) -> type[PlaidError]:
    if status == 429:
        return PlaidRateLimited
    if status >= 500:
        return PlaidUnavailable
    if status in (401, 403):
        return PlaidAuthFailed
    return PlaidRejected


def error_body(response: httpx.Response) -> dict[str, Any] | None:
    """Plaid's error object from a response, or None when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error_code"), str):
        return body
    return None


def error_from_response(
    response: httpx.Response, operation: str, *, retry_after: float | None = None
) -> PlaidError:
    """The typed error for a non-2xx response to `operation`."""
    status = response.status_code
    body = error_body(response)
    if body is None:
        # No Plaid error object: a proxy page, a crash, an empty body.
        cls: type[PlaidError] = (
            _class_for_status(status)
            if status >= 500 or status in (401, 403, 429)
            else PlaidMalformedResponse
        )
        err = cls(
            f"{operation} failed with HTTP {status} and no Plaid error object",
            operation=operation,
            status=status,
            request_id=response.headers.get("x-request-id"),
        )
    else:
        code = str(body["error_code"])
        error_type = _str_or_none(body.get("error_type"))
        cls = _BY_CODE.get(code) or _BY_TYPE.get(error_type or "") or _class_for_status(status)
        if status == 429:
            cls = PlaidRateLimited
        plaid_message = scrub(str(body.get("error_message") or ""))
        message = f"{operation} failed: {code}"
        if plaid_message:
            message += f" ({plaid_message})"
        err = cls(
            message,
            operation=operation,
            status=status,
            code=code,
            request_id=_str_or_none(body.get("request_id")),
            error_type=error_type,
            display_message=_str_or_none(body.get("display_message")),
            plaid_message=plaid_message or None,
            error_code_reason=_str_or_none(body.get("error_code_reason")),
        )
    if isinstance(err, RateLimited):
        err.retry_after = retry_after
    return err


def malformed(
    operation: str, field: str, detail: str, *, request_id: str | None = None
) -> PlaidMalformedResponse:
    """A 2xx payload that breaks Plaid's contract; `field` is the JSON path of the culprit."""
    err = PlaidMalformedResponse(
        f"{operation}: malformed response at {field}: {detail}",
        operation=operation,
        request_id=request_id,
    )
    err.field = field
    return err


def is_transient(response: httpx.Response) -> bool:
    """Plaid answers most failures with HTTP 400: whether this one names a code Plaid documents
    as transient (the status alone cannot say). `RetryPolicy.should_retry` takes it as
    `transient_answer`."""
    body = error_body(response)
    return body is not None and body["error_code"] in RETRYABLE_CODES
