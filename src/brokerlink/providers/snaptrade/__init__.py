"""SnapTrade: signed HTTP client, typed errors, normalisers and the domain connector."""

from brokerlink.providers.snaptrade.client import DEFAULT_BASE_URL, PortalLink, SnapTradeClient
from brokerlink.providers.snaptrade.connector import SnapTradeConnector
from brokerlink.providers.snaptrade.errors import (
    SnapTradeAuthError,
    SnapTradeBadRequest,
    SnapTradeConnectionDisabled,
    SnapTradeConnectionError,
    SnapTradeError,
    SnapTradeMalformedResponse,
    SnapTradeNotFound,
    SnapTradeRateLimited,
    SnapTradeServerError,
    UserSecretInvalid,
)
from brokerlink.providers.snaptrade.signing import sign

__all__ = [
    "DEFAULT_BASE_URL",
    "PortalLink",
    "SnapTradeAuthError",
    "SnapTradeBadRequest",
    "SnapTradeClient",
    "SnapTradeConnectionDisabled",
    "SnapTradeConnectionError",
    "SnapTradeConnector",
    "SnapTradeError",
    "SnapTradeMalformedResponse",
    "SnapTradeNotFound",
    "SnapTradeRateLimited",
    "SnapTradeServerError",
    "UserSecretInvalid",
    "sign",
]
