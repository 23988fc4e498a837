"""The `InvestmentsConnector` contract, once, for every adapter (see `conftest.harness`).

What the contract promises (`brokerlink.domain.connectors`): every method returns data or raises
a `ProviderError`; an empty list means "there is nothing", never "could not fetch"; holdings carry
cash as `CUR:<ISO>` positions, counted once against the balances.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from brokerlink.domain.connectors import InvestmentsConnector
from brokerlink.domain.enums import InstrumentKind, Provider
from brokerlink.domain.errors import (
    LogicalError,
    MalformedResponse,
    NotFound,
    ProviderError,
    RateLimited,
    TechnicalError,
)
from brokerlink.domain.models import (
    AccountSummary,
    Balance,
    Capabilities,
    Connection,
    Position,
    RefreshResult,
)

from .conftest import Harness

pytestmark = pytest.mark.asyncio
T = TypeVar("T")

ISO_CURRENCY = re.compile(r"^[A-Z]{3}$")
UNKNOWN_ACCOUNT = "00000000-0000-4000-8000-00000000dead"
UNKNOWN_CONNECTION = "00000000-0000-4000-8000-00000000beef"
NEVER_SEEN = "contract-user-never-seen"
# Whether an account linked for trading can trade: Plaid accounts never do.
CAN_TRADE = {Provider.SNAPTRADE: True, Provider.PLAID: False}
# A price times a quantity is rounded by the provider; allow a cent per unit of size, at most.
TOLERANCE = Decimal("0.01")


async def _accounts(h: Harness) -> list[AccountSummary]:
    accounts = await h.connector.list_accounts(h.user_id)
    assert accounts, "a linked connection lists its accounts"
    return accounts


def _value_readings(p: Position) -> list[Decimal]:
    """quantity x price; for an option also x multiplier (contracts vs. underlying units)."""
    assert p.price is not None
    plain = p.quantity * p.price
    if p.instrument.option is None:
        return [plain]
    return [plain, plain * p.instrument.option.multiplier]


async def _outcome(call: Awaitable[T]) -> T | ProviderError:
    """The call's result, or the ProviderError it raised (anything else propagates)."""
    try:
        return await call
    except ProviderError as exc:
        return exc


def _cash_by_currency(positions: list[Position]) -> dict[str, Decimal]:
    cash: dict[str, Decimal] = defaultdict(Decimal)
    for p in positions:
        if p.instrument.kind is InstrumentKind.CASH:
            cash[p.currency] += p.quantity
    return {currency: amount for currency, amount in cash.items() if amount}


class TestProvider:
    async def test_is_an_investments_connector(self, harness: Harness) -> None:
        assert isinstance(harness.connector, InvestmentsConnector)

    async def test_names_its_provider(self, harness: Harness) -> None:
        assert harness.connector.provider is harness.provider


class TestListConnections:
    async def test_returns_the_linked_connection(self, harness: Harness) -> None:
        connections = await harness.connector.list_connections(harness.user_id)
        assert [c.connection_id for c in connections] == [harness.connection_id]
        (connection,) = connections
        assert isinstance(connection, Connection)
        assert connection.provider is harness.provider
        assert connection.institution_name
        assert not connection.disabled

    async def test_user_without_connections_has_none(self, harness: Harness) -> None:
        user_id = await harness.unlinked_user()
        assert await harness.connector.list_connections(user_id) == []


class TestListAccounts:
    async def test_accounts_belong_to_the_connection(self, harness: Harness) -> None:
        accounts = await _accounts(harness)
        for a in accounts:
            assert isinstance(a, AccountSummary)
            assert a.provider is harness.provider
            assert a.account_id
            assert a.connection_id == harness.connection_id
            assert a.institution_name
            assert isinstance(a.capabilities, Capabilities)
        assert len({a.account_id for a in accounts}) == len(accounts)
        assert harness.transport.checked > 0  # the responses were checked against the spec

    async def test_trading_capability_matches_the_provider(self, harness: Harness) -> None:
        accounts = await _accounts(harness)
        assert any(a.capabilities.trading for a in accounts) is CAN_TRADE[harness.provider]

    async def test_user_without_connections_has_none(self, harness: Harness) -> None:
        user_id = await harness.unlinked_user()
        assert await harness.connector.list_accounts(user_id) == []


class TestGetHoldings:
    async def test_positions_belong_to_the_account(self, harness: Harness) -> None:
        seen = 0
        for account in await _accounts(harness):
            # A credit card may hold nothing at all: an empty list is a fine answer there.
            positions = await harness.connector.get_holdings(harness.user_id, account.account_id)
            seen += len(positions)
            for p in positions:
                assert isinstance(p, Position)
                assert p.provider is harness.provider
                assert p.account_id == account.account_id
                assert isinstance(p.quantity, Decimal)
                for amount in (p.price, p.market_value, p.cost_basis):
                    assert amount is None or isinstance(amount, Decimal)
                assert ISO_CURRENCY.match(p.currency), p.currency
        assert seen

    async def test_cash_is_a_currency_position(self, harness: Harness) -> None:
        found = False
        for account in await _accounts(harness):
            positions = await harness.connector.get_holdings(harness.user_id, account.account_id)
            for p in positions:
                symbol = p.instrument.symbol or ""
                is_cur = symbol.startswith("CUR:")
                assert is_cur is (p.instrument.kind is InstrumentKind.CASH), p
                if is_cur:
                    assert symbol == f"CUR:{p.currency}"
                    found = True
            cash_symbols = [
                p.instrument.symbol for p in positions if p.instrument.kind is InstrumentKind.CASH
            ]
            assert len(cash_symbols) == len(set(cash_symbols)), "one cash line per currency"
        assert found

    async def test_cash_is_counted_once_against_balances(self, harness: Harness) -> None:
        for account in await _accounts(harness):
            positions = await harness.connector.get_holdings(harness.user_id, account.account_id)
            balances = await harness.connector.get_balances(harness.user_id, account.account_id)
            balance_cash = {b.currency: b.cash for b in balances if b.cash}
            assert _cash_by_currency(positions) == balance_cash, account.account_id

    async def test_market_value_is_quantity_times_price(self, harness: Harness) -> None:
        checked = 0
        for account in await _accounts(harness):
            for p in await harness.connector.get_holdings(harness.user_id, account.account_id):
                if p.price is None or p.market_value is None:
                    continue
                assert isinstance(p.price, Decimal)
                assert isinstance(p.market_value, Decimal)
                slack = TOLERANCE * max(Decimal(1), abs(p.quantity))
                readings = _value_readings(p)
                assert any(abs(p.market_value - v) <= slack for v in readings), p
                checked += 1
        assert checked

    async def test_unknown_account_is_not_found(self, harness: Harness) -> None:
        with pytest.raises(NotFound) as info:
            await harness.connector.get_holdings(harness.user_id, UNKNOWN_ACCOUNT)
        assert info.value.provider is harness.provider

    async def test_user_without_connections_has_no_account(self, harness: Harness) -> None:
        user_id = await harness.unlinked_user()
        with pytest.raises(NotFound):
            await harness.connector.get_holdings(user_id, UNKNOWN_ACCOUNT)

    async def test_another_users_account_is_not_found(self, harness: Harness) -> None:
        other_user, _ = await harness.linked_user()
        theirs = (await harness.connector.list_accounts(other_user))[0].account_id
        with pytest.raises(NotFound):
            await harness.connector.get_holdings(harness.user_id, theirs)


class TestGetBalances:
    async def test_balances_of_each_account(self, harness: Harness) -> None:
        for account in await _accounts(harness):
            balances = await harness.connector.get_balances(harness.user_id, account.account_id)
            assert balances, f"account {account.account_id} has a balance"
            for b in balances:
                assert isinstance(b, Balance)
                assert b.provider is harness.provider
                assert b.account_id == account.account_id
                assert ISO_CURRENCY.match(b.currency), b.currency
                assert b.cash is None or isinstance(b.cash, Decimal)
                assert b.buying_power is None or isinstance(b.buying_power, Decimal)
            currencies = [b.currency for b in balances]
            assert len(currencies) == len(set(currencies)), "one balance per currency"

    async def test_unknown_account_is_not_found(self, harness: Harness) -> None:
        with pytest.raises(NotFound) as info:
            await harness.connector.get_balances(harness.user_id, UNKNOWN_ACCOUNT)
        assert info.value.provider is harness.provider

    async def test_another_users_account_is_not_found(self, harness: Harness) -> None:
        other_user, _ = await harness.linked_user()
        theirs = (await harness.connector.list_accounts(other_user))[0].account_id
        with pytest.raises(NotFound):
            await harness.connector.get_balances(harness.user_id, theirs)


class TestRefresh:
    async def test_accepted_or_typed_refusal(self, harness: Harness) -> None:
        result = await _outcome(harness.connector.refresh(harness.user_id, harness.connection_id))
        if isinstance(result, ProviderError):
            # Refused (not enabled, billed plan exhausted...): typed, and not worth retrying.
            assert isinstance(result, LogicalError), result
            assert result.provider is harness.provider
            return
        assert isinstance(result, RefreshResult)
        assert result.provider is harness.provider
        assert result.connection_id == harness.connection_id
        assert result.accepted is True

    async def test_unknown_connection_is_not_found(self, harness: Harness) -> None:
        with pytest.raises(NotFound) as info:
            await harness.connector.refresh(harness.user_id, UNKNOWN_CONNECTION)
        assert info.value.provider is harness.provider

    async def test_another_users_connection_is_not_found(self, harness: Harness) -> None:
        _, theirs = await harness.linked_user()
        with pytest.raises(NotFound):
            await harness.connector.refresh(harness.user_id, theirs)


class TestUserNeverSeen:
    """An application user who never linked anything through this provider: nothing there."""

    async def test_has_no_connections(self, harness: Harness) -> None:
        assert await harness.connector.list_connections(NEVER_SEEN) == []

    async def test_has_no_accounts(self, harness: Harness) -> None:
        assert await harness.connector.list_accounts(NEVER_SEEN) == []


class TestProviderFailure:
    """The sandbox answers 5xx to every call: a typed, retryable error, never an empty list."""

    async def _account_id(self, harness: Harness) -> str:
        return (await _accounts(harness))[0].account_id

    async def _assert_fails(self, harness: Harness, call: Callable[[], Awaitable[Any]]) -> None:
        with pytest.raises(ProviderError) as info:
            await call()
        assert isinstance(info.value, TechnicalError), info.value
        assert info.value.retryable is True
        assert info.value.provider is harness.provider

    async def test_list_connections_is_never_empty(self, harness: Harness) -> None:
        harness.fail_every_call()
        connections = await _outcome(harness.connector.list_connections(harness.user_id))
        if isinstance(connections, ProviderError):
            assert isinstance(connections, TechnicalError), connections
        else:
            # Plaid keeps its Items in our own store: nothing to fetch, nothing to fail.
            assert [c.connection_id for c in connections] == [harness.connection_id]

    async def test_list_accounts(self, harness: Harness) -> None:
        harness.fail_every_call()
        await self._assert_fails(harness, lambda: harness.connector.list_accounts(harness.user_id))

    async def test_get_holdings(self, harness: Harness) -> None:
        account_id = await self._account_id(harness)
        harness.fail_every_call()
        await self._assert_fails(
            harness, lambda: harness.connector.get_holdings(harness.user_id, account_id)
        )

    async def test_get_balances(self, harness: Harness) -> None:
        account_id = await self._account_id(harness)
        harness.fail_every_call()
        await self._assert_fails(
            harness, lambda: harness.connector.get_balances(harness.user_id, account_id)
        )

    async def test_refresh(self, harness: Harness) -> None:
        harness.fail_every_call()
        await self._assert_fails(
            harness, lambda: harness.connector.refresh(harness.user_id, harness.connection_id)
        )

    @pytest.mark.parametrize("status", [500, 502, 503])
    async def test_each_5xx_is_typed(self, harness: Harness, status: int) -> None:
        account_id = await self._account_id(harness)
        harness.fail_every_call(status)
        with pytest.raises(ProviderError) as info:
            await harness.connector.get_holdings(harness.user_id, account_id)
        assert isinstance(info.value, TechnicalError)
        assert info.value.status == status

    async def test_rate_limit_is_typed(self, harness: Harness) -> None:
        account_id = await self._account_id(harness)
        harness.fail_every_call(429)
        with pytest.raises(RateLimited) as info:
            await harness.connector.get_holdings(harness.user_id, account_id)
        assert info.value.status == 429
        assert info.value.retryable is True

    async def test_truncated_body_is_typed(self, harness: Harness) -> None:
        account_id = await self._account_id(harness)
        harness.truncate_every_body()
        with pytest.raises(MalformedResponse) as info:
            await harness.connector.get_holdings(harness.user_id, account_id)
        assert info.value.provider is harness.provider
