"""PlaidConnector: one token per Item, Items found through the directory, the re-login state
machine (the directory's status), webhooks."""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from brokerlink.domain.connectors import InvestmentsConnector
from brokerlink.domain.enums import InstrumentKind, Provider
from brokerlink.domain.errors import NotFound, ReconnectRequired
from brokerlink.providers.plaid import (
    ItemDirectory,
    LoginRequired,
    PlaidConnector,
    PlaidItem,
    ProductsNotSupported,
)
from brokerlink.secrets.store import plaid_access_token_name, plaid_slug_access_token_name
from tests.fixtures.plaid_items import MemoryItems

from .conftest import ACCESS_TOKEN, PUBLIC_TOKEN, plaid_error, spec_holdings

USER = "user-1"
K401 = "k67E4xKvMlhmleEa4pg9hlwGGNnnEeixPolGm"
MONEY_MARKET = "5Bvpj4QknlhVWk7GygpwfVKdd133GoCxB814g"
TOKEN_B = "access-sandbox-bbbbbbbb-0000-0000-0000-000000000000"


async def _item(
    items: MemoryItems,
    store: Any,
    item_id: str,
    token: str = ACCESS_TOKEN,
    *,
    login_required: bool = False,
    user: str = USER,
    slug: str = "first-platypus",
    accounts: tuple[str, ...] = (),
) -> PlaidItem:
    """An Item as the application keeps it: its row in the directory, its token in the store."""
    await store.put(plaid_access_token_name(user, item_id), {"access_token": token})
    return items.add(
        PlaidItem(
            user_id=user,
            item_id=item_id,
            institution_name="First Platypus Bank",
            institution_slug=slug,
            institution_id="ins_109508",
            login_required=login_required,
        ),
        accounts=accounts,
    )


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
def items() -> MemoryItems:
    return MemoryItems()


@pytest.fixture
def connector(client, store, items):
    return PlaidConnector(client, store, items=items)


def test_is_an_investments_connector(client, store, items):
    connector = PlaidConnector(client, store, items=items)
    assert isinstance(connector, InvestmentsConnector)
    assert isinstance(items, ItemDirectory)
    assert connector.provider is Provider.PLAID


@pytest.mark.asyncio
class TestLink:
    async def test_complete_link_stores_only_the_token_under_the_item(self, connector, fake, store):
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
        # The one secret of the connection: the token, no metadata.
        assert store.data == {
            plaid_access_token_name(USER, "item-A"): {"access_token": ACCESS_TOKEN}
        }
        # The metadata is the caller's to record, from the answer.
        assert conn.connection_id == "item-A"
        assert conn.institution_name == "First Platypus Bank"
        assert conn.institution_id == "ins_109508"
        assert conn.institution_slug == "first-platypus"
        assert conn.created_at is not None

    async def test_second_item_same_institution_never_overwrites(self, connector, fake, store):
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
        assert store.data == {
            plaid_access_token_name(USER, "item-A"): {"access_token": ACCESS_TOKEN},
            plaid_access_token_name(USER, "item-B"): {"access_token": TOKEN_B},
        }

    async def test_token_stored_even_if_item_get_fails(self, connector, fake, store):
        fake.on(
            "/item/public_token/exchange",
            {"access_token": ACCESS_TOKEN, "item_id": "item-A", "request_id": "r"},
        )
        fake.on("/item/get", plaid_error("INTERNAL_SERVER_ERROR", "API_ERROR", 500))
        conn = await connector.complete_link(USER, PUBLIC_TOKEN, "platypus")
        assert store.data[plaid_access_token_name(USER, "item-A")] == {"access_token": ACCESS_TOKEN}
        assert (conn.institution_name, conn.institution_id) == ("platypus", None)

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

    async def test_update_mode_uses_items_access_token(self, connector, fake, store, items):
        await _item(items, store, "item-A", TOKEN_B)
        await _item(items, store, "item-B", ACCESS_TOKEN, login_required=True)
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
        assert list(store.data) == [plaid_access_token_name(USER, "item-H")]
        assert conns[0].institution_slug == "first-platypus-bank"


@pytest.mark.asyncio
class TestLookupByItemId:
    async def test_refresh_uses_token_of_the_item(self, connector, fake, store, items):
        await _item(items, store, "item-A", TOKEN_B, slug="item-b-bank")
        await _item(items, store, "item-B", ACCESS_TOKEN, slug="other")
        fake.on("/investments/refresh", {"request_id": "rr"})
        result = await connector.refresh(USER, "item-B")
        assert fake.calls[0][1] == {"access_token": ACCESS_TOKEN}
        assert result.accepted
        assert result.connection_id == "item-B"

    async def test_other_users_items_are_invisible(self, connector, fake, store, items):
        await _item(items, store, "item-A", user="user-10")
        with pytest.raises(NotFound):
            await connector.refresh("user-1", "item-A")
        with pytest.raises(NotFound):
            await connector.remove("user-1", "item-A")
        with pytest.raises(NotFound):
            await connector.accounts_of_item("user-1", "item-A")
        assert fake.calls == []
        assert plaid_access_token_name("user-10", "item-A") in store.data

    async def test_holdings_found_through_the_directory(self, connector, fake, store, items):
        await _item(items, store, "item-A", TOKEN_B)
        await _item(items, store, "item-B", ACCESS_TOKEN, accounts=(K401,))
        holdings = spec_holdings()
        fake.on("/accounts/get", _accounts_for({TOKEN_B: [], ACCESS_TOKEN: holdings["accounts"]}))
        fake.on("/investments/holdings/get", _holdings_for(ACCESS_TOKEN))
        positions = await connector.get_holdings(USER, K401)
        assert {p.account_id for p in positions} == {K401}
        assert len(positions) == 6
        # Only the account's own Item is asked, never every Item's accounts.
        assert all(body["access_token"] == ACCESS_TOKEN for _, body, _ in fake.calls)
        assert fake.calls[-1][1]["options"] == {"account_ids": [K401]}

    async def test_account_unknown_to_the_directory_is_not_searched_for(
        self, connector, fake, store, items
    ):
        await _item(items, store, "item-B", ACCESS_TOKEN)
        with pytest.raises(NotFound):
            await connector.get_holdings(USER, K401)
        assert fake.calls == []

    async def test_bank_account_holdings_are_its_cash(self, connector, fake, store, items):
        await _item(items, store, "item-B", accounts=(MONEY_MARKET,))
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: spec_holdings()["accounts"]}))
        positions = await connector.get_holdings(USER, MONEY_MARKET)
        assert [(p.instrument.symbol, p.quantity) for p in positions] == [
            ("CUR:USD", Decimal("43200"))
        ]
        assert "/investments/holdings/get" not in fake.paths()

    async def test_balances_match_cash_positions(self, connector, fake, store, items):
        await _item(items, store, "item-B", accounts=(K401,))
        payload = spec_holdings()
        payload["accounts"][2]["balances"]["available"] = 20000
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: payload["accounts"]}))
        fake.on("/investments/holdings/get", payload)
        balances = await connector.get_balances(USER, K401)
        assert [(b.currency, b.cash) for b in balances] == [("USD", Decimal("12345.67"))]
        positions = await connector.get_holdings(USER, K401)
        cash = [p for p in positions if p.instrument.kind is InstrumentKind.CASH]
        assert sum(p.market_value for p in cash) == balances[0].cash

    async def test_unknown_account(self, connector, fake, store, items):
        await _item(items, store, "item-B", accounts=("nope",))
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: []}))
        with pytest.raises(NotFound):
            await connector.get_holdings(USER, "nope")

    async def test_list_accounts_and_connections(self, connector, fake, store, items):
        await _item(items, store, "item-B", slug="b")
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: spec_holdings()["accounts"]}))
        fake.on(
            "/item/get",
            {
                "item": {"item_id": "item-B", "institution_id": "ins_109508"},
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
        assert {a.institution_name for a in accounts} == {"First Platypus Bank"}
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
        # Listed accounts are then read without asking the directory for them.
        fake.on("/investments/holdings/get", spec_holdings())
        assert await connector.get_holdings(USER, K401)

    async def test_institution_id_learnt_from_item_get(self, connector, fake, store, items):
        await _item(items, store, "item-B")
        items.by_id["item-B"] = replace(items.by_id["item-B"], institution_id=None)
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: []}))
        fake.on("/item/get", {"item": {"institution_id": "ins_56"}, "request_id": "r"})
        await connector.list_accounts(USER)
        assert items.by_id["item-B"].institution_id == "ins_56"

    async def test_refresh_not_supported(self, connector, fake, store, items):
        await _item(items, store, "item-B")
        fake.on("/investments/refresh", plaid_error("PRODUCT_NOT_SUPPORTED"))
        with pytest.raises(ProductsNotSupported):
            await connector.refresh(USER, "item-B")

    async def test_remove(self, connector, fake, store, items):
        await _item(items, store, "item-B", login_required=True)
        fake.on("/item/remove", {"request_id": "r"})
        await connector.remove(USER, "item-B")
        assert fake.calls[0][1] == {"access_token": ACCESS_TOKEN}
        assert store.data == {}

    async def test_remove_an_item_no_connection_names_any_more(self, connector, fake, store):
        # A replaced upstream link: its connection took the new Item's id; the token remains.
        await store.put(plaid_access_token_name(USER, "item-old"), {"access_token": TOKEN_B})
        fake.on("/item/remove", {"request_id": "r"})
        await connector.remove(USER, "item-old")
        assert fake.calls[0][1] == {"access_token": TOKEN_B}
        assert store.data == {}

    async def test_remove_item_plaid_forgot(self, connector, fake, store, items):
        await _item(items, store, "item-B")
        fake.on("/item/remove", plaid_error("ITEM_NOT_FOUND"))
        await connector.remove(USER, "item-B")
        assert store.data == {}


@pytest.mark.asyncio
class TestOldRecords:
    """Records older versions wrote under the institution's slug, with metadata beside them."""

    async def _old(self, store: Any, items: MemoryItems, **extra: Any) -> None:
        items.add(PlaidItem(USER, "item-B", "First Platypus Bank", "first-platypus"))
        await store.put(
            plaid_slug_access_token_name(USER, "first-platypus"),
            {
                "access_token": ACCESS_TOKEN,
                "item_id": "item-B",
                "institution_id": "ins_109508",
                "institution_name": "First Platypus Bank",
                "created_at": "2026-11-24T12:00:00+00:00",
                "login_required": False,
                **extra,
            },
        )
        # Another of the user's old records, of another Item, stays where it is.
        await store.put(
            plaid_slug_access_token_name(USER, "chase"),
            {"access_token": TOKEN_B, "item_id": "item-C", "login_required": False},
        )

    async def test_first_read_moves_the_record_to_the_items_name(
        self, connector, fake, store, items
    ):
        await self._old(store, items)
        fake.on("/investments/refresh", {"request_id": "rr"})
        await connector.refresh(USER, "item-B")
        assert fake.calls[0][1] == {"access_token": ACCESS_TOKEN}
        assert store.data == {
            plaid_access_token_name(USER, "item-B"): {"access_token": ACCESS_TOKEN},
            plaid_slug_access_token_name(USER, "chase"): {
                "access_token": TOKEN_B,
                "item_id": "item-C",
                "login_required": False,
            },
        }
        assert items.by_id["item-B"].institution_id == "ins_109508"
        await connector.refresh(USER, "item-B")
        assert [body for _, body, _ in fake.calls] == [{"access_token": ACCESS_TOKEN}] * 2

    async def test_an_old_re_login_mark_becomes_the_status(self, connector, fake, store, items):
        await self._old(store, items, login_required=True, reconnect_by="2026-12-01T00:00:00Z")
        fake.on("/item/remove", {"request_id": "r"})
        await connector.remove(USER, "item-B")  # removal reads the token: the record moves
        assert items.by_id["item-B"].login_required is True
        assert items.reconnect_by["item-B"] == datetime(2026, 12, 1, tzinfo=UTC)
        assert plaid_slug_access_token_name(USER, "first-platypus") not in store.data


@pytest.mark.asyncio
class TestLoginRequired:
    async def _setup(
        self, store: Any, fake: Any, items: MemoryItems, login_required: bool = False
    ) -> None:
        await _item(items, store, "item-B", login_required=login_required, accounts=(K401,))
        fake.on("/accounts/get", _accounts_for({ACCESS_TOKEN: spec_holdings()["accounts"]}))

    async def test_error_marks_item_and_blocks_calls(self, connector, fake, store, items):
        await self._setup(store, fake, items)
        fake.on("/investments/holdings/get", plaid_error("ITEM_LOGIN_REQUIRED"))
        with pytest.raises(LoginRequired) as info:
            await connector.get_holdings(USER, K401)
        assert info.value.item_id == info.value.connection_id == "item-B"
        assert items.by_id["item-B"].login_required is True
        assert "ITEM_LOGIN_REQUIRED" in (items.reasons["item-B"] or "")
        calls = len(fake.calls)
        # While marked: no Plaid call at all.
        with pytest.raises(ReconnectRequired):
            await connector.get_holdings(USER, K401)
        with pytest.raises(ReconnectRequired):
            await connector.refresh(USER, "item-B")
        with pytest.raises(ReconnectRequired) as listed:
            await connector.list_accounts(USER)
        assert listed.value.connection_id == "item-B"
        assert len(fake.calls) == calls
        conns = await connector.list_connections(USER)
        assert conns[0].disabled is True
        assert store.data == {
            plaid_access_token_name(USER, "item-B"): {"access_token": ACCESS_TOKEN}
        }

    async def test_update_mode_then_successful_item_get_clears(self, connector, fake, store, items):
        await self._setup(store, fake, items, login_required=True)
        fake.on("/item/get", {"item": {"item_id": "item-B", "error": None}, "request_id": "r"})
        conn = await connector.complete_update(USER, "item-B")
        assert conn.disabled is False
        assert items.by_id["item-B"].login_required is False
        fake.on("/investments/holdings/get", spec_holdings())
        assert await connector.get_holdings(USER, K401)

    async def test_update_not_finished_stays_marked(self, connector, fake, store, items):
        await self._setup(store, fake, items, login_required=True)
        fake.on(
            "/item/get",
            {
                "item": {"item_id": "item-B", "error": {"error_code": "ITEM_LOGIN_REQUIRED"}},
                "request_id": "r",
            },
        )
        with pytest.raises(LoginRequired):
            await connector.complete_update(USER, "item-B")
        assert items.by_id["item-B"].login_required is True

    async def test_relink_same_item_clears(self, connector, fake, store, items):
        await self._setup(store, fake, items, login_required=True)
        fake.on(
            "/item/public_token/exchange",
            {"access_token": TOKEN_B, "item_id": "item-B", "request_id": "r"},
        )
        fake.on("/item/get", {"item": {"item_id": "item-B"}, "request_id": "r"})
        await connector.complete_link(USER, PUBLIC_TOKEN, "b")
        assert store.data == {plaid_access_token_name(USER, "item-B"): {"access_token": TOKEN_B}}
        assert items.by_id["item-B"].login_required is False

    async def test_webhooks(self, connector, fake, items):
        # Webhooks touch the directory only: the store here has no secret at all.
        items.add(PlaidItem(USER, "item-B", "First Platypus Bank"), accounts=(K401,))
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
        outcome = await connector.handle_webhook(error_hook)
        assert (outcome.action, outcome.item_id, outcome.user_id) == (
            "login_required",
            "item-B",
            USER,
        )
        assert items.by_id["item-B"].login_required is True
        with pytest.raises(ReconnectRequired):
            await connector.get_holdings(USER, K401)

        repaired = {
            "webhook_type": "ITEM",
            "webhook_code": "LOGIN_REPAIRED",
            "item_id": "item-B",
            "environment": "production",
        }
        assert (await connector.handle_webhook(repaired)).action == "login_repaired"
        assert items.by_id["item-B"].login_required is False

        pending = {
            "webhook_type": "ITEM",
            "webhook_code": "PENDING_EXPIRATION",
            "item_id": "item-B",
            "consent_expiration_time": "2026-12-01T00:00:00Z",
            "environment": "production",
        }
        assert (await connector.handle_webhook(pending)).action == "pending_expiration"
        assert items.reconnect_by["item-B"] == datetime(2026, 12, 1, tzinfo=UTC)
        assert items.by_id["item-B"].login_required is False

        other = {"webhook_type": "HOLDINGS", "webhook_code": "DEFAULT_UPDATE", "item_id": "item-B"}
        assert (await connector.handle_webhook(other)).action == "ignored"
        unknown = {"webhook_type": "ITEM", "webhook_code": "ERROR", "item_id": "nobody"}
        assert (await connector.handle_webhook(unknown)).action == "ignored"
        assert fake.calls == []
