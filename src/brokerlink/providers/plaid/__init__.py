"""Plaid: banks, retirement plans and brokerages SnapTrade does not cover, read only.

`PlaidClient` speaks Plaid's HTTP API (no SDK); `PlaidConnector` implements the neutral
`InvestmentsConnector` over it, finding Items through an injected `ItemDirectory` (`items`);
`normalize` turns Plaid's payloads into domain models; `errors` maps Plaid's error object onto
the domain error tree.
"""

from .client import PLAID_VERSION, PlaidClient
from .connector import PlaidConnector, WebhookOutcome
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
from .items import ItemDirectory, PlaidItem
from .linking import LinkNotOpened, LinkProducts, products_for

__all__ = [
    "PLAID_VERSION",
    "InstitutionDown",
    "InvalidAccessToken",
    "ItemNotFound",
    "ItemDirectory",
    "LinkNotOpened",
    "LinkProducts",
    "LoginRequired",
    "PlaidAuthFailed",
    "PlaidClient",
    "PlaidConnector",
    "PlaidError",
    "PlaidItem",
    "PlaidMalformedResponse",
    "PlaidRateLimited",
    "PlaidRejected",
    "PlaidUnavailable",
    "ProductNotReady",
    "ProductsNotSupported",
    "WebhookOutcome",
    "products_for",
]
