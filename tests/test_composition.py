"""The composition root decides which provider clients exist, observed at the SnapTrade sandbox
(which checks every request's clientId and signature)."""

from __future__ import annotations

import pytest

from brokerlink.cli.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CONSUMER_KEY
from brokerlink.composition import open_clients
from brokerlink.config import Settings
from brokerlink.domain.errors import ProviderError
from brokerlink.sandbox import snaptrade as snaptrade_sandbox
from tests.fixtures.uvicorn_thread import serve_in_thread

pytestmark = pytest.mark.asyncio

LIVE = {"snaptrade_client_id": "live-client", "snaptrade_consumer_key": "ck-not-a-real-key"}


@pytest.fixture
def snaptrade_url():
    app = snaptrade_sandbox.create_app(
        client_id=SANDBOX_CLIENT_ID, consumer_key=SANDBOX_CONSUMER_KEY
    )
    with serve_in_thread(app) as url:
        yield url


async def test_no_credentials_and_no_url_means_no_clients():
    async with open_clients(Settings()) as clients:
        assert clients.snaptrade is None
        assert clients.plaid is None


async def test_a_sandbox_url_without_credentials_uses_the_sandbox_credentials(snaptrade_url):
    async with open_clients(Settings(), snaptrade_url=snaptrade_url) as clients:
        assert clients.snaptrade is not None
        assert await clients.snaptrade.list_brokerages()


async def test_real_credentials_are_sent_as_they_are_unless_sandbox_mode_is_asked(snaptrade_url):
    settings = Settings(snaptrade_max_retries=0, **LIVE)
    async with open_clients(settings, snaptrade_url=snaptrade_url) as clients:
        assert clients.snaptrade is not None
        assert clients.snaptrade.client_id == "live-client"
        with pytest.raises(ProviderError):
            await clients.snaptrade.list_brokerages()  # the sandbox refuses a foreign key
    async with open_clients(settings, snaptrade_url=snaptrade_url, sandbox=True) as clients:
        assert clients.snaptrade is not None
        assert await clients.snaptrade.list_brokerages()
