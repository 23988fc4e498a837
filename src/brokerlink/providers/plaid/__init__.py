"""Plaid: banks, retirement plans and brokerages SnapTrade does not cover, read only.

`PlaidClient` speaks Plaid's HTTP API (no SDK); `PlaidConnector` implements the neutral
`InvestmentsConnector` over it; `normalize` turns Plaid's payloads into domain models; `errors`
maps Plaid's error object onto the domain error tree.
"""

from .client import PLAID_VERSION, PlaidClient
from .connector import ItemRecord, PlaidConnector, WebhookOutcome
from .errors import (
    InstitutionDown,
    InvalidAccessToken,
    ItemNotFound,
    LoginRequired,
    PlaidAuthFailed,
    PlaidError,
    PlaidMalformedResponse,
    PlaidRateLimited,
    PlaidRejected,
    PlaidUnavailable,
    ProductNotReady,
    ProductsNotSupported,
)
from .linking import LinkNotOpened, LinkProducts, products_for

__all__ = [
    "PLAID_VERSION",
    "InstitutionDown",
    "InvalidAccessToken",
    "ItemNotFound",
    "ItemRecord",
    "LinkNotOpened",
    "LinkProducts",
    "LoginRequired",
    "PlaidAuthFailed",
    "PlaidClient",
    "PlaidConnector",
    "PlaidError",
    "PlaidMalformedResponse",
    "PlaidRateLimited",
    "PlaidRejected",
    "PlaidUnavailable",
    "ProductNotReady",
    "ProductsNotSupported",
    "WebhookOutcome",
    "products_for",
]
