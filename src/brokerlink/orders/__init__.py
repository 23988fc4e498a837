"""Orders: preview, place (by idempotency key, behind the trading gate), list, cancel."""

from brokerlink.orders.service import OrderInDoubt, OrderService

__all__ = ["OrderInDoubt", "OrderService"]
