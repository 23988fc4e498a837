"""The adapter end to end against the offline Plaid sandbox, in process (httpx.ASGITransport)."""

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from brokerlink.domain.enums import AccountType, InstrumentKind
from brokerlink.domain.errors import ReconnectRequired
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.plaid import (
    InvalidAccessToken,
    LinkProducts,
    LoginRequired,
    PlaidClient,
    PlaidConnector,
    products_for,
)
from brokerlink.providers.plaid.normalize import FLAG_CASH_FROM_BALANCE, FLAG_SYMBOL_FALLBACK
from brokerlink.sandbox.plaid import create_app
from brokerlink.secrets.store import plaid_access_token_name
from tests.fixtures.plaid_items import MemoryItems

from .conftest import MemorySecretStore, Sleeps

CLIENT_ID, SECRET = "sandbox-client", "sandbox-secret"
USER = "user-1"

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(clock: Clock) -> Any:
    return create_app(client_id=CLIENT_ID, secret=SECRET, clock=clock, product_ready_delay=0)


@pytest_asyncio.fixture
async def plaid(sandbox: Any) -> AsyncIterator[PlaidClient]:
    async with PlaidClient(
        CLIENT_ID,
        SECRET,
        base_url="http://plaid.sandbox",
        transport=httpx.ASGITransport(app=sandbox),
        retry=RetryPolicy(max_retries=3, jitter=0.0),
        rate_limit_per_minute=0,
        sleep=Sleeps(),
    ) as client:
        yield client


async def _linked(
    plaid: PlaidClient, store: MemorySecretStore, items: MemoryItems | None = None
) -> tuple[PlaidConnector, str]:
    items = items if items is not None else MemoryItems()
    connector = PlaidConnector(plaid, store, items=items)
    created = await plaid.sandbox_public_token_create("ins_109508", ["investments"])
    connection = await connector.complete_link(USER, created["public_token"], "first-platypus")
    items.record(USER, connection)
    return connector, connection.connection_id


def _token(store: MemorySecretStore, item_id: str) -> str:
    token: str = store.data[plaid_access_token_name(USER, item_id)]["access_token"]
    return token


async def test_link_accounts_holdings(plaid: PlaidClient) -> None:
    store = MemorySecretStore()
    connector, item_id = await _linked(plaid, store)
    assert list(store.data) == [f"plaid/access_token/user-1/{item_id}"]
    assert _token(store, item_id).startswith("access-sandbox-")

    accounts = await connector.list_accounts(USER)
    assert accounts
    assert {a.connection_id for a in accounts} == {item_id}
    assert all(not a.capabilities.trading for a in accounts)
    investment = [a for a in accounts if a.type in (AccountType.BROKERAGE, AccountType.RETIREMENT)]
    assert investment

    for account in investment:
        positions = await connector.get_holdings(USER, account.account_id)
        assert positions
        assert all(p.account_id == account.account_id for p in positions)
        assert all(isinstance(p.quantity, Decimal) for p in positions)
        # Never two cash lines per currency, and balance cash only where holdings hold none.
        cash = [p for p in positions if p.instrument.kind is InstrumentKind.CASH]
        currencies = [p.currency for p in cash if p.instrument.symbol == f"CUR:{p.currency}"]
        assert len(currencies) == len(set(currencies))
        from_balance = [p for p in cash if FLAG_CASH_FROM_BALANCE in p.flags]
        assert not (from_balance and len(cash) > len(from_balance))
        # Null tickers are kept and flagged.
        for p in positions:
            if p.instrument.symbol is None or FLAG_SYMBOL_FALLBACK in p.flags:
                assert FLAG_SYMBOL_FALLBACK in p.flags
        balances = await connector.get_balances(USER, account.account_id)
        by_ccy = {b.currency: b.cash for b in balances}
        for p in cash:
            if p.instrument.symbol == f"CUR:{p.currency}":
                assert by_ccy[p.currency] is not None

    kinds = {
        p.instrument.kind
        for a in investment
        for p in await connector.get_holdings(USER, a.account_id)
    }
    assert InstrumentKind.CASH in kinds


async def test_bad_access_token_is_typed(plaid: PlaidClient) -> None:
    with pytest.raises(InvalidAccessToken) as info:
        await plaid.investments_holdings_get("access-sandbox-00000000-0000-0000-0000-000000000000")
    assert info.value.code == "INVALID_ACCESS_TOKEN"
    assert info.value.request_id
    assert "access-sandbox-0000" not in str(info.value)


async def test_login_required_round_trip(plaid: PlaidClient) -> None:
    store, items = MemorySecretStore(), MemoryItems()
    connector, item_id = await _linked(plaid, store, items)
    accounts = await connector.list_accounts(USER)
    account_id = next(a.account_id for a in accounts if a.type is not AccountType.BANK)

    await plaid.request("/sandbox/item/reset_login", {"access_token": _token(store, item_id)})
    with pytest.raises(LoginRequired):
        await connector.get_holdings(USER, account_id)
    assert items.by_id[item_id].login_required is True
    with pytest.raises(ReconnectRequired):
        await connector.refresh(USER, item_id)

    # Update-mode Link token for the same Item uses its access token.
    link_token, _ = await connector.create_link(USER, update_item_id=item_id)
    assert link_token.startswith("link-sandbox-")

    # Still broken at Plaid: confirming the update keeps the mark.
    with pytest.raises(LoginRequired):
        await connector.complete_update(USER, item_id)
    assert (await connector.list_connections(USER))[0].disabled is True


async def test_remove_ends_item(plaid: PlaidClient) -> None:
    store = MemorySecretStore()
    connector, item_id = await _linked(plaid, store)
    token = _token(store, item_id)
    await connector.remove(USER, item_id)
    assert store.data == {}
    with pytest.raises(InvalidAccessToken):
        await plaid.item_get(token)


async def test_product_not_ready_retried_until_ready(clock: Clock) -> None:
    app = create_app(client_id=CLIENT_ID, secret=SECRET, clock=clock, product_ready_delay=2.0)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds

    async with PlaidClient(
        CLIENT_ID,
        SECRET,
        base_url="http://plaid.sandbox",
        transport=httpx.ASGITransport(app=app),
        retry=RetryPolicy(max_retries=5, base_delay=1.0, jitter=0.0),
        rate_limit_per_minute=0,
        sleep=sleep,
    ) as client:
        created = await client.sandbox_public_token_create("ins_109508", ["investments"])
        token = (await client.item_public_token_exchange(created["public_token"]))["access_token"]
        holdings = await client.investments_holdings_get(token)
    assert holdings["holdings"]
    assert waits  # at least one PRODUCT_NOT_READY was retried


async def test_a_bank_links_and_its_balances_are_cash(plaid: PlaidClient, sandbox: Any) -> None:
    items = MemoryItems()
    connector = PlaidConnector(plaid, MemorySecretStore(), items=items)
    token, url = await connector.create_link(
        USER, institution_id="ins_127989", products=products_for("bank")
    )
    assert url is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox)) as browser:
        form = {"institution_id": "ins_127989", "username": "user_good", "password": "pass_good"}
        assert (await browser.post(url, data=form)).status_code == 200
    (connection,) = await connector.complete_hosted_link(USER, token, "bank-of-america")
    items.record(USER, connection)
    (item,) = sandbox.state.sandbox.items.values()
    assert item.products == ["transactions"]

    accounts = {a.raw_type: a for a in await connector.list_accounts(USER)}
    assert {a.connection_id for a in accounts.values()} == {connection.connection_id}
    checking = accounts["depository/checking"]
    assert checking.type is AccountType.BANK
    (cash,) = await connector.get_holdings(USER, checking.account_id)
    assert (cash.instrument.symbol, cash.quantity, cash.currency) == (
        "CUR:USD",
        Decimal("3120.44"),
        "USD",
    )
    card = accounts["credit/credit card"]
    assert card.type is AccountType.OTHER
    # What is owed on a card is stored as negative cash: net worth counts it as a liability,
    # and the portfolio leaves it out (see `portfolio.service._without_debts`).
    (owed,) = await connector.get_holdings(USER, card.account_id)
    assert (owed.instrument.symbol, owed.quantity) == ("CUR:USD", Decimal("-622.90"))
    (balance,) = await connector.get_balances(USER, card.account_id)
    assert balance.cash == Decimal("-622.90")


async def test_link_products_follow_plaids_rules() -> None:
    assert products_for("brokerage") == products_for("retirement") == products_for(None)
    assert products_for("brokerage").products == ("investments",)
    bank = products_for("bank")
    assert (bank.products, bank.required_if_supported) == (("transactions",), ("investments",))
    with pytest.raises(ValueError, match="at least one"):
        LinkProducts(())
    with pytest.raises(ValueError, match="two lists"):
        LinkProducts(("investments",), optional=("investments",))
    with pytest.raises(ValueError, match="balance"):
        LinkProducts(("transactions",), optional=("balance",))
