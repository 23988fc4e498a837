"""Idempotency keys bound to the order they placed, and the outcomes a key answers, against the
SnapTrade sandbox (orders counted at the sandbox itself)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from brokerlink.domain import OrderRequest, OrderSide, OrderType, Provider, TimeInForce
from brokerlink.models import OrderRecord, OrderRecordState
from brokerlink.orders import (
    IdempotencyKeyReused,
    OrderInDoubt,
    OrderInFlight,
    OrderNotPlaced,
    OrderRejected,
    OrderService,
)
from brokerlink.orders.fingerprint import order_fingerprint
from brokerlink.repositories import OrderRepository
from brokerlink.sandbox._faults import FaultConfig
from tests.fixtures.api import Clock
from tests.orders.sandbox_faults import lose_next_answers, sandbox_orders

pytestmark = pytest.mark.asyncio

LIMIT = OrderRequest(
    account_id="",
    side=OrderSide.BUY,
    symbol="AAPL",
    order_type=OrderType.LIMIT,
    limit_price=Decimal("1.00"),
    quantity=Decimal(1),
)


def _service(stack, **kw):
    return OrderService(stack.sessionmaker, {Provider.SNAPTRADE: stack.snaptrade}, **kw)


async def _trading_accounts(stack, user):
    accounts = (await stack.link(user, "schwab")).accounts
    return [a for a in accounts if a.capabilities.trading]


async def _record(stack, user, key) -> OrderRecord:
    async with stack.sessionmaker() as session:
        record = await OrderRepository.from_session(session).by_key(user, key)
    assert record is not None
    return record


def _fail_placing_before_processing(stack, status: int = 503) -> None:
    stack.snaptrade_app.state.sandbox.faults.configure(
        FaultConfig(fail_next=[status], path_pattern="^/trade/(?!impact$)")
    )


class TestKeyReusedForAnotherOrder:
    @pytest.mark.parametrize(
        "change",
        [
            {"side": OrderSide.SELL},
            {"symbol": "MSFT"},
            {"quantity": Decimal(2)},
            {"order_type": OrderType.MARKET, "limit_price": None},
            {"limit_price": Decimal("1.01")},
            {"time_in_force": TimeInForce.GTC},
        ],
        ids=["side", "symbol", "quantity", "type", "limit", "tif"],
    )
    async def test_is_refused_and_sends_nothing(self, stack, change):
        user = await stack.new_user()
        account = (await _trading_accounts(stack, user))[0]
        orders = _service(stack)
        await orders.place(user, account.id, LIMIT, idempotency_key="reused-1")
        before, wire = sandbox_orders(stack), stack.snaptrade_wire.total

        with pytest.raises(IdempotencyKeyReused) as refused:
            await orders.place(
                user, account.id, LIMIT.model_copy(update=change), idempotency_key="reused-1"
            )
        assert refused.value.status_code == 422
        assert "reused-1" in refused.value.message
        assert sandbox_orders(stack) == before
        assert stack.snaptrade_wire.total == wire

    async def test_on_another_account_is_refused(self, stack):
        user = await stack.new_user()
        accounts = await _trading_accounts(stack, user)
        assert len(accounts) >= 2
        orders = _service(stack)
        await orders.place(user, accounts[0].id, LIMIT, idempotency_key="reused-2")
        before = sandbox_orders(stack)
        with pytest.raises(IdempotencyKeyReused):
            await orders.place(user, accounts[1].id, LIMIT, idempotency_key="reused-2")
        assert sandbox_orders(stack) == before

    async def test_the_same_order_spelled_otherwise_is_a_replay(self, stack):
        user = await stack.new_user()
        account = (await _trading_accounts(stack, user))[0]
        orders = _service(stack)
        first = await orders.place(user, account.id, LIMIT, idempotency_key="spelled")
        before = sandbox_orders(stack)
        respelled = LIMIT.model_copy(
            update={"symbol": " aapl", "limit_price": Decimal("1.0000"), "quantity": Decimal("1E0")}
        )
        again = await orders.place(user, account.id, respelled, idempotency_key="spelled")
        assert again.replayed
        assert again.order.order_id == first.order.order_id
        assert sandbox_orders(stack) == before

    async def test_another_preview_is_refused(self, stack):
        user = await stack.new_user()
        account = (await _trading_accounts(stack, user))[0]
        orders = _service(stack)
        one = await orders.preview(user, account.id, LIMIT)
        two = await orders.preview(user, account.id, LIMIT)
        await orders.place_previewed(user, account.id, one, idempotency_key="preview-key")
        before = sandbox_orders(stack)
        with pytest.raises(IdempotencyKeyReused):
            await orders.place_previewed(user, account.id, two, idempotency_key="preview-key")
        assert sandbox_orders(stack) == before


class TestRejected:
    async def test_the_refusal_names_the_reason_and_a_replay_answers_it_again(self, stack):
        user = await stack.new_user()
        account = (await _trading_accounts(stack, user))[0]
        orders = _service(stack)
        preview = await orders.preview(user, account.id, LIMIT)
        await orders.place_previewed(user, account.id, preview, idempotency_key="first-use")
        before = sandbox_orders(stack)
        # The sandbox refuses a checked trade placed a second time (under another key).
        with pytest.raises(OrderRejected) as refused:
            await orders.place_previewed(user, account.id, preview, idempotency_key="second-use")
        assert "already placed" in refused.value.reason
        assert not refused.value.replayed
        wire = stack.snaptrade_wire.total

        with pytest.raises(OrderRejected) as again:
            await orders.place_previewed(user, account.id, preview, idempotency_key="second-use")
        assert again.value.reason == refused.value.reason
        assert again.value.replayed
        assert stack.snaptrade_wire.total == wire
        assert sandbox_orders(stack) == before
        assert (await _record(stack, user, "second-use")).state is OrderRecordState.REJECTED


class TestInDoubt:
    async def test_placed_but_answer_lost_is_found_on_replay(self, stack):
        user = await stack.new_user()
        account = (await _trading_accounts(stack, user))[0]
        orders = _service(stack)
        before = sandbox_orders(stack)
        lose_next_answers(stack, status=502)

        with pytest.raises(OrderInDoubt) as doubt:
            await orders.place(user, account.id, LIMIT, idempotency_key="lost")
        assert doubt.value.status_code == 409
        assert "same Idempotency-Key" in doubt.value.resolution
        assert sandbox_orders(stack) == before + 1  # it was placed
        assert (await _record(stack, user, "lost")).state is OrderRecordState.UNKNOWN

        replay = await orders.place(user, account.id, LIMIT, idempotency_key="lost")
        assert replay.replayed
        assert replay.order.order_id in stack.snaptrade_app.state.sandbox.orders
        assert sandbox_orders(stack) == before + 1  # and never placed again
        record = await _record(stack, user, "lost")
        assert record.state is OrderRecordState.PLACED
        assert record.provider_order_id == replay.order.order_id

        third = await orders.place(user, account.id, LIMIT, idempotency_key="lost")
        assert third.replayed
        assert third.order == replay.order

    async def test_an_earlier_identical_order_is_not_taken_for_ours(self, stack):
        user = await stack.new_user()
        account = (await _trading_accounts(stack, user))[0]
        orders = _service(stack)
        earlier = await orders.place(user, account.id, LIMIT, idempotency_key="twin-1")
        lose_next_answers(stack)
        with pytest.raises(OrderInDoubt):
            await orders.place(user, account.id, LIMIT, idempotency_key="twin-2")
        replay = await orders.place(user, account.id, LIMIT, idempotency_key="twin-2")
        assert replay.order.order_id != earlier.order.order_id

    async def test_provably_absent_is_settled_as_not_placed(self, stack):
        user = await stack.new_user()
        account = (await _trading_accounts(stack, user))[0]
        clock = Clock()
        orders = _service(stack, clock=clock, absent_after=timedelta(seconds=60))
        before = sandbox_orders(stack)
        _fail_placing_before_processing(stack)

        with pytest.raises(OrderInDoubt):
            await orders.place(user, account.id, LIMIT, idempotency_key="absent")
        # Too soon to call it absent: a provider that failed may still be processing it.
        with pytest.raises(OrderInDoubt) as still:
            await orders.place(user, account.id, LIMIT, idempotency_key="absent")
        assert still.value.replayed
        assert 1 <= still.value.retry_after <= 60
        assert (await _record(stack, user, "absent")).state is OrderRecordState.UNKNOWN

        clock.advance(timedelta(seconds=61))
        with pytest.raises(OrderNotPlaced) as absent:
            await orders.place(user, account.id, LIMIT, idempotency_key="absent")
        assert "new Idempotency-Key" in absent.value.message
        assert (await _record(stack, user, "absent")).state is OrderRecordState.NOT_PLACED
        with pytest.raises(OrderNotPlaced):
            await orders.place(user, account.id, LIMIT, idempotency_key="absent")
        assert sandbox_orders(stack) == before

        placed = await orders.place(user, account.id, LIMIT, idempotency_key="absent-new-key")
        assert sandbox_orders(stack) == before + 1
        assert not placed.replayed

    async def test_an_unreachable_provider_leaves_it_in_doubt(self, stack):
        user = await stack.new_user()
        account = (await _trading_accounts(stack, user))[0]
        orders = _service(stack, absent_after=timedelta(0))
        lose_next_answers(stack)
        with pytest.raises(OrderInDoubt):
            await orders.place(user, account.id, LIMIT, idempotency_key="unreachable")
        stack.snaptrade_app.state.sandbox.faults.configure(
            FaultConfig(error_rate=1.0, error_status=503, path_pattern="/orders$")
        )
        with pytest.raises(OrderInDoubt) as doubt:
            await orders.place(user, account.id, LIMIT, idempotency_key="unreachable")
        assert "could not be asked" in doubt.value.message
        assert (await _record(stack, user, "unreachable")).state is OrderRecordState.UNKNOWN

        stack.snaptrade_app.state.sandbox.faults.reset()
        found = await orders.place(user, account.id, LIMIT, idempotency_key="unreachable")
        assert found.replayed


class TestInFlight:
    async def test_a_sending_record_is_in_flight_until_it_goes_stale(self, stack):
        user = await stack.new_user()
        account = (await _trading_accounts(stack, user))[0]
        clock = Clock()
        orders = _service(stack, clock=clock, in_flight_timeout=timedelta(minutes=10))
        before = sandbox_orders(stack)
        async with stack.sessionmaker() as session:
            # A process that committed its intent and died before calling the provider.
            await OrderRepository.from_session(session).create(
                user_id=user,
                account_id=account.id,
                provider=Provider.SNAPTRADE,
                idempotency_key="crashed",
                request=LIMIT.model_dump(mode="json"),
                fingerprint=order_fingerprint(account.id, LIMIT),
                at=clock(),
            )
            await session.commit()
        with pytest.raises(OrderInFlight) as flight:
            await orders.place(user, account.id, LIMIT, idempotency_key="crashed")
        assert flight.value.headers()["Retry-After"] == "1"

        clock.advance(timedelta(minutes=11))
        with pytest.raises(OrderNotPlaced):
            await orders.place(user, account.id, LIMIT, idempotency_key="crashed")
        assert sandbox_orders(stack) == before
