"""Find the order an in-doubt request placed, in the account's order list at the provider.

A provider's order record does not carry our idempotency key (SnapTrade's `AccountOrderRecord`
has no client order id), so an order is recognised by what was asked for: the same side,
symbol, order type, time in force, quantity, limit and stop price, placed no earlier than our
record was committed (less `CLOCK_SKEW`, for the provider's clock), and not already the order
of another of our records. The earliest such order is ours: any later twin was placed after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from brokerlink.domain.models import Order, OrderPreview, OrderRequest
from brokerlink.domain.symbols import normalize_symbol

__all__ = ["CLOCK_SKEW", "Wanted", "find_placed", "wanted_from_request"]

CLOCK_SKEW = timedelta(minutes=5)


class Wanted:
    """The parts of a stored request an order at the provider must agree with."""

    def __init__(
        self,
        *,
        side: str,
        symbol: str | None,
        quantity: Decimal | None,
        order_type: str | None = None,
        time_in_force: str | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> None:
        self.side = side
        self.symbol = normalize_symbol(symbol) if symbol else None
        self.quantity = quantity
        self.order_type = order_type
        self.time_in_force = time_in_force
        self.limit_price = limit_price
        self.stop_price = stop_price

    def matches(self, order: Order) -> bool:
        pairs: list[tuple[Any, Any]] = [
            (self.side, order.side.value if order.side else None),
            (self.symbol, order.symbol),
            (self.order_type, order.order_type.value if order.order_type else None),
            (self.time_in_force, order.time_in_force.value if order.time_in_force else None),
            (self.quantity, order.quantity),
            (self.limit_price, order.limit_price),
            (self.stop_price, order.stop_price),
        ]
        # What we did not ask for, or the provider does not report, cannot tell orders apart.
        return all(a == b for a, b in pairs if a is not None and b is not None)


def wanted_from_request(request: dict[str, Any]) -> Wanted:
    """`Wanted` from an order record's stored request (a one-step order or a preview)."""
    if "preview" in request:
        preview = OrderPreview.model_validate(request["preview"])
        return Wanted(side=preview.side.value, symbol=preview.symbol, quantity=preview.quantity)
    order = OrderRequest.model_validate(request)
    return Wanted(
        side=order.side.value,
        symbol=order.symbol,
        quantity=order.quantity,
        order_type=order.order_type.value,
        time_in_force=order.time_in_force.value,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
    )


def find_placed(
    wanted: Wanted, orders: Iterable[Order], *, since: datetime, claimed: set[str]
) -> Order | None:
    """The earliest unclaimed order matching `wanted` placed after `since` (less the skew)."""
    earliest = since - CLOCK_SKEW
    candidates = [
        o
        for o in orders
        if o.order_id not in claimed
        and (o.placed_at is None or o.placed_at >= earliest)
        and wanted.matches(o)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda o: (o.placed_at is None, o.placed_at or since))
