"""Orders through the gate and by idempotency key, against the SnapTrade sandbox."""

import asyncio
from decimal import Decimal

import pytest

from brokerlink.domain import OrderRequest, OrderSide, OrderType, Provider
from brokerlink.errors import NotFoundError
from brokerlink.orders import OrderInDoubt, OrderService
from brokerlink.policies import TradingRefused
from brokerlink.sandbox._faults import FaultConfig

pytestmark = pytest.mark.asyncio

BUY_ONE = OrderRequest(account_id="", side=OrderSide.BUY, symbol="AAPL", quantity=Decimal(1))


def _service(stack):
    return OrderService(stack.sessionmaker, {Provider.SNAPTRADE: stack.snaptrade})


async def test_the_same_key_never_places_twice(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "schwab")).accounts[0]
    orders = _service(stack)

    first = await orders.place(user, account.id, BUY_ONE, idempotency_key="k-1")
    again = await orders.place(user, account.id, BUY_ONE, idempotency_key="k-1")
    assert again == first
    assert stack.snaptrade_wire.paths["/trade/place"] == 1

    other = await orders.place(user, account.id, BUY_ONE, idempotency_key="k-2")
    assert other.order_id != first.order_id
    assert stack.snaptrade_wire.paths["/trade/place"] == 2


async def test_concurrent_requests_with_one_key_place_once(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "schwab")).accounts[0]
    orders = _service(stack)

    results = await asyncio.gather(
        *(orders.place(user, account.id, BUY_ONE, idempotency_key="burst") for _ in range(5)),
        return_exceptions=True,
    )
    placed = [r for r in results if not isinstance(r, BaseException)]
    assert placed
    assert all(isinstance(r, OrderInDoubt) for r in results if isinstance(r, BaseException))
    assert len({o.order_id for o in placed}) == 1
    assert stack.snaptrade_wire.paths["/trade/place"] == 1


async def test_an_order_whose_outcome_is_unknown_is_not_resent(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "schwab")).accounts[0]
    orders = _service(stack)
    stack.snaptrade_app.state.sandbox.faults.configure(
        FaultConfig(fail_next=[503], path_pattern="/trade/place")
    )
    with pytest.raises(Exception, match="503|server|unavailable"):
        await orders.place(user, account.id, BUY_ONE, idempotency_key="flaky")
    with pytest.raises(OrderInDoubt, match="outcome is unknown"):
        await orders.place(user, account.id, BUY_ONE, idempotency_key="flaky")
    assert stack.snaptrade_wire.paths["/trade/place"] == 1


async def test_read_only_institution_is_refused_before_any_call(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "fidelity")).accounts[0]
    before = stack.snaptrade_wire.total
    with pytest.raises(TradingRefused) as refused:
        await _service(stack).place(user, account.id, BUY_ONE, idempotency_key="ro")
    assert "snaptrade" in refused.value.message
    assert "do not include trading" in refused.value.reason
    assert stack.snaptrade_wire.total == before


async def test_another_users_account_is_not_found(stack):
    owner, intruder = await stack.new_user(), await stack.new_user()
    account = (await stack.link(owner, "schwab")).accounts[0]
    with pytest.raises(NotFoundError):
        await _service(stack).place(intruder, account.id, BUY_ONE, idempotency_key="x")


async def test_list_and_cancel_go_to_the_accounts_provider(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "schwab")).accounts[0]
    orders = _service(stack)
    limit = BUY_ONE.model_copy(
        update={"order_type": OrderType.LIMIT, "limit_price": Decimal("1.00")}
    )
    placed = await orders.place(user, account.id, limit, idempotency_key="lim")
    listed = await orders.list_orders(user, account.id)
    assert placed.order_id in {o.order_id for o in listed}
    cancelled = await orders.cancel(user, account.id, placed.order_id)
    assert cancelled.order_id == placed.order_id
