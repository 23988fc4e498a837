"""With BROKERLINK_QUEUE_URL set, the clients the composition root builds keep their rate-limit
windows in that Redis, shared by every process."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import async_sessionmaker

from brokerlink.composition import provider_connectors
from brokerlink.config import Settings
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.sandbox import snaptrade as snaptrade_sandbox
from brokerlink.sandbox_ids import (
    PLAID_SANDBOX_CLIENT_ID,
    PLAID_SANDBOX_SECRET,
    SANDBOX_CLIENT_ID,
    SANDBOX_CONSUMER_KEY,
)
from brokerlink.secrets import MemorySecretStore
from tests.fixtures.uvicorn_thread import serve_in_thread


@pytest.fixture(scope="module")
def sandboxes():
    plaid = plaid_sandbox.create_app(
        client_id=PLAID_SANDBOX_CLIENT_ID,
        secret=PLAID_SANDBOX_SECRET,
        product_ready_delay=0,
        deliver_webhooks=False,
    )
    snaptrade = snaptrade_sandbox.create_app(
        client_id=SANDBOX_CLIENT_ID, consumer_key=SANDBOX_CONSUMER_KEY
    )
    with serve_in_thread(plaid) as plaid_url, serve_in_thread(snaptrade) as snaptrade_url:
        yield snaptrade_url, plaid_url


async def _exercise(settings: Settings, snaptrade_url: str, plaid_url: str) -> None:
    async with provider_connectors(
        settings,
        MemorySecretStore(),
        sessionmaker=async_sessionmaker(),
        snaptrade_url=snaptrade_url,
        plaid_url=plaid_url,
    ) as found:
        assert found.snaptrade is not None
        assert found.plaid is not None
        await found.snaptrade.client.list_brokerages()
        await found.plaid.create_link("user-1")


@pytest.mark.asyncio
async def test_a_queue_url_puts_the_windows_in_redis(monkeypatch, sandboxes, redis_url):
    monkeypatch.setenv("BROKERLINK_QUEUE_URL", redis_url)
    await _exercise(Settings(), *sandboxes)
    raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await raw.zcard(f"brokerlink:limit:{{snaptrade:{SANDBOX_CLIENT_ID}}}") == 1
        assert await raw.zcard(f"brokerlink:limit:{{plaid:{PLAID_SANDBOX_CLIENT_ID}}}") == 1
    finally:
        await raw.aclose()
