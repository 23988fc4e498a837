"""A rotated consumer key takes effect without a restart: re-read from the store on a 401."""

import httpx
import pytest
from pydantic import SecretStr

from brokerlink.providers.snaptrade import SnapTradeAuthError, SnapTradeClient
from brokerlink.sandbox.snaptrade import create_app
from brokerlink.secrets import MemorySecretStore
from brokerlink.secrets.credentials import (
    AppCredentials,
    AppCredentialsProvider,
    store_app_credentials,
)

pytestmark = pytest.mark.asyncio
CLIENT_ID = "ROTATING"


async def _setup(key: str):
    app = create_app(client_id=CLIENT_ID, consumer_key=key, rate_limit=0)
    store = MemorySecretStore()
    await store_app_credentials(
        store, AppCredentials(client_id=CLIENT_ID, consumer_key=SecretStr(key))
    )
    calls = []

    async def record(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return await transport.handle_async_request(request)

    transport = httpx.ASGITransport(app=app)
    client = SnapTradeClient(
        CLIENT_ID,
        key,
        base_url="http://snaptrade.test",
        transport=httpx.MockTransport(record),
        credentials=AppCredentialsProvider(store, ttl_seconds=3600),
    )
    return app, store, client, calls


async def test_a_rotated_key_is_picked_up_on_the_first_401():
    app, store, client, calls = await _setup("key-one-not-a-secret")
    async with client:
        await client.register_user("u1")
        # The key is rotated at the provider and in the store, while the client runs.
        app.state.sandbox.consumer_key = "key-two-not-a-secret"
        await store_app_credentials(
            store,
            AppCredentials(client_id=CLIENT_ID, consumer_key=SecretStr("key-two-not-a-secret")),
        )
        users = await client.list_users()
    assert "u1" in users
    assert calls.count("/snapTrade/listUsers") == 2  # refused once, then signed with the new key


async def test_a_wrong_key_in_the_store_fails_after_one_reread():
    app, store, client, calls = await _setup("key-one-not-a-secret")
    app.state.sandbox.consumer_key = "key-two-not-a-secret"  # the store was never updated
    async with client:
        with pytest.raises(SnapTradeAuthError):
            await client.list_users()
    assert calls.count("/snapTrade/listUsers") == 1
