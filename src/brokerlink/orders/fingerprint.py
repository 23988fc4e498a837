"""The fingerprint an idempotency key is bound to: what was asked for, in one canonical spelling.

Two requests are "the same order" when they agree on the account, side, symbol, size (quantity
or notional), order type, limit and stop price and time in force; for a previewed order, on the
account and the preview's content. The canonical form normalises what JSON lets a client spell
several ways (`"1"`, `1.0`, `"1.000"`, `1E0` are one quantity; `aapl` and ` AAPL ` one symbol),
sorts keys and hashes the result (SHA-256, hex). `FINGERPRINT_VERSION` is part of the hashed
content so that a future change of the canonical form can never collide with stored values.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from brokerlink.domain.models import OrderPreview, OrderRequest

__all__ = [
    "FINGERPRINT_VERSION",
    "canonical_decimal",
    "order_fingerprint",
    "preview_fingerprint",
]

FINGERPRINT_VERSION = 1


def canonical_decimal(value: Decimal | None) -> str | None:
    """`Decimal("1.50")`, `Decimal("1.5")` and `Decimal("15E-1")` all become `"1.5"`."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _symbol(value: str | None) -> str | None:
    return value.strip().upper() if value is not None else None


def _digest(kind: str, content: dict[str, Any]) -> str:
    body = {"v": FINGERPRINT_VERSION, "kind": kind, **content}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def order_fingerprint(account_id: int, request: OrderRequest) -> str:
    """The fingerprint of an order placed in one step on our account `account_id`."""
    return _digest(
        "order",
        {
            "account": account_id,
            "side": request.side.value,
            "symbol": _symbol(request.symbol),
            "instrument": request.instrument_id,
            "order_type": request.order_type.value,
            "time_in_force": request.time_in_force.value,
            "quantity": canonical_decimal(request.quantity),
            "notional": canonical_decimal(request.notional),
            "limit_price": canonical_decimal(request.limit_price),
            "stop_price": canonical_decimal(request.stop_price),
        },
    )


def preview_fingerprint(account_id: int, preview: OrderPreview) -> str:
    """The fingerprint of placing a confirmed preview: the preview's whole content counts."""
    return _digest(
        "preview",
        {
            "account": account_id,
            "provider": preview.provider.value,
            "provider_account": preview.account_id,
            "preview_id": preview.preview_id,
            "side": preview.side.value,
            "symbol": _symbol(preview.symbol),
            "quantity": canonical_decimal(preview.quantity),
            "price": canonical_decimal(preview.price),
            "currency": preview.currency,
            "estimated_commission": canonical_decimal(preview.estimated_commission),
            "remaining_cash": canonical_decimal(preview.remaining_cash),
        },
    )
