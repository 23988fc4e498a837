"""Orders through the gate and by idempotency key, against the SnapTrade sandbox."""

import asyncio
from decimal import Decimal

import pytest

from brokerlink.domain import OrderRequest, OrderSide, OrderType, Provider
from brokerlink.errors import NotFoundError, ValidationError
from brokerlink.orders import OrderInFlight, OrderService
from brokerlink.policies import TradingRefused
from tests.orders.sandbox_faults import sandbox_orders

pytestmark = pytest.mark.asyncio

BUY_ONE = OrderRequest(account_id="", side=OrderSide.BUY, symbol="AAPL", quantity=Decimal(1))


def _placements(stack):
    """Orders sent to SnapTrade: checked trades (`/trade/{id}`) and plain ones (`/trade/place`)."""
    return sum(
        n
        for path, n in stack.snaptrade_wire.paths.items()
        if path.startswith("/trade/") and path != "/trade/impact"
    )


def _service(stack):
    return OrderService(stack.sessionmaker, {Provider.SNAPTRADE: stack.snaptrade})


async def test_the_same_key_never_places_twice(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "schwab")).accounts[0]
    orders = _service(stack)

    first = await orders.place(user, account.id, BUY_ONE, idempotency_key="k-1")
    again = await orders.place(user, account.id, BUY_ONE, idempotency_key="k-1")
    assert not first.replayed
    assert again.replayed
    assert again.order == first.order
    assert _placements(stack) == 1

    other = await orders.place(user, account.id, BUY_ONE, idempotency_key="k-2")
    assert not other.replayed
    assert other.order.order_id != first.order.order_id
    assert _placements(stack) == 2


async def test_concurrent_requests_with_one_key_place_once(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "schwab")).accounts[0]
    orders = _service(stack)
    before = sandbox_orders(stack)

    results = await asyncio.gather(
        *(orders.place(user, account.id, BUY_ONE, idempotency_key="burst") for _ in range(5)),
        return_exceptions=True,
    )
    placed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert placed
    assert all(isinstance(r, OrderInFlight) for r in refused), refused
    assert all(r.retry_after >= 1 for r in refused)
    assert len({p.order.order_id for p in placed}) == 1
    assert [p.replayed for p in placed].count(False) == 1
    assert _placements(stack) == 1
    assert sandbox_orders(stack) == before + 1


async def test_read_only_institution_is_refused_before_any_call(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "fidelity")).accounts[0]
    before = stack.snaptrade_wire.total
    with pytest.raises(TradingRefused) as refused:
        await _service(stack).place(user, account.id, BUY_ONE, idempotency_key="ro")
    assert "snaptrade" in refused.value.message
    assert "Fidelity Investments is read-only here" in refused.value.reason
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
    placed = (await orders.place(user, account.id, limit, idempotency_key="lim")).order
    listed = await orders.list_orders(user, account.id)
    assert placed.order_id in {o.order_id for o in listed}
    cancelled = await orders.cancel(user, account.id, placed.order_id)
    assert cancelled.order_id == placed.order_id


async def test_snaptrade_orders_go_through_order_impact_first(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "schwab")).accounts[0]
    await _service(stack).place(user, account.id, BUY_ONE, idempotency_key="checked")
    paths = stack.snaptrade_wire.paths
    assert paths["/trade/impact"] == 1
    assert _placements(stack) == 1
    assert paths["/trade/place"] == 0  # placed as the checked trade, not a blind order


async def test_preview_is_returned_for_confirmation_then_placed_once(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "schwab")).accounts[0]
    orders = _service(stack)
    preview = await orders.preview(user, account.id, BUY_ONE)
    before = sandbox_orders(stack)
    assert preview.symbol == "AAPL"
    assert preview.preview_id
    placed = await orders.place_previewed(user, account.id, preview, idempotency_key="conf")
    again = await orders.place_previewed(user, account.id, preview, idempotency_key="conf")
    assert again.order == placed.order
    assert again.replayed
    assert sandbox_orders(stack) == before + 1


async def test_a_symbol_the_brokerage_does_not_trade_is_refused_before_placing(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "schwab")).accounts[0]
    unknown = BUY_ONE.model_copy(update={"symbol": "NOPE123"})
    with pytest.raises(ValidationError, match="NOPE123"):
        await _service(stack).place(user, account.id, unknown, idempotency_key="bad")
    assert stack.snaptrade_wire.paths["/trade/impact"] == 0


async def test_a_refusal_before_placing_leaves_the_key_free(stack):
    user = await stack.new_user()
    account = (await stack.link(user, "schwab")).accounts[0]
    orders = _service(stack)
    unknown = BUY_ONE.model_copy(update={"symbol": "NOPE123"})
    before = sandbox_orders(stack)
    for _ in range(2):  # the same refusal again, not a stored "in flight"
        with pytest.raises(ValidationError, match="NOPE123"):
            await orders.place(user, account.id, unknown, idempotency_key="free")
    assert sandbox_orders(stack) == before
