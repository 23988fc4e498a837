"""PlaidConnector: token storage and lookup by item id, the re-login state machine, webhooks."""

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from brokerlink.domain.connectors import InvestmentsConnector
from brokerlink.domain.enums import InstrumentKind, Provider
from brokerlink.domain.errors import NotFound, ReconnectRequired
from brokerlink.providers.plaid import LoginRequired, PlaidConnector, ProductsNotSupported
from brokerlink.secrets.store import plaid_access_token_name

from .conftest import ACCESS_TOKEN, PUBLIC_TOKEN, plaid_error, spec_holdings

USER = "user-1"
K401 = "k67E4xKvMlhmleEa4pg9hlwGGNnnEeixPolGm"
MONEY_MARKET = "5Bvpj4QknlhVWk7GygpwfVKdd133GoCxB814g"
TOKEN_B = "access-sandbox-bbbbbbbb-0000-0000-0000-000000000000"


def _record(
    item_id: str, token: str = ACCESS_TOKEN, login_required: bool = False
) -> dict[str, Any]:
    return {
        "access_token": token,
        "item_id": item_id,
        "institution_id": "ins_109508",
        "institution_name": "First Platypus Bank",
        "created_at": "2026-11-24T12:00:00+00:00",
        "login_required": login_required,
    }


def _accounts_for(
    token_to_accounts: dict[str, list[Any]],
) -> Callable[[dict[str, Any]], httpx.Response]:
    def handler(body: dict[str, Any]) -> httpx.Response:
        accounts = token_to_accounts.get(body["access_token"])
        if accounts is None:
            return plaid_error("INVALID_ACCESS_TOKEN", "INVALID_INPUT")
        return httpx.Response(200, json={"accounts": accounts, "item": {}, "request_id": "r"})

    return handler


def _holdings_for(token: str) -> Callable[[dict[str, Any]], httpx.Response]:
    def handler(body: dict[str, Any]) -> httpx.Response:
        if body["access_token"] != token:
            return plaid_error("INVALID_ACCESS_TOKEN", "INVALID_INPUT")
        return httpx.Response(200, json=spec_holdings())

    return handler


@pytest.fixture
def connector(client, store):
    return PlaidConnector(client, store)


def test_is_an_investments_connector(client, store):
    connector = PlaidConnector(client, store)
    assert isinstance(connector, InvestmentsConnector)
    assert connector.provider is Provider.PLAID


@pytest.mark.asyncio
class TestLink:
    async def test_complete_link_stores_token_under_slug(self, connector, fake, store):
        fake.on(
            "/item/public_token/exchange",
            {"access_token": ACCESS_TOKEN, "item_id": "item-A", "request_id": "r"},
        )
        fake.on(
            "/item/get",
            {
                "item": {
                    "item_id": "item-A",
                    "institution_id": "ins_109508",
                    "institution_name": "First Platypus Bank",
                    "error": None,
                },
                "request_id": "r",
            },
        )
        conn = await connector.complete_link(USER, PUBLIC_TOKEN, "first-platypus")
        name = plaid_access_token_name(USER, "first-platypus")
        stored = store.data[name]
        assert stored["access_token"] == ACCESS_TOKEN
        assert stored["item_id"] == "item-A"
        assert stored["institution_id"] == "ins_109508"
        assert stored["institution_name"] == "First Platypus Bank"
        assert stored["login_required"] is False
        assert stored["created_at"]
        assert conn.connection_id == "item-A"
        assert conn.institution_name == "First Platypus Bank"

    async def test_second_item_same_slug_never_overwrites(self, connector, fake, store):
        fake.on(
            "/item/public_token/exchange",
            [
                {"access_token": ACCESS_TOKEN, "item_id": "item-A", "request_id": "r"},
                {"access_token": TOKEN_B, "item_id": "item-B", "request_id": "r"},
            ],
        )
        fake.on("/item/get", {"item": {"item_id": "x"}, "request_id": "r"})
        await connector.complete_link(USER, PUBLIC_TOKEN, "platypus")
        await connector.complete_link(USER, PUBLIC_TOKEN, "platypus")
        assert sorted(store.data) == [
            plaid_access_token_name(USER, "platypus"),
            plaid_access_token_name(USER, "platypus-2"),
        ]

    async def test_token_stored_even_if_item_get_fails(self, connector, fake, store):
        fake.on(
            "/item/public_token/exchange",
            {"access_token": ACCESS_TOKEN, "item_id": "item-A", "request_id": "r"},
        )
        fake.on("/item/get", plaid_error("INTERNAL_SERVER_ERROR", "API_ERROR", 500))
        await connector.complete_link(USER, PUBLIC_TOKEN, "platypus")
        assert store.data[plaid_access_token_name(USER, "platypus")]["item_id"] == "item-A"

    async def test_bad_slug_refused_before_exchange(self, connector, fake):
        with pytest.raises(ValueError, match="institution_slug"):
            await connector.complete_link(USER, PUBLIC_TOKEN, "a/b")
        assert fake.calls == []

    async def test_create_link_hosted(self, connector, fake):
        fake.on(
            "/link/token/create",
            {"link_token": "link-sandbox-1", "hosted_link_url": "https://h/1", "request_id": "r"},
        )
        token, url = await connector.create_link(
            USER, institution_id="ins_109508", webhook="https://example.com/hook"
        )
        assert (token, url) == ("link-sandbox-1", "https://h/1")
        body = fake.calls[0][1]
        assert body["hosted_link"] == {}
        assert body["institution_id"] == "ins_109508"
        assert body["products"] == ["investments"]

    async def test_update_mode_uses_items_access_token(self, connector, fake, store):
        await store.put(plaid_access_token_name(USER, "a"), _record("item-A", TOKEN_B))
        await store.put(plaid_access_token_name(USER, "b"), _record("item-B", ACCESS_TOKEN, True))
        fake.on("/link/token/create", {"link_token": "link-sandbox-u", "request_id": "r"})
        token, url = await connector.create_link(USER, update_item_id="item-B")
        assert token == "link-sandbox-u"
        assert url is None
        body = fake.calls[0][1]
        assert body["access_token"] == ACCESS_TOKEN
        assert "products" not in body

    async def test_complete_hosted_link(self, connector, fake, store):
        fake.on(
            "/link/token/get",
            {
                "link_token": "link-sandbox-1",
                "link_sessions": [
                    {
                        "link_session_id": "s1",
                        "results": {
                            "item_add_results": [
                                {
                                    "public_token": PUBLIC_TOKEN,
                                    "institution": {
                                        "institution_id": "ins_109508",
                                        "name": "First Platypus Bank",
                                    },
                                    "accounts": [],
                                }
                            ]
                        },
                    }
                ],
                "request_id": "r",
            },
        )
        fake.on(
            "/item/public_token/exchange",
            {"access_token": ACCESS_TOKEN, "item_id": "item-H", "request_id": "r"},
        )
        fake.on("/item/get", {"item": {"item_id": "item-H"}, "request_id": "r"})
        conns = await connector.complete_hosted_link(USER, "link-sandbox-1")
        assert [c.connection_id for c in conns] == ["item-H"]
        assert plaid_access_token_name(USER, "first-platypus-bank") in store.data


@pytest.mark.asyncio
class TestLookupByItemId:
    async def test_refresh_uses_token_of_the_item_not_the_slug(self, connector, fake, store):
        # Slugs deliberately mislead: the record at "item-b-bank" holds item A.
        await store.put(plaid_access_token_name(USER, "item-b-bank"), _record("item-A", TOKEN_B))
        await store.put(plaid_access_token_name(USER, "other"), _record("item-B", ACCESS_TOKEN))
        fake.on("/investments/refresh", {"request_id": "rr"})
        result = await connector.refresh(USER, "item-B")
        assert fake.calls[0][1] == {"access_token": ACCESS_TOKEN}
        assert result.accepted
        assert result.connection_id == "item-B"

    async def test_other_users_items_are_invisible(self, connector, fake, store):
        await store.put(plaid_access_token_name("user-10", "a"), _record("item-A"))
        with pytest.raises(NotFound):
            await connector.refresh("user-1", "item-A")
        assert fake.calls == []

    async def test_holdings_found_through_accounts_of_each_item(self, connector, fake, store):
        await store.put(plaid_access_token_name(USER, "a"), _record("item-A", TOKEN_B))
        await store.put(plaid_access_token_name(USER, "b"), _record("item-B", ACCESS_TOKEN))
        holdings = spec_holdings()
        fake.on(
            "/accounts/get",
            _accounts_for({TOKEN_B: [], ACCESS_TOKEN: holdings["accounts"]}),
        )
        fake.on("/investments/holdings/get", _holdings_for(ACCESS_TOKEN))
        positions = await connector.get_holdings(USER, K401)
        assert {p.account_id for p in positions} == {K401}
        assert len(positions) == 6
        assert fake.calls[-1][1]["options"] == {"account_ids": [K401]}

    async def test_bank_account_holdings_are_its_cash(self, connector, fake, store):
        await store.put(plaid_access_token_name(USER, "b"), _record("item-B"))
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: spec_holdings()["accounts"]}))
        positions = await connector.get_holdings(USER, MONEY_MARKET)
        assert [(p.instrument.symbol, p.quantity) for p in positions] == [
            ("CUR:USD", Decimal("43200"))
        ]
        assert "/investments/holdings/get" not in fake.paths()

    async def test_balances_match_cash_positions(self, connector, fake, store):
        await store.put(plaid_access_token_name(USER, "b"), _record("item-B"))
        payload = spec_holdings()
        payload["accounts"][2]["balances"]["available"] = 20000
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: payload["accounts"]}))
        fake.on("/investments/holdings/get", payload)
        balances = await connector.get_balances(USER, K401)
        assert [(b.currency, b.cash) for b in balances] == [("USD", Decimal("12345.67"))]
        positions = await connector.get_holdings(USER, K401)
        cash = [p for p in positions if p.instrument.kind is InstrumentKind.CASH]
        assert sum(p.market_value for p in cash) == balances[0].cash

    async def test_unknown_account(self, connector, fake, store):
        await store.put(plaid_access_token_name(USER, "b"), _record("item-B"))
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: []}))
        with pytest.raises(NotFound):
            await connector.get_holdings(USER, "nope")

    async def test_list_accounts_and_connections(self, connector, fake, store):
        await store.put(plaid_access_token_name(USER, "b"), _record("item-B"))
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: spec_holdings()["accounts"]}))
        fake.on(
            "/item/get",
            {
                "item": {"item_id": "item-B"},
                "status": {
                    "investments": {"last_successful_update": "2026-11-30T08:00:00Z"},
                    "transactions": {"last_successful_update": "2026-11-30T14:00:00.123456789Z"},
                },
                "request_id": "r",
            },
        )
        accounts = await connector.list_accounts(USER)
        assert len(accounts) == 4
        assert {a.connection_id for a in accounts} == {"item-B"}
        assert all(not a.capabilities.trading for a in accounts)
        # Each account is dated by the update of the product that reads it.
        dated = {a.raw_type.split("/")[0]: a.holdings_as_of for a in accounts if a.raw_type}
        assert dated["investment"] == datetime(2026, 11, 30, 8, tzinfo=UTC)
        assert dated["depository"] == datetime(2026, 11, 30, 14, 0, 0, 123456, tzinfo=UTC)
        assert fake.paths().count("/item/get") == 1  # one per Item, not per account
        conns = await connector.list_connections(USER)
        assert [(c.connection_id, c.institution_slug, c.disabled) for c in conns] == [
            ("item-B", "b", False)
        ]

    async def test_refresh_not_supported(self, connector, fake, store):
        await store.put(plaid_access_token_name(USER, "b"), _record("item-B"))
        fake.on("/investments/refresh", plaid_error("PRODUCT_NOT_SUPPORTED"))
        with pytest.raises(ProductsNotSupported):
            await connector.refresh(USER, "item-B")

    async def test_remove(self, connector, fake, store):
        await store.put(plaid_access_token_name(USER, "b"), _record("item-B", login_required=True))
        fake.on("/item/remove", {"request_id": "r"})
        await connector.remove(USER, "item-B")
        assert fake.calls[0][1] == {"access_token": ACCESS_TOKEN}
        assert store.data == {}

    async def test_remove_item_plaid_forgot(self, connector, fake, store):
        await store.put(plaid_access_token_name(USER, "b"), _record("item-B"))
        fake.on("/item/remove", plaid_error("ITEM_NOT_FOUND"))
        await connector.remove(USER, "item-B")
        assert store.data == {}


@pytest.mark.asyncio
class TestLoginRequired:
    async def _setup(self, store: Any, fake: Any, login_required: bool = False) -> None:
        await store.put(
            plaid_access_token_name(USER, "b"), _record("item-B", login_required=login_required)
        )
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: spec_holdings()["accounts"]}))

    async def test_error_marks_item_and_blocks_calls(self, connector, fake, store):
        await self._setup(store, fake)
        fake.on("/investments/holdings/get", plaid_error("ITEM_LOGIN_REQUIRED"))
        with pytest.raises(LoginRequired) as info:
            await connector.get_holdings(USER, K401)
        assert info.value.item_id == "item-B"
        assert store.data[plaid_access_token_name(USER, "b")]["login_required"] is True
        calls = len(fake.calls)
        # While marked: no Plaid call at all.
        with pytest.raises(ReconnectRequired):
            await connector.get_holdings(USER, K401)
        with pytest.raises(ReconnectRequired):
            await connector.refresh(USER, "item-B")
        with pytest.raises(ReconnectRequired):
            await connector.list_accounts(USER)
        assert len(fake.calls) == calls
        conns = await connector.list_connections(USER)
        assert conns[0].disabled is True

    async def test_update_mode_then_successful_item_get_clears(self, connector, fake, store):
        await self._setup(store, fake, login_required=True)
        fake.on("/item/get", {"item": {"item_id": "item-B", "error": None}, "request_id": "r"})
        conn = await connector.complete_update(USER, "item-B")
        assert conn.disabled is False
        assert store.data[plaid_access_token_name(USER, "b")]["login_required"] is False
        fake.on("/investments/holdings/get", spec_holdings())
        assert await connector.get_holdings(USER, K401)

    async def test_update_not_finished_stays_marked(self, connector, fake, store):
        await self._setup(store, fake, login_required=True)
        fake.on(
            "/item/get",
            {
                "item": {"item_id": "item-B", "error": {"error_code": "ITEM_LOGIN_REQUIRED"}},
                "request_id": "r",
            },
        )
        with pytest.raises(LoginRequired):
            await connector.complete_update(USER, "item-B")
        assert store.data[plaid_access_token_name(USER, "b")]["login_required"] is True

    async def test_relink_same_item_clears(self, connector, fake, store):
        await self._setup(store, fake, login_required=True)
        fake.on(
            "/item/public_token/exchange",
            {"access_token": ACCESS_TOKEN, "item_id": "item-B", "request_id": "r"},
        )
        fake.on("/item/get", {"item": {"item_id": "item-B"}, "request_id": "r"})
        await connector.complete_link(USER, PUBLIC_TOKEN, "b")
        assert list(store.data) == [plaid_access_token_name(USER, "b")]
        assert store.data[plaid_access_token_name(USER, "b")]["login_required"] is False

    async def test_webhooks(self, connector, fake, store):
        await self._setup(store, fake)
        error_hook = {
            "webhook_type": "ITEM",
            "webhook_code": "ERROR",
            "item_id": "item-B",
            "error": {
                "error_type": "ITEM_ERROR",
                "error_code": "ITEM_LOGIN_REQUIRED",
                "error_message": "the login details of this item have changed",
                "display_message": None,
                "status": 400,
            },
            "environment": "production",
        }
        name = plaid_access_token_name(USER, "b")
        outcome = await connector.handle_webhook(error_hook)
        assert (outcome.action, outcome.item_id, outcome.user_id) == (
            "login_required",
            "item-B",
            USER,
        )
        assert store.data[name]["login_required"] is True
        with pytest.raises(ReconnectRequired):
            await connector.get_holdings(USER, K401)

        repaired = {
            "webhook_type": "ITEM",
            "webhook_code": "LOGIN_REPAIRED",
            "item_id": "item-B",
            "environment": "production",
        }
        assert (await connector.handle_webhook(repaired)).action == "login_repaired"
        assert store.data[name]["login_required"] is False

        pending = {
            "webhook_type": "ITEM",
            "webhook_code": "PENDING_EXPIRATION",
            "item_id": "item-B",
            "consent_expiration_time": "2026-12-01T00:00:00Z",
            "environment": "production",
        }
        assert (await connector.handle_webhook(pending)).action == "pending_expiration"
        assert store.data[name]["reconnect_by"] == "2026-12-01T00:00:00Z"
        assert store.data[name]["login_required"] is False
        assert store.data[name]["access_token"] == ACCESS_TOKEN

        other = {"webhook_type": "HOLDINGS", "webhook_code": "DEFAULT_UPDATE", "item_id": "item-B"}
        assert (await connector.handle_webhook(other)).action == "ignored"
        unknown = {"webhook_type": "ITEM", "webhook_code": "ERROR", "item_id": "nobody"}
        assert (await connector.handle_webhook(unknown)).action == "ignored"
        assert fake.calls == []
