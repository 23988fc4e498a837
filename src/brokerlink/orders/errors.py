"""What placing an order can answer besides the order, one stable code per situation.

    OrderOutcomeError                 # the key, and whether the answer is a replay
    ├── IdempotencyKeyReused   422    # the key was used for a different order; nothing sent
    ├── OrderRejected          422    # the provider refused the order (with its reason)
    ├── OrderInFlight          409    # the first request with this key is still being placed
    ├── OrderInDoubt           409    # the provider's answer was lost; resolved on replay
    └── OrderNotPlaced         409    # reconciled: the provider has no such order; new key

Each carries the fields its JSON body adds (`details()`) and its response headers (`headers()`:
`Retry-After`, `Idempotent-Replayed`), so the order routes render them in the one error shape.
"""

from __future__ import annotations

from typing import Any

from brokerlink.errors import BrokerlinkError

__all__ = [
    "IdempotencyKeyReused",
    "OrderInDoubt",
    "OrderInFlight",
    "OrderNotPlaced",
    "OrderOutcomeError",
    "OrderRejected",
]


class OrderOutcomeError(BrokerlinkError):
    """An answer about the order request made with `key`."""

    def __init__(self, message: str, *, key: str, replayed: bool = False) -> None:
        super().__init__(message)
        self.key = key
        self.replayed = replayed

    def details(self) -> dict[str, Any]:
        return {"idempotency_key": self.key}

    def headers(self) -> dict[str, str]:
        return {"Idempotent-Replayed": "true"} if self.replayed else {}


class IdempotencyKeyReused(OrderOutcomeError):
    """The key is bound to another order's fingerprint; this request was not sent."""

    status_code = 422
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key} was already used for a different order (another account, "
            "side, symbol, size, type, price or time in force); nothing was sent. Use a new key "
            "for a new order.",
            key=key,
        )


class OrderRejected(OrderOutcomeError):
    """The provider refused the order; nothing was placed. Replays answer the same refusal."""

    status_code = 422
    code = "order_rejected"

    def __init__(self, key: str, reason: str, *, replayed: bool = False) -> None:
        super().__init__(
            f"The order with key {key} was refused by the provider: {reason}. Nothing was "
            "placed; use a new key to try again.",
            key=key,
            replayed=replayed,
        )
        self.reason = reason

    def details(self) -> dict[str, Any]:
        return {**super().details(), "reason": self.reason}


class OrderInFlight(OrderOutcomeError):
    """Another request with this key is being placed right now."""

    status_code = 409
    code = "order_in_flight"

    def __init__(self, key: str, *, retry_after: int = 1) -> None:
        super().__init__(
            f"The order with key {key} is being placed by an earlier request; retry with the "
            f"same key in {retry_after} s for its outcome.",
            key=key,
        )
        self.retry_after = retry_after

    def details(self) -> dict[str, Any]:
        return {**super().details(), "retry_after": self.retry_after}

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Retry-After": str(self.retry_after)}


class OrderInDoubt(OrderOutcomeError):
    """The order was sent but the provider's answer was lost: it may or may not be placed."""

    status_code = 409
    code = "order_in_doubt"
    resolution = (
        "Retry with the same Idempotency-Key: the retry first looks the order up at the "
        "provider. If it was placed, the retry answers it; if the provider has no such order, "
        "the retry says so and a new key may be used; until the provider can be asked, the "
        "order stays in doubt. Do not place it again with a new key before then."
    )

    def __init__(self, key: str, cause: str, *, retry_after: int = 5, replayed: bool = False):
        super().__init__(
            f"The outcome of the order with key {key} is unknown ({cause}). {self.resolution}",
            key=key,
            replayed=replayed,
        )
        self.reason = cause
        self.retry_after = retry_after

    def details(self) -> dict[str, Any]:
        return {
            **super().details(),
            "reason": self.reason,
            "resolution": self.resolution,
            "retry_after": self.retry_after,
        }

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Retry-After": str(self.retry_after)}


class OrderNotPlaced(OrderOutcomeError):
    """Reconciled: the provider has no order for this key. Nothing was placed."""

    status_code = 409
    code = "order_not_placed"

    def __init__(self, key: str, *, replayed: bool = True) -> None:
        super().__init__(
            f"The order with key {key} was not placed: the provider has no such order. "
            "Nothing was placed; place it again with a new Idempotency-Key.",
            key=key,
            replayed=replayed,
        )
