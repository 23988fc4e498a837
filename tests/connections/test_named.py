"""The five behaviours the product promises by name, through the package's public services."""

from decimal import Decimal

import pytest

from brokerlink.domain import OrderRequest, OrderSide, Provider
from brokerlink.orders import OrderService
from brokerlink.policies import RefreshRefused, TradingRefused
from brokerlink.policies.cost_guard import CostGuard
from brokerlink.repositories import CostLedgerRepository

pytestmark = pytest.mark.asyncio


async def test_link_schwab_gives_snaptrade_with_trading(stack):
    user = await stack.new_user()
    result = await stack.link(user, "Charles Schwab")
    assert result.connection.provider is Provider.SNAPTRADE
    assert result.accounts
    assert all(a.capabilities.trading for a in result.accounts)
    assert all(not a.capabilities.realtime for a in result.accounts)  # daily plan by default


async def test_link_fidelity_gives_snaptrade_without_trading(stack):
    user = await stack.new_user()
    result = await stack.link(user, "Fidelity")
    assert result.connection.provider is Provider.SNAPTRADE
    assert result.accounts
    assert not any(a.capabilities.trading for a in result.accounts)
    assert all("read-only" in why for why in result.reasons.values())


async def test_link_chase_gives_plaid_without_trading(stack):
    user = await stack.new_user()
    result = await stack.link(user, "chase")
    assert result.connection.provider is Provider.PLAID
    assert result.accounts
    assert not any(a.capabilities.trading for a in result.accounts)


async def test_plaid_manual_refresh_twice_within_24h_is_blocked_with_reason_and_next_time(stack):
    user = await stack.new_user()
    linked = await stack.link(user, "Vanguard", need_trading=False)
    if linked.connection.provider is not Provider.PLAID:  # Vanguard routes to SnapTrade
        linked = await stack.link(user, "First Platypus Bank")
    connection_id = linked.connection.id

    first = await stack.refreshes().refresh(user, connection_id)
    assert first.accepted

    calls_before = stack.plaid_wire.paths["/investments/refresh"]
    with pytest.raises(RefreshRefused) as refused:
        await stack.refreshes().refresh(user, connection_id)
    assert "one per 24 h" in refused.value.reason
    assert refused.value.next_allowed_at is not None
    assert "Next refresh allowed at" in refused.value.message
    assert stack.plaid_wire.paths["/investments/refresh"] == calls_before  # never sent

    async with stack.sessionmaker() as session:
        spent = await CostLedgerRepository.from_session(session).total(provider=Provider.PLAID)
    assert spent == Decimal("0.12")


async def test_order_on_a_plaid_account_is_refused_by_the_gate_with_no_provider_call(stack):
    user = await stack.new_user()
    linked = await stack.link(user, "chase")
    account = next(a for a in linked.accounts)
    orders = OrderService(stack.sessionmaker, {Provider.SNAPTRADE: stack.snaptrade})
    before = (stack.plaid_wire.total, stack.snaptrade_wire.total)

    with pytest.raises(TradingRefused) as refused:
        await orders.place(
            user,
            account.id,
            OrderRequest(account_id="", side=OrderSide.BUY, symbol="AAPL", quantity=Decimal(1)),
            idempotency_key="order-1",
        )
    assert "plaid" in refused.value.message
    assert "Chase" in refused.value.message
    assert (stack.plaid_wire.total, stack.snaptrade_wire.total) == before


async def test_override_is_allowed_recorded_and_billed(stack):
    user = await stack.new_user()
    linked = await stack.link(user, "First Platypus Bank")
    await stack.refreshes().refresh(user, linked.connection.id)
    again = await stack.refreshes().refresh(user, linked.connection.id, override=True)
    assert again.accepted
    async with stack.sessionmaker() as session:
        assert await CostLedgerRepository.from_session(session).total(
            provider=Provider.PLAID, user_id=user
        ) == Decimal("0.24")
        guard = CostGuard(session, stack.policy)
        assert await guard.next_refresh_allowed_at(linked.connection) is not None


async def test_the_monthly_cost_is_shown_before_and_after_linking(stack):
    user = await stack.new_user()
    async with stack.sessionmaker() as session:
        before = await stack.links(session).start(user, "schwab")
    assert before.monthly_cost == Decimal("1.75")  # SnapTrade bills per connected user
    first = await stack.link(user, "schwab")
    assert first.monthly_cost == Decimal("1.75")
    async with stack.sessionmaker() as session:
        second_snaptrade = await stack.links(session).start(user, "fidelity")
        plaid_item = await stack.links(session).start(user, "chase")
    assert second_snaptrade.monthly_cost == Decimal(0)  # the same SnapTrade user
    assert plaid_item.monthly_cost == Decimal("0.18")  # Plaid bills per item
    chase = await stack.link(user, "chase")
    assert chase.monthly_cost == Decimal("0.18")
