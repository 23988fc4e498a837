"""Client and connector against the SnapTrade sandbox, every response checked against the spec."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from brokerlink.domain import Capabilities, InstrumentKind, OrderRequest, OrderSide
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.snaptrade import (
    SnapTradeAuthError,
    SnapTradeClient,
    SnapTradeConnector,
    SnapTradeMalformedResponse,
    SnapTradeServerError,
)
from brokerlink.sandbox._faults import FaultConfig
from brokerlink.sandbox.snaptrade import create_app
from brokerlink.secrets import MemorySecretStore
from tests.fixtures.openapi import SNAPTRADE_SPEC, SpecCheckingTransport, SpecValidator

CLIENT_ID = "SANDBOXTEST"
CONSUMER_KEY = "sandbox-consumer-key-for-tests"
APP_USER = "app-user-sandbox"

pytestmark = pytest.mark.skipif(not SNAPTRADE_SPEC.exists(), reason="SnapTrade spec not found")


@pytest.fixture
def app():
    return create_app(client_id=CLIENT_ID, consumer_key=CONSUMER_KEY, rate_limit=1000)


@pytest.fixture
def transport(app):
    return SpecCheckingTransport(httpx.ASGITransport(app=app), SpecValidator(SNAPTRADE_SPEC))


@pytest_asyncio.fixture
async def client(transport):
    async with SnapTradeClient(
        CLIENT_ID, CONSUMER_KEY, base_url="http://sandbox.test", transport=transport
    ) as c:
        yield c


@pytest_asyncio.fixture
async def connector(client):
    return SnapTradeConnector(client, MemorySecretStore())


async def _connect(connector: SnapTradeConnector, broker: str, slug: str) -> str:
    await connector.register_user(APP_USER)
    creds = await connector._credentials(APP_USER)
    auth = await connector.client.sandbox_create_connection(
        creds.snaptrade_user_id, creds.secret, broker, "trade"
    )
    await connector.record_connection(APP_USER, slug, auth["id"])
    return auth["id"]


@pytest.mark.asyncio
class TestAgainstSandbox:
    async def test_status(self, client, transport):
        status = await client.api_status()
        assert status["online"] is True
        assert transport.checked == 1

    async def test_register_connect_accounts_holdings(self, connector, transport):
        auth_id = await _connect(connector, "SCHWAB", "schwab")
        connections = await connector.list_connections(APP_USER)
        assert [c.connection_id for c in connections] == [auth_id]
        accounts = await connector.list_accounts(APP_USER)
        assert accounts
        assert all(a.connection_id == auth_id for a in accounts)
        for account in accounts:
            holdings = await connector.get_holdings(APP_USER, account.account_id)
            assert holdings
            cash = [p for p in holdings if p.instrument.kind is InstrumentKind.CASH]
            assert cash
            assert all(p.ticker.startswith("CUR:") for p in cash)
            assert all(isinstance(p.quantity, Decimal) for p in holdings)
        assert transport.checked > 5

    async def test_sync_listing_is_one_call_and_the_listing_without_capabilities(
        self, connector, app
    ):
        await _connect(connector, "SCHWAB", "schwab")
        await _connect(connector, "ALPACA", "alpaca")
        full = await connector.list_accounts(APP_USER)
        assert any(a.capabilities.trading for a in full)  # trade connections at trading brokers
        app.state.sandbox.requests.reset()
        lean = await connector.list_accounts_for_sync(APP_USER)
        assert app.state.sandbox.requests.as_json() == {
            "counts": {"GET /accounts": 1},
            "total": 1,
            "rate_limited": 0,
        }
        assert lean == [a.model_copy(update={"capabilities": Capabilities()}) for a in full]

    async def test_sync_listing_of_an_unregistered_user_calls_nothing(self, connector, app):
        assert await connector.list_accounts_for_sync("never-registered") == []
        assert app.state.sandbox.requests.as_json()["total"] == 0

    async def test_place_order_is_idempotent(self, connector):
        await _connect(connector, "SCHWAB", "schwab")
        accounts = [a for a in await connector.list_accounts(APP_USER) if a.capabilities.trading]
        assert accounts
        account = accounts[0]
        holdings = await connector.get_holdings(APP_USER, account.account_id)
        symbol = next(
            p.ticker for p in holdings if p.instrument.kind is InstrumentKind.EQUITY and p.ticker
        )
        request = OrderRequest(
            account_id=account.account_id,
            side=OrderSide.BUY,
            symbol=symbol,
            quantity=Decimal(1),
            client_order_id="7d5b0c9e-6f5e-4a53-9b1a-1c2d3e4f5a6b",
        )
        first = await connector.place_order(APP_USER, request)
        second = await connector.place_order(APP_USER, request)
        assert first.order_id == second.order_id
        orders = await connector.list_orders(APP_USER, account.account_id)
        assert [o.order_id for o in orders].count(first.order_id) == 1
        fetched = await connector.get_order(APP_USER, account.account_id, first.order_id)
        assert fetched.order_id == first.order_id

    async def test_expired_secret_rotates_once(self, connector, app):
        await _connect(connector, "FIDELITY", "fidelity")
        creds = await connector._credentials(APP_USER)
        app.state.sandbox.expire_user_secret(creds.snaptrade_user_id)
        accounts = await connector.list_accounts(APP_USER)
        assert accounts
        assert connector.rotations == 1
        fresh = await connector._credentials(APP_USER)
        assert fresh.secret != creds.secret
        for name in await connector.secrets.list(f"snaptrade/user_secret/{APP_USER}/"):
            assert (await connector.secrets.get(name))["user_secret"] == fresh.secret

    async def test_wrong_consumer_key_is_rejected(self, app):
        # The spec documents no 401 for most operations, so this one bypasses the spec check.
        async with SnapTradeClient(
            CLIENT_ID,
            "wrong-key",
            base_url="http://sandbox.test",
            transport=httpx.ASGITransport(app=app),
        ) as bad:
            with pytest.raises(SnapTradeAuthError) as info:
                await bad.list_users()
        assert info.value.status == 401
        assert info.value.code == "1076"

    async def test_api_v1_base_url(self, transport):
        async with SnapTradeClient(
            CLIENT_ID, CONSUMER_KEY, base_url="http://sandbox.test/api/v1", transport=transport
        ) as v1:
            user_id, secret = await v1.register_user("v1-user")
            assert await v1.list_accounts(user_id, secret) == []
            brokerages = await v1.list_brokerages()
        assert {b["slug"] for b in brokerages} >= {"SCHWAB", "FIDELITY"}


class _Counting(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)


@pytest.mark.asyncio
class TestSandboxFaults:
    """Injected faults; raw transport, since the spec documents few of these statuses."""

    async def _client(self, app, sleeps):
        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        counting = _Counting(httpx.ASGITransport(app=app))
        client = SnapTradeClient(
            CLIENT_ID,
            CONSUMER_KEY,
            base_url="http://sandbox.test",
            transport=counting,
            sleep=sleep,
            retry=RetryPolicy(max_retries=3, base_delay=0.5, jitter=0.0),
            # The sleep is fake but the sandbox needs the real clock; keep the limiter out of it.
            rate_limit_per_minute=0,
        )
        user_id, secret = await client.register_user("fault-user")
        counting.paths.clear()
        return client, counting, user_id, secret

    async def test_fails_twice_then_succeeds(self, app):
        sleeps: list[float] = []
        client, counting, uid, secret = await self._client(app, sleeps)
        faults = FaultConfig(fail_next=[503, 500], path_pattern="accounts$")
        app.state.sandbox.faults.configure(faults)
        async with client:
            assert await client.list_accounts(uid, secret) == []
        assert counting.paths == ["/accounts"] * 3
        assert sleeps == [0.5, 1.0]

    async def test_429_retry_after_waits(self, app):
        sleeps: list[float] = []
        client, counting, uid, secret = await self._client(app, sleeps)
        app.state.sandbox.faults.configure(
            FaultConfig(fail_next=[429], retry_after=2, path_pattern="accounts$")
        )
        async with client:
            await client.list_accounts(uid, secret)
        assert len(counting.paths) == 2
        assert sleeps == [2.0]

    async def test_order_never_sent_twice(self, app):
        sleeps: list[float] = []
        client, counting, uid, secret = await self._client(app, sleeps)
        app.state.sandbox.faults.configure(FaultConfig(fail_next=[500], path_pattern="trade/place"))
        form = {
            "account_id": "00000000-0000-4000-8000-000000000000",
            "action": "BUY",
            "order_type": "Market",
            "time_in_force": "Day",
            "symbol": "AAPL",
            "units": 1.0,
        }
        async with client:
            with pytest.raises(SnapTradeServerError):
                await client.place_order(uid, secret, form)
        assert counting.paths == ["/trade/place"]
        assert sleeps == []

    async def test_malformed_body_is_typed(self, app):
        sleeps: list[float] = []
        client, counting, uid, secret = await self._client(app, sleeps)
        faults = FaultConfig(malformed_rate=1.0, path_pattern="accounts$")
        app.state.sandbox.faults.configure(faults)
        async with client:
            with pytest.raises(SnapTradeMalformedResponse):
                await client.list_accounts(uid, secret)
