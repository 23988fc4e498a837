"""The request fingerprint: one value per order whatever its JSON spelling, a new value for any
change, and the migration that backfills it computing the same value the service does."""

import importlib.util
from decimal import Decimal
from pathlib import Path

import pytest

from brokerlink.db import migrate
from brokerlink.domain import OrderRequest, OrderSide, OrderType, Provider, TimeInForce
from brokerlink.domain.models import OrderPreview
from brokerlink.models import OrderRecordState
from brokerlink.orders import IdempotencyKeyReused, OrderService
from brokerlink.orders.fingerprint import (
    canonical_decimal,
    order_fingerprint,
    preview_fingerprint,
)
from brokerlink.repositories import OrderRepository

MIGRATION = (
    Path(migrate.__file__).parent.parent
    / "migrations/versions/2026-12-01-2210_order_fingerprint.py"
)
ORDER = OrderRequest(
    account_id="acc-1",
    side=OrderSide.BUY,
    symbol="AAPL",
    order_type=OrderType.LIMIT,
    limit_price=Decimal("187.5"),
    quantity=Decimal("2"),
)
PREVIEW = OrderPreview(
    provider=Provider.SNAPTRADE,
    account_id="acc-1",
    preview_id="trade-1",
    symbol="AAPL",
    side=OrderSide.BUY,
    quantity=Decimal(2),
    price=Decimal("187.50"),
    currency="USD",
    estimated_commission=Decimal(0),
    remaining_cash=Decimal("100.10"),
)


def _migration():
    spec = importlib.util.spec_from_file_location("order_fingerprint_migration", MIGRATION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        (Decimal("1"), "1"),
        (Decimal("1.000"), "1"),
        (Decimal("1E0"), "1"),
        (Decimal("1E+1"), "10"),
        (Decimal("0.50"), "0.5"),
        (Decimal("-0.0"), "0"),
        (Decimal("0.00000001"), "0.00000001"),
        (None, None),
    ],
)
def test_canonical_decimal(value, canonical):
    assert canonical_decimal(value) == canonical


def test_another_spelling_of_the_same_order_has_the_same_fingerprint():
    respelled = ORDER.model_copy(
        update={"symbol": " aapl ", "limit_price": Decimal("187.500"), "quantity": Decimal("2.0")}
    )
    assert order_fingerprint(7, respelled) == order_fingerprint(7, ORDER)


@pytest.mark.parametrize(
    "change",
    [
        {"side": OrderSide.SELL},
        {"symbol": "MSFT"},
        {"quantity": Decimal("2.00000001")},
        {"quantity": None, "notional": Decimal(2)},
        {"order_type": OrderType.STOP_LIMIT},
        {"limit_price": Decimal("187.51")},
        {"stop_price": Decimal("180")},
        {"time_in_force": TimeInForce.GTC},
    ],
)
def test_any_change_of_the_order_changes_the_fingerprint(change):
    assert order_fingerprint(7, ORDER.model_copy(update=change)) != order_fingerprint(7, ORDER)


def test_the_account_is_part_of_the_fingerprint():
    assert order_fingerprint(7, ORDER) != order_fingerprint(8, ORDER)
    assert preview_fingerprint(7, PREVIEW) != preview_fingerprint(8, PREVIEW)


def test_a_preview_is_fingerprinted_by_its_content():
    other = PREVIEW.model_copy(update={"preview_id": "trade-2"})
    assert preview_fingerprint(7, other) != preview_fingerprint(7, PREVIEW)
    same = PREVIEW.model_copy(update={"price": Decimal("187.5"), "symbol": "aapl"})
    assert preview_fingerprint(7, same) == preview_fingerprint(7, PREVIEW)


def test_the_migrations_frozen_copy_agrees_with_the_module():
    frozen = _migration()._fingerprint_v1
    assert frozen(7, ORDER.model_dump(mode="json")) == order_fingerprint(7, ORDER)
    stored = {"preview": PREVIEW.model_dump(mode="json")}
    assert frozen(7, stored) == preview_fingerprint(7, PREVIEW)


@pytest.mark.asyncio
async def test_the_migration_backfills_existing_records(stack, db_url):
    user = await stack.new_user()
    account = next(a for a in (await stack.link(user, "schwab")).accounts if a.capabilities.trading)
    orders = OrderService(stack.sessionmaker, {Provider.SNAPTRADE: stack.snaptrade})
    request = ORDER.model_copy(update={"limit_price": Decimal("1.00"), "quantity": Decimal(1)})
    placed = await orders.place(user, account.id, request, idempotency_key="before-0009")
    async with stack.sessionmaker() as session:
        repo = OrderRepository.from_session(session)
        gone = await repo.create(
            user_id=user,
            account_id=account.id,
            provider=Provider.SNAPTRADE,
            idempotency_key="not-placed",
            request=request.model_dump(mode="json"),
            fingerprint="x" * 64,
        )
        await repo.finish(gone, OrderRecordState.NOT_PLACED)
        await session.commit()

    await migrate.downgrade_async(db_url, "0008")
    await migrate.upgrade_async(db_url, "0009")

    async with stack.sessionmaker() as session:
        repo = OrderRepository.from_session(session)
        record = await repo.by_key(user, "before-0009")
        downgraded = await repo.by_key(user, "not-placed")
    assert record is not None
    assert downgraded is not None
    assert record.fingerprint == order_fingerprint(account.id, request)
    assert downgraded.state is OrderRecordState.REJECTED  # "nothing placed" before 0009
    await migrate.upgrade_async(db_url)  # the rest of the store, as the release runs it
    replay = await orders.place(user, account.id, request, idempotency_key="before-0009")
    assert replay.replayed
    assert replay.order == placed.order
    with pytest.raises(IdempotencyKeyReused):
        await orders.place(
            user,
            account.id,
            request.model_copy(update={"quantity": Decimal(3)}),
            idempotency_key="before-0009",
        )
