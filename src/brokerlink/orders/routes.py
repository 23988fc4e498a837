"""`/api/accounts/{id}/orders`: preview, place (one order per idempotency key), list, cancel.

The trading gate answers first: an account that cannot trade is refused with the reason, and
nothing reaches a provider.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Header, Path
from pydantic import BaseModel, Field, model_validator

from brokerlink.api.deps import CurrentUser, State
from brokerlink.domain.enums import OrderSide, OrderType, TimeInForce
from brokerlink.domain.models import Order, OrderPreview, OrderRequest
from brokerlink.errors import ID_MAX_LENGTH, PRINTABLE, PROVIDER_ID

__all__ = ["router"]

router = APIRouter(prefix="/api/accounts/{account_id}/orders", tags=["orders"])

Id = Annotated[int, Path(ge=1, le=2**62)]
OrderId = Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, pattern=PROVIDER_ID)]


class OrderIn(BaseModel):
    side: OrderSide
    symbol: str = Field(min_length=1, max_length=32, pattern=PRINTABLE)
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.DAY
    quantity: Decimal | None = Field(default=None, gt=0, max_digits=20, decimal_places=8)
    notional: Decimal | None = Field(default=None, gt=0, max_digits=24, decimal_places=8)
    limit_price: Decimal | None = Field(default=None, gt=0, max_digits=24, decimal_places=8)
    stop_price: Decimal | None = Field(default=None, gt=0, max_digits=24, decimal_places=8)

    @model_validator(mode="after")
    def _one_size(self) -> OrderIn:
        if (self.quantity is None) == (self.notional is None):
            raise ValueError("give exactly one of quantity or notional")
        if self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        return self

    def request(self) -> OrderRequest:
        return OrderRequest(
            account_id="",
            side=self.side,
            symbol=self.symbol.strip().upper(),
            order_type=self.order_type,
            time_in_force=self.time_in_force,
            quantity=self.quantity,
            notional=self.notional,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
        )


IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=128,
        pattern="^[!-~]+$",  # visible ASCII: the provider receives it as the client order id
        description="One order per key: a retry with the same key returns the same order.",
    ),
]


@router.post("/preview", response_model=OrderPreview)
async def preview_order(
    account_id: Id, body: OrderIn, state: State, user: CurrentUser
) -> OrderPreview:
    """The provider's impact check: price, commission, remaining cash. Nothing is placed."""
    return await state.orders.preview(user.id, account_id, body.request())


@router.post("", response_model=Order, status_code=201)
async def place_order(
    account_id: Id,
    body: OrderIn,
    state: State,
    user: CurrentUser,
    idempotency_key: IdempotencyKey,
) -> Order:
    """Place the order (never retried automatically; the same key never places twice)."""
    return await state.orders.place(
        user.id, account_id, body.request(), idempotency_key=idempotency_key
    )


@router.get("", response_model=list[Order])
async def list_orders(account_id: Id, state: State, user: CurrentUser) -> list[Order]:
    return await state.orders.list_orders(user.id, account_id)


@router.delete("/{order_id}", response_model=Order)
async def cancel_order(account_id: Id, order_id: OrderId, state: State, user: CurrentUser) -> Order:
    return await state.orders.cancel(user.id, account_id, order_id)
