"""The connector: one SnapTrade user per app user, secret records, and one rotation per failure."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio
import structlog

from brokerlink.domain import (
    InstrumentKind,
    InvestmentsConnector,
    OrderRequest,
    OrderSide,
    OrderStatus,
    TradingConnector,
)
from brokerlink.log import _redact_processor
from brokerlink.providers.snaptrade import (
    SnapTradeAuthError,
    SnapTradeConnector,
    UserSecretInvalid,
)
from brokerlink.secrets import MemorySecretStore
from brokerlink.secrets.store import snaptrade_user_secret_name

from .conftest import ACCOUNT_ID, json_response

APP_USER = "app-user-7"


class FakeSnapTrade:
    """Just enough of SnapTrade, in memory, to drive the connector through MockTransport."""

    def __init__(self) -> None:
        self.users: dict[str, str] = {}
        self.expired: set[str] = set()
        self.resets = 0
        self.calls: list[str] = []
        self.placed: list[dict] = []

    def error(self, status: int, code: str, detail: str) -> httpx.Response:
        return json_response(status, {"detail": detail, "status_code": status, "code": code})

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # let concurrent callers interleave
        path = request.url.path
        params = dict(request.url.params)
        body = json.loads(request.content) if request.content else None
        self.calls.append(f"{request.method} {path}")
        if path == "/snapTrade/registerUser":
            self.users[body["userId"]] = f"secret-{len(self.users)}"
            return json_response(
                200, {"userId": body["userId"], "userSecret": self.users[body["userId"]]}
            )
        if path == "/snapTrade/resetUserSecret":
            if self.users.get(body["userId"]) != body["userSecret"]:
                return self.error(401, "1083", "Invalid userID or userSecret provided")
            self.resets += 1
            new = f"rotated-{self.resets}"
            self.users[body["userId"]] = new
            self.expired.discard(body["userId"])
            return json_response(200, {"userId": body["userId"], "userSecret": new})
        uid, secret = params.get("userId"), params.get("userSecret")
        if self.users.get(uid) != secret or uid in self.expired:
            return self.error(401, "1083", "Invalid userID or userSecret provided")
        if path == "/snapTrade/login":
            return json_response(
                200, {"redirectURI": "https://portal.test/x?s=1", "sessionId": "s"}
            )
        if path == "/authorizations":
            return json_response(200, [self.authorization()])
        if path == "/authorizations/auth-1":
            return json_response(200, self.authorization())
        if path == "/accounts":
            return json_response(200, [self.account()])
        if path.endswith("/positions/all"):
            return json_response(
                200,
                {
                    "results": [
                        {
                            "instrument": {
                                "kind": "etf",
                                "id": "i1",
                                "symbol": "VTI",
                                "raw_symbol": "VTI",
                                "currency": "USD",
                            },
                            "units": "3",
                            "price": "250.5",
                            "cost_basis": "200",
                            "currency": "USD",
                        }
                    ],
                    "data_freshness": {"as_of": "2026-11-24T14:30:00+00:00"},
                },
            )
        if path.endswith("/balances"):
            return json_response(
                200,
                [
                    {
                        "currency": {"id": "c", "code": "USD", "name": "US Dollar"},
                        "cash": 1000.5,
                        "buying_power": 2001,
                    },
                    {
                        "currency": {"id": "e", "code": "EUR", "name": "Euro"},
                        "cash": 20,
                        "buying_power": 20,
                    },
                ],
            )
        if path == "/trade/place":
            self.placed.append(body)
            return json_response(
                200,
                {
                    "brokerage_order_id": "B-1",
                    "status": "EXECUTED",
                    "action": "BUY",
                    "total_quantity": "1",
                },
            )
        return self.error(404, "1011", "The requested resource does not exist.")

    @staticmethod
    def authorization() -> dict:
        return {
            "id": "auth-1",
            "type": "trade",
            "disabled": False,
            "data_freshness_mode": "realtime",
            "brokerage": {
                "slug": "SCHWAB",
                "display_name": "Charles Schwab",
                "allows_trading": True,
            },
        }

    @staticmethod
    def account() -> dict:
        return {
            "id": ACCOUNT_ID,
            "brokerage_authorization": "auth-1",
            "name": "Individual",
            "number": "12345678",
            "institution_name": "Charles Schwab",
            "balance": {"total": {"amount": 1752.0, "currency": "USD"}},
            "is_paper": False,
        }


@pytest.fixture
def fake() -> FakeSnapTrade:
    return FakeSnapTrade()


@pytest_asyncio.fixture
async def connector(make_client, fake):
    async with make_client(fake, rate_limit_per_minute=0) as client:
        yield SnapTradeConnector(client, MemorySecretStore())


@pytest.mark.asyncio
class TestRegistration:
    async def test_implements_protocols(self, connector):
        assert isinstance(connector, InvestmentsConnector)
        assert isinstance(connector, TradingConnector)

    async def test_register_stores_record_and_reuses(self, connector, fake):
        first = await connector.register_user(APP_USER)
        again = await connector.register_user(APP_USER)
        assert first == again == APP_USER
        assert fake.calls.count("POST /snapTrade/registerUser") == 1
        record = await connector.secrets.get(snaptrade_user_secret_name(APP_USER, "_user"))
        assert set(record) >= {
            "user_secret",
            "user_id",
            "institution",
            "snaptrade_user_id",
            "created_at",
        }
        assert record["user_secret"] == fake.users[APP_USER]

    async def test_institution_record_is_enough(self, connector, fake):
        await connector.register_user(APP_USER)
        await connector.record_connection(APP_USER, "schwab", "auth-1")
        await connector.secrets.delete(snaptrade_user_secret_name(APP_USER, "_user"))
        fresh = SnapTradeConnector(connector.client, connector.secrets)
        assert len(await fresh.list_accounts(APP_USER)) == 1
        assert fake.calls.count("POST /snapTrade/registerUser") == 1

    async def test_unregistered_user_has_nothing_but_their_account_is_an_error(self, connector):
        assert await connector.list_accounts("nobody") == []
        assert await connector.list_connections("nobody") == []
        with pytest.raises(SnapTradeAuthError):
            await connector.get_holdings("nobody", "some-account")

    async def test_link_and_record_connection(self, connector, fake):
        url = await connector.connection_link(
            APP_USER, broker="SCHWAB", connection_type="trade", custom_redirect="https://app/done"
        )
        assert url.startswith("https://portal.test/")
        conn = await connector.record_connection(APP_USER, "schwab", "auth-1")
        assert conn.connection_id == "auth-1"
        record = await connector.secrets.get(snaptrade_user_secret_name(APP_USER, "schwab"))
        assert record["user_secret"] == fake.users[APP_USER]
        assert record["authorization_id"] == "auth-1"
        assert record["institution"] == "schwab"
        # one SnapTrade user serves every institution
        assert fake.calls.count("POST /snapTrade/registerUser") == 1


@pytest.mark.asyncio
class TestReads:
    async def test_accounts_and_holdings(self, connector):
        await connector.register_user(APP_USER)
        (account,) = await connector.list_accounts(APP_USER)
        assert account.capabilities.trading is True
        holdings = await connector.get_holdings(APP_USER, account.account_id)
        kinds = [(p.ticker, p.instrument.kind) for p in holdings]
        assert kinds == [
            ("VTI", InstrumentKind.ETF),
            ("CUR:EUR", InstrumentKind.CASH),
            ("CUR:USD", InstrumentKind.CASH),
        ]
        assert holdings[2].quantity == Decimal("1000.5")

    async def test_connections(self, connector):
        await connector.register_user(APP_USER)
        (c,) = await connector.list_connections(APP_USER)
        assert c.institution_slug == "schwab"


@pytest.mark.asyncio
class TestRotation:
    async def test_one_rotation_under_ten_concurrent_failures(self, connector, fake):
        await connector.register_user(APP_USER)
        await connector.record_connection(APP_USER, "schwab", "auth-1")
        old = fake.users[APP_USER]
        fake.expired.add(APP_USER)
        with structlog.testing.capture_logs(processors=[_redact_processor]) as logs:
            results = await asyncio.gather(*(connector.list_accounts(APP_USER) for _ in range(10)))
        assert all(len(r) == 1 for r in results)
        assert fake.resets == 1
        assert connector.rotations == 1
        new = fake.users[APP_USER]
        assert new != old
        for name in await connector.secrets.list("snaptrade/user_secret/"):
            assert (await connector.secrets.get(name))["user_secret"] == new
        assert "snaptrade.user_secret.rotated" in [e["event"] for e in logs]
        assert old not in repr(logs)
        assert new not in repr(logs)

    async def test_proves_new_secret_with_cheap_call(self, connector, fake):
        await connector.register_user(APP_USER)
        fake.expired.add(APP_USER)
        fake.calls.clear()
        await connector.list_connections(APP_USER)
        assert fake.calls == [
            "GET /authorizations",
            "POST /snapTrade/resetUserSecret",
            "GET /authorizations",  # the proof
            "GET /authorizations",  # the original call, retried once
        ]

    async def test_second_failure_is_raised_not_rotated_again(self, connector, fake, monkeypatch):
        await connector.register_user(APP_USER)
        fake.expired.add(APP_USER)
        real_reset = fake.__call__

        async def stubborn(request):
            response = await real_reset(request)
            if request.url.path == "/accounts":
                fake.expired.add(APP_USER)  # the secret dies again right away
                return fake.error(401, "1083", "Invalid userID or userSecret provided")
            return response

        connector.client._pipeline.transport = httpx.MockTransport(stubborn)
        with pytest.raises(UserSecretInvalid):
            await connector.list_accounts(APP_USER)
        assert fake.resets == 1

    async def test_never_deletes_or_reregisters(self, connector, fake):
        await connector.register_user(APP_USER)
        fake.users[APP_USER] = "changed-elsewhere"  # our secret is simply wrong now
        with pytest.raises(UserSecretInvalid):
            await connector.list_accounts(APP_USER)
        assert fake.calls.count("POST /snapTrade/registerUser") == 1
        assert not any("deleteUser" in c for c in fake.calls)

    async def test_adopts_secret_rotated_by_another_process(self, make_client, fake):
        store = MemorySecretStore()
        async with make_client(fake, rate_limit_per_minute=0) as client:
            a = SnapTradeConnector(client, store)
            b = SnapTradeConnector(client, store)
            await a.register_user(APP_USER)
            await b.list_accounts(APP_USER)  # b caches the current secret
            fake.expired.add(APP_USER)
            await a.list_accounts(APP_USER)  # a rotates and stores
            await b.list_accounts(APP_USER)  # b fails once, reads the store, no second reset
        assert fake.resets == 1


@pytest.mark.asyncio
class TestTrading:
    async def test_place_order_sends_client_order_id(self, connector, fake):
        await connector.register_user(APP_USER)
        order = await connector.place_order(
            APP_USER,
            OrderRequest(
                account_id=ACCOUNT_ID, side=OrderSide.BUY, symbol="AAPL", quantity=Decimal(1)
            ),
        )
        assert order.status is OrderStatus.FILLED
        assert order.client_order_id
        assert fake.placed[0]["client_order_id"] == order.client_order_id
        assert len(fake.placed) == 1
