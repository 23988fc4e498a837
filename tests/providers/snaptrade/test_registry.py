"""`connector_for` dispatch and the package's public surface."""

from __future__ import annotations

import pytest

import brokerlink.providers.snaptrade as snaptrade
from brokerlink.domain import Provider
from brokerlink.providers.registry import ProviderNotConfigured, connector_for
from brokerlink.providers.snaptrade import (
    SnapTradeClient,
    SnapTradeConnector,
)
from brokerlink.secrets import MemorySecretStore


class TestConnectorFor:
    @pytest.mark.asyncio
    async def test_snaptrade(self):
        async with SnapTradeClient("C", "K") as client:
            connector = connector_for(
                Provider.SNAPTRADE, secrets=MemorySecretStore(), snaptrade_client=client
            )
        assert isinstance(connector, SnapTradeConnector)
        assert connector.provider is Provider.SNAPTRADE

    def test_snaptrade_without_client(self):
        with pytest.raises(ProviderNotConfigured, match="SnapTrade"):
            connector_for(Provider.SNAPTRADE, secrets=MemorySecretStore())

    @pytest.mark.parametrize("provider", [Provider.PLAID, Provider.MANUAL])
    def test_others_are_typed_errors(self, provider):
        with pytest.raises(ProviderNotConfigured):
            connector_for(provider, secrets=MemorySecretStore())

    def test_every_provider_is_handled(self):
        for provider in Provider:
            try:
                connector_for(provider, secrets=MemorySecretStore())
            except ProviderNotConfigured:
                pass


def test_exported_members():
    assert sorted(snaptrade.__all__) == [
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
    for name in snaptrade.__all__:
        assert hasattr(snaptrade, name)
