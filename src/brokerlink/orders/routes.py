"""`/api/accounts/{id}/orders`: preview, place (one order per idempotency key), list, cancel.

The trading gate answers first: an account that cannot trade is refused with the reason, and
nothing reaches a provider. Placing answers each outcome with its own code (`PLACE_RESPONSES`,
shown in the OpenAPI description); the service module says how a key's answers are decided.

Ids in the answers are the ones the rest of the API uses: an order's and a preview's
`account_id` is the account's id here (the `{account_id}` of the path and of
`/api/accounts/{id}`), the provider's own id is `provider_account_id`; `order_id` is the
provider's order id (the one `DELETE …/orders/{order_id}` takes); `client_order_id` is the
`Idempotency-Key` the order was placed with here (null for an order placed elsewhere).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from brokerlink.api.deps import CurrentUser, State
from brokerlink.api.exception_handlers import error_body
from brokerlink.api.state import AppState
from brokerlink.db.session import transaction
from brokerlink.domain.enums import OrderSide, OrderStatus, OrderType, Provider, TimeInForce
from brokerlink.domain.models import Order, OrderPreview, OrderRequest
from brokerlink.errors import ID_MAX_LENGTH, PRINTABLE, PROVIDER_ID
from brokerlink.orders.errors import OrderOutcomeError
from brokerlink.repositories import OrderRepository

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
        pattern="^[!-~]+$",  # visible ASCII: it is the order's client order id
        description=(
            "One order per key: a retry of the same order with the same key returns the same "
            "order (marked `Idempotent-Replayed: true`); the key reused for a different order is "
            "refused with 422 `idempotency_key_reused`. The order answers it as its "
            "`client_order_id`."
        ),
    ),
]

REPLAYED_HEADER = "Idempotent-Replayed"


class OrderOut(BaseModel):
    """An order, with the API's ids (see the module docstring)."""

    provider: Provider
    account_id: int = Field(description="The account's id here, as in `/api/accounts/{id}`.")
    provider_account_id: str = Field(description="The provider's id of the account.")
    order_id: str = Field(description="The provider's order id.")
    client_order_id: str | None = Field(
        description="The `Idempotency-Key` the order was placed with; null if placed elsewhere."
    )
    status: OrderStatus
    raw_status: str | None = None
    symbol: str | None = None
    side: OrderSide | None = None
    raw_action: str | None = None
    order_type: OrderType | None = None
    time_in_force: TimeInForce | None = None
    quantity: Decimal | None = None
    filled_quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    average_fill_price: Decimal | None = None
    placed_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, order: Order, account_id: int, client_order_id: str | None) -> OrderOut:
        data = order.model_dump(exclude={"account_id", "client_order_id"})
        return cls(
            **data,
            account_id=account_id,
            provider_account_id=order.account_id,
            client_order_id=client_order_id,
        )


class PreviewOut(BaseModel):
    """A preview, with the API's ids: `account_id` is the account's id here."""

    provider: Provider
    account_id: int = Field(description="The account's id here, as in `/api/accounts/{id}`.")
    provider_account_id: str = Field(description="The provider's id of the account.")
    preview_id: str = Field(description="The provider's handle on the checked order.")
    symbol: str | None
    side: OrderSide
    quantity: Decimal | None
    price: Decimal | None
    currency: str | None
    estimated_commission: Decimal | None = None
    remaining_cash: Decimal | None = None


async def _keys(state: AppState, account_id: int) -> dict[str, str]:
    """The idempotency key of each order placed here on the account, by provider order id."""
    async with transaction(state.reads) as session:
        records = await OrderRepository.from_session(session).list_for_account(account_id)
    return {r.provider_order_id: r.idempotency_key for r in records if r.provider_order_id}


class ErrorDetail(BaseModel):
    code: str
    message: str
    idempotency_key: str | None = None
    reason: str | None = None
    resolution: str | None = None
    retry_after: int | None = None
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


_RETRY_AFTER = {"description": "Seconds to wait before retrying with the same key."}
PLACE_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {
        "description": (
            "The order, placed now, or the order an earlier request with the same key and the "
            "same order placed (then with `Idempotent-Replayed: true`)."
        ),
        "headers": {
            REPLAYED_HEADER: {
                "description": "`true` when this answer is the replay of an earlier request.",
                "schema": {"type": "string", "enum": ["true"]},
            }
        },
    },
    403: {"model": ErrorOut, "description": "`trading_not_allowed`: the account cannot trade."},
    404: {"model": ErrorOut, "description": "`not_found`: not the caller's account."},
    409: {
        "model": ErrorOut,
        "description": (
            "`order_in_flight`: an earlier request with this key is still being placed; retry "
            "with the same key after `Retry-After` seconds. "
            "`order_in_doubt`: the order was sent but the provider's answer was lost (timeout, "
            "5xx); `resolution` says how it is resolved: retry with the same key, which first "
            "looks the order up at the provider and answers it if placed. "
            "`order_not_placed`: such a lookup found no order; nothing was placed, use a new key."
        ),
        "headers": {"Retry-After": _RETRY_AFTER},
    },
    422: {
        "model": ErrorOut,
        "description": (
            "`idempotency_key_reused`: the key was used for a different order (account, side, "
            "symbol, size, type, price or time in force); nothing was sent. "
            "`order_rejected`: the provider refused the order, with its `reason`; a replay of "
            "the key answers the same refusal. `validation_error`: the request is invalid."
        ),
    },
}


def _outcome(error: OrderOutcomeError) -> JSONResponse:
    return JSONResponse(
        error_body(error.code, error.message, **error.details()),
        status_code=error.status_code,
        headers=error.headers(),
    )


@router.post("/preview", response_model=PreviewOut)
async def preview_order(
    account_id: Id, body: OrderIn, state: State, user: CurrentUser
) -> PreviewOut:
    """The provider's impact check: price, commission, remaining cash. Nothing is placed."""
    preview: OrderPreview = await state.orders.preview(user.id, account_id, body.request())
    data = preview.model_dump(exclude={"account_id"})
    return PreviewOut(**data, account_id=account_id, provider_account_id=preview.account_id)


@router.post("", response_model=OrderOut, status_code=201, responses=PLACE_RESPONSES)
async def place_order(
    account_id: Id,
    body: OrderIn,
    state: State,
    user: CurrentUser,
    idempotency_key: IdempotencyKey,
    response: Response,
) -> OrderOut | JSONResponse:
    """Place the order (never retried automatically; the same key never places twice)."""
    try:
        placement = await state.orders.place(
            user.id, account_id, body.request(), idempotency_key=idempotency_key
        )
    except OrderOutcomeError as error:
        return _outcome(error)
    if placement.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return OrderOut.of(placement.order, account_id, idempotency_key)


@router.get("", response_model=list[OrderOut])
async def list_orders(account_id: Id, state: State, user: CurrentUser) -> list[OrderOut]:
    """The account's orders at the provider, newest first as the provider lists them."""
    orders = await state.orders.list_orders(user.id, account_id)
    keys = await _keys(state, account_id)  # after the provider call: no transaction spans it
    return [OrderOut.of(o, account_id, keys.get(o.order_id)) for o in orders]


@router.delete("/{order_id}", response_model=OrderOut)
async def cancel_order(
    account_id: Id, order_id: OrderId, state: State, user: CurrentUser
) -> OrderOut:
    order = await state.orders.cancel(user.id, account_id, order_id)
    keys = await _keys(state, account_id)
    return OrderOut.of(order, account_id, keys.get(order.order_id))
