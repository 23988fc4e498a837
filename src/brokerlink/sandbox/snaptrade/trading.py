"""Trading routes: order impact, placing a checked trade, force orders, cancel, symbols.

Sandbox-only: a placing request (`/trade/{tradeId}`, `/trade/place`) carrying
`X-Sandbox-Answer-Lost: <5xx status>` is processed (the order is placed) and then answered with
that error status, as when a real service places an order and its answer is lost on the way
back. The app-wide faults of `_faults` fail a request *before* it is processed.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.responses import Response

from brokerlink.sandbox.snaptrade import wire
from brokerlink.sandbox.snaptrade._routing import Ctx, RouteSpec, error_response, json_response
from brokerlink.sandbox.snaptrade.seed import SymbolInfo
from brokerlink.sandbox.snaptrade.state import (
    Account,
    ApiError,
    Order,
    PendingTrade,
    invalid,
    not_found,
)

__all__ = ["ANSWER_LOST_HEADER", "TRADING_ROUTES"]

ANSWER_LOST_HEADER = "X-Sandbox-Answer-Lost"

ACTIONS = ("BUY", "SELL")
ORDER_TYPES = ("Market", "Limit", "StopLimit", "Stop")
TIME_IN_FORCE = ("Day", "GTC", "FOK", "IOC", "GTD")


def _decimal(body: dict[str, Any], name: str, *, required: bool = False) -> Decimal | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(f"{name}: this field is required")
        return None
    if isinstance(value, bool):
        raise invalid(f"{name}: must be a number")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise invalid(f"{name}: must be a number") from None
    if not result.is_finite():
        raise invalid(f"{name}: must be a finite number")
    return result


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = body.get(name)
    if value not in allowed:
        raise invalid(f"{name}: must be one of {', '.join(allowed)}")
    return str(value)


def _symbol(ctx: Ctx, body: dict[str, Any]) -> SymbolInfo:
    symbol_id, ticker = body.get("universal_symbol_id"), body.get("symbol")
    found = None
    if isinstance(symbol_id, str) and symbol_id:
        found = ctx.state.symbol_by_id(symbol_id)
    elif isinstance(ticker, str) and ticker:
        found = ctx.state.find_symbol(ticker)
    else:
        raise invalid("universal_symbol_id or symbol is required")
    if found is None:
        raise invalid(f"Symbol {symbol_id or ticker} is not tradable at this brokerage")
    return found


def _answer_lost(ctx: Ctx) -> int | None:
    """The status the answer-lost header asks for, checked before anything is placed."""
    lost = ctx.request.headers.get(ANSWER_LOST_HEADER)
    if lost is None:
        return None
    try:
        status = int(lost)
    except ValueError:
        status = 0
    if not 500 <= status <= 599:
        raise invalid(f"{ANSWER_LOST_HEADER}: must be a 5xx status, got {lost!r}")
    return status


def _placed(order: Order, lost: int | None) -> Response:
    """The placed order's record, or the error the answer-lost header asked for."""
    if lost is None:
        return json_response(wire.order(order))
    return error_response(ApiError(lost, "1000", "Injected fault after the order was placed"))


def _trading_account(ctx: Ctx, body: dict[str, Any]) -> Account:
    account_id = body.get("account_id")
    if not isinstance(account_id, str) or not account_id:
        raise invalid("account_id: this field is required")
    return ctx.state.trading_account(ctx.user_id, account_id)


def _impact(ctx: Ctx, trade: PendingTrade, account: Account) -> dict[str, Any]:
    s = trade.symbol
    price = trade.price if trade.price is not None else s.price
    sign = Decimal(1) if trade.action == "BUY" else Decimal(-1)
    cash = account.cash.get(s.currency, Decimal(0))
    remaining = (cash - sign * trade.units * price).quantize(Decimal("0.01"))
    currency_id = wire.currency(s.currency)["id"]
    return {
        "trade": {
            "id": trade.id,
            "account": account.id,
            "order_type": trade.order_type,
            "time_in_force": trade.time_in_force,
            "symbol": {
                "universal_symbol_id": s.id,
                "currency": wire.currency(s.currency),
                "local_id": s.symbol,
                "description": s.description,
                "symbol": s.symbol,
                "brokerage_symbol_id": s.id,
            },
            "action": trade.action,
            "units": float(trade.units),
            "price": float(price),
        },
        "trade_impacts": [
            {
                "account": account.id,
                "currency": currency_id,
                "remaining_cash": float(remaining),
                "estimated_commission": 0.0,
                "forex_fees": 0.0,
            }
        ],
        "combined_remaining_balance": {
            "account": {
                "id": account.id,
                "name": account.name,
                "number": account.number,
                "institution_account_id": account.institution_account_id,
            },
            "currency": wire.currency(s.currency),
            "cash": float(remaining),
        },
    }


async def _trade_impact(ctx: Ctx) -> Response:
    body = ctx.body_dict()
    account = _trading_account(ctx, body)
    units = _decimal(body, "units", required=True)
    assert units is not None
    if units <= 0:
        raise invalid("units: must be greater than 0")
    trade = PendingTrade(
        id=ctx.state.new_id("trade"),
        user_id=ctx.user_id,
        account_id=account.id,
        symbol=_symbol(ctx, body),
        action=_choice(body, "action", ACTIONS),
        order_type=_choice(body, "order_type", ORDER_TYPES),
        time_in_force=_choice(body, "time_in_force", TIME_IN_FORCE),
        units=units,
        price=_decimal(body, "price"),
        stop=_decimal(body, "stop"),
        created_at=ctx.state.now(),
    )
    ctx.state.trades[trade.id] = trade
    return json_response(_impact(ctx, trade, account))


async def _place_checked(ctx: Ctx) -> Response:
    lost = _answer_lost(ctx)
    trade = ctx.state.trades.get(ctx.params["tradeId"])
    if trade is None or trade.user_id != ctx.user_id:
        # The spec documents 400, not 404, for this operation.
        raise invalid(f"Trade {ctx.params['tradeId']} not found; check its impact first")
    if trade.used:
        raise invalid(f"Trade {trade.id} was already placed")
    # A checked trade is only valid for a few minutes, as at the real service.
    if ctx.state.now() - trade.created_at > ctx.state.session_ttl:
        raise invalid(f"Trade {trade.id} has expired; check its impact again")
    account = ctx.state.trading_account(ctx.user_id, trade.account_id)
    order = ctx.state.place_order(
        account,
        trade.symbol,
        trade.action,
        trade.order_type,
        trade.time_in_force,
        trade.units,
        trade.price,
        trade.stop,
    )
    trade.used = True
    return _placed(order, lost)


async def _place_force(ctx: Ctx) -> Response:
    lost = _answer_lost(ctx)
    body = ctx.body_dict()
    account = _trading_account(ctx, body)
    client_order_id = body.get("client_order_id")
    if client_order_id is not None:
        if not isinstance(client_order_id, str) or not client_order_id:
            raise invalid("client_order_id: must be a non-empty string")
        existing = ctx.state.find_client_order(account.id, client_order_id)
        if existing is not None:
            # Idempotent: a retried request answers the order it already placed.
            return json_response(wire.order(existing))
    if body.get("notional_value") is not None:
        raise invalid("notional_value: not supported by the sandbox; send units")
    units = _decimal(body, "units", required=True)
    assert units is not None
    order = ctx.state.place_order(
        account,
        _symbol(ctx, body),
        _choice(body, "action", ACTIONS),
        _choice(body, "order_type", ORDER_TYPES),
        _choice(body, "time_in_force", TIME_IN_FORCE),
        units,
        _decimal(body, "price"),
        _decimal(body, "stop"),
        client_order_id=client_order_id,
    )
    return _placed(order, lost)


async def _cancel(ctx: Ctx) -> Response:
    account = ctx.state.trading_account(ctx.user_id, ctx.params["accountId"])
    order_id = ctx.body_dict().get("brokerage_order_id")
    if not isinstance(order_id, str) or not order_id:
        raise invalid("brokerage_order_id: this field is required")
    order = ctx.state.cancel_order(account, order_id)
    return json_response(
        {
            "brokerage_order_id": order.brokerage_order_id,
            "raw_response": {"status": order.status, "sandbox": True},
        }
    )


async def _symbol_by_ticker(ctx: Ctx) -> Response:
    found = ctx.state.find_symbol(ctx.params["query"]) or ctx.state.symbol_by_id(
        ctx.params["query"]
    )
    if found is None:
        raise not_found(f"Symbol {ctx.params['query']} not found")
    return json_response(wire.universal_symbol(found))


async def _search_symbols(ctx: Ctx) -> Response:
    substring = ctx.body_dict().get("substring", "")
    if not isinstance(substring, str):
        raise invalid("substring: must be a string")
    return json_response([wire.universal_symbol(s) for s in ctx.state.search_symbols(substring)])


async def _account_symbols(ctx: Ctx) -> Response:
    ctx.state.get_account(ctx.user_id, ctx.params["accountId"])
    return await _search_symbols(ctx)


TRADING_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/trade/impact", _trade_impact, user_scoped=True),
    RouteSpec("POST", "/trade/place", _place_force, user_scoped=True),
    RouteSpec("POST", "/trade/{tradeId}", _place_checked, user_scoped=True),
    RouteSpec("POST", "/accounts/{accountId}/trading/cancel", _cancel, user_scoped=True),
    RouteSpec("GET", "/symbols/{query}", _symbol_by_ticker),
    RouteSpec("POST", "/symbols", _search_symbols),
    RouteSpec("POST", "/accounts/{accountId}/symbols", _account_symbols, user_scoped=True),
)
