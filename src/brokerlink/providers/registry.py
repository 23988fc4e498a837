"""Choose a provider's connector: one exhaustive `match` on `Provider`."""

from __future__ import annotations

from typing import assert_never

from brokerlink.domain.enums import Provider
from brokerlink.errors import ConfigurationError
from brokerlink.providers.snaptrade.client import SnapTradeClient
from brokerlink.providers.snaptrade.connector import SnapTradeConnector
from brokerlink.secrets.store import SecretStore

__all__ = ["ProviderNotConfigured", "connector_for"]


class ProviderNotConfigured(ConfigurationError):
    """The provider exists but this deployment has no adapter or credentials for it."""


def connector_for(
    provider: Provider,
    *,
    secrets: SecretStore,
    snaptrade_client: SnapTradeClient | None = None,
) -> SnapTradeConnector:
    """The connector serving `provider`, built on clients made at the app's edge."""
    match provider:
        case Provider.SNAPTRADE:
            if snaptrade_client is None:
                raise ProviderNotConfigured("SnapTrade is not configured (no client)")
            return SnapTradeConnector(snaptrade_client, secrets)
        case Provider.PLAID:
            raise ProviderNotConfigured("Plaid is not configured in this build")
        case Provider.MANUAL:
            raise ProviderNotConfigured("manual holdings are entered by the user, not fetched")
        case _:
            assert_never(provider)
