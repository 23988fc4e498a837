"""Orders: preview, place (by idempotency key, behind the trading gate), list, cancel."""

from brokerlink.orders.errors import (
    IdempotencyKeyReused,
    OrderInDoubt,
    OrderInFlight,
    OrderNotPlaced,
    OrderOutcomeError,
    OrderRejected,
)
from brokerlink.orders.service import OrderService, Placement

__all__ = [
    "IdempotencyKeyReused",
    "OrderInDoubt",
    "OrderInFlight",
    "OrderNotPlaced",
    "OrderOutcomeError",
    "OrderRejected",
    "OrderService",
    "Placement",
]
