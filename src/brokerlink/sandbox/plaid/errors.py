"""Plaid's error object as the sandbox raises it; messages follow plaid.com/docs/errors/."""

from __future__ import annotations

from typing import Any

__all__ = [
    "PlaidError",
    "invalid_access_token",
    "invalid_api_keys",
    "invalid_credentials",
    "invalid_field",
    "item_login_required",
    "product_not_ready",
    "products_not_supported",
]


class PlaidError(Exception):
    """A refusal the app renders as `{error_type, error_code, error_message, display_message…}`."""

    def __init__(
        self,
        error_type: str,
        error_code: str,
        error_message: str,
        *,
        display_message: str | None = None,
        status: int = 400,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{error_type}/{error_code}: {error_message}")
        self.error_type = error_type
        self.error_code = error_code
        self.error_message = error_message
        self.display_message = display_message
        self.status = status
        self.headers = headers or {}
        self.extra = extra

    def body(self, request_id: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "error_type": self.error_type,
            "error_code": self.error_code,
            "error_code_reason": None,
            "error_message": self.error_message,
            "display_message": self.display_message,
            "documentation_url": f"https://plaid.com/docs/errors/#{self.error_code.lower()}",
            "suggested_action": None,
        }
        if request_id is not None:
            out["request_id"] = request_id
        out.update(self.extra)
        return out

    def webhook_body(self) -> dict[str, Any]:
        """Errors inside webhooks and `item.error` carry `status` and no `request_id`."""
        return {**self.body(None), "status": self.status}


def invalid_field(message: str) -> PlaidError:
    return PlaidError("INVALID_REQUEST", "INVALID_FIELD", message)


def invalid_api_keys() -> PlaidError:
    return PlaidError(
        "INVALID_INPUT",
        "INVALID_API_KEYS",
        "invalid client_id or secret provided",
    )


def invalid_access_token() -> PlaidError:
    return PlaidError(
        "INVALID_INPUT", "INVALID_ACCESS_TOKEN", "could not find matching access token"
    )


def invalid_credentials() -> PlaidError:
    return PlaidError(
        "ITEM_ERROR",
        "INVALID_CREDENTIALS",
        "the provided credentials were not correct",
        display_message="The provided credentials were not correct. Please try again.",
    )


def item_login_required() -> PlaidError:
    return PlaidError(
        "ITEM_ERROR",
        "ITEM_LOGIN_REQUIRED",
        "the login details of this item have changed (credentials, MFA, or required user action) "
        "and a user login is required to update this information. use Link's update mode to "
        "restore the item to a good state",
    )


def product_not_ready() -> PlaidError:
    return PlaidError(
        "ITEM_ERROR",
        "PRODUCT_NOT_READY",
        "the requested product is not yet ready. please provide a webhook or try the request "
        "again later",
    )


def products_not_supported(what: str = "") -> PlaidError:
    return PlaidError("ITEM_ERROR", "PRODUCTS_NOT_SUPPORTED", what)
