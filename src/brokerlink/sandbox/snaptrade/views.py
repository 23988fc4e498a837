"""Account data routes: accounts, balances, positions, holdings, orders, activities."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from brokerlink.sandbox.snaptrade import wire
from brokerlink.sandbox.snaptrade._routing import Ctx, RouteSpec, json_response
from brokerlink.sandbox.snaptrade.state import Account, Holding, invalid, not_found

__all__ = ["ACCOUNT_ROUTES"]

DAY = 86400.0


def _account(ctx: Ctx) -> Account:
    return ctx.state.data_account(ctx.user_id, ctx.params["accountId"])


def _position(h: Holding) -> dict[str, Any]:
    """The legacy `Position` shape (positions and holdings endpoints)."""
    assert h.symbol is not None
    s = h.symbol
    return {
        "symbol": {
            "symbol": wire.universal_symbol(s),
            "id": s.id,
            "description": s.description,
            "local_id": None,
            "is_quotable": True,
            "is_tradable": True,
        },
        "units": float(h.units),
        "price": float(h.price),
        "open_pnl": float(((h.price - h.cost_basis) * h.units).quantize(Decimal("0.01"))),
        "average_purchase_price": float(h.cost_basis),
        "fractional_units": None,
        "currency": wire.currency(h.currency),
        "cash_equivalent": h.cash_equivalent,
        "tax_lots": [],
    }


def _positions(a: Account) -> list[dict[str, Any]]:
    return [_position(h) for h in a.holdings if h.option is None and h.symbol is not None]


async def _list_accounts(ctx: Ctx) -> Response:
    accounts = ctx.state.user_accounts(ctx.user_id)
    return json_response([wire.account(ctx.state, a) for a in accounts])


async def _get_account(ctx: Ctx) -> Response:
    account = ctx.state.get_account(ctx.user_id, ctx.params["accountId"])
    return json_response(wire.account(ctx.state, account))


async def _balances(ctx: Ctx) -> Response:
    return json_response(wire.balances(_account(ctx)))


async def _positions_route(ctx: Ctx) -> Response:
    return json_response(_positions(_account(ctx)))


async def _all_positions(ctx: Ctx) -> Response:
    return json_response(wire.positions(ctx.state, _account(ctx)))


async def _holdings(ctx: Ctx) -> Response:
    account = _account(ctx)
    return json_response(
        {
            "account": wire.account(ctx.state, account),
            "balances": wire.balances(account),
            "positions": _positions(account),
            "option_positions": [],
            "orders": [wire.order(o) for o in ctx.state.account_orders(account.id)],
            "total_value": {"value": float(account.total_value()), "currency": "USD"},
        }
    )


def _filtered_orders(ctx: Ctx, account: Account) -> list[Any]:
    state_filter = ctx.query.get("state", "all")
    if state_filter not in ("all", "open", "executed"):
        raise invalid(f"state: invalid value {state_filter!r}")
    try:
        days = int(ctx.query.get("days", "30"))
    except ValueError:
        raise invalid("days: must be an integer") from None
    if days < 1:
        raise invalid("days: must be at least 1")
    since = ctx.state.now() - days * DAY
    orders = [o for o in ctx.state.account_orders(account.id) if o.placed_at >= since]
    if state_filter == "open":
        orders = [o for o in orders if o.is_open]
    elif state_filter == "executed":
        orders = [o for o in orders if o.status == "EXECUTED"]
    return orders


async def _orders(ctx: Ctx) -> Response:
    orders = _filtered_orders(ctx, _account(ctx))
    return json_response([wire.order(o) for o in orders])


async def _orders_v2(ctx: Ctx) -> Response:
    orders = _filtered_orders(ctx, _account(ctx))
    return json_response({"orders": [wire.order_v2(o) for o in orders]})


async def _recent_orders(ctx: Ctx) -> Response:
    account = _account(ctx)
    since = ctx.state.now() - DAY
    orders = [o for o in ctx.state.account_orders(account.id) if o.updated_at >= since]
    if ctx.query.get("only_executed", "true").lower() != "false":
        orders = [o for o in orders if o.status == "EXECUTED"]
    return orders_response(ctx, orders)


def orders_response(ctx: Ctx, orders: list[Any]) -> Response:
    if ctx.request.url.path.endswith("/v2"):
        return json_response({"orders": [wire.order_v2(o) for o in orders]})
    return json_response({"orders": [wire.order(o) for o in orders]})


def _order_of(ctx: Ctx, account: Account, order_id: Any) -> Any:
    if not isinstance(order_id, str) or not order_id:
        raise invalid("brokerage_order_id: this field is required")
    order = ctx.state.orders.get(order_id)
    if order is None or order.account_id != account.id:
        raise not_found(f"Order {order_id} not found")
    return order


async def _order_detail(ctx: Ctx) -> Response:
    account = _account(ctx)
    order = _order_of(ctx, account, ctx.body_dict().get("brokerage_order_id"))
    return json_response(wire.order(order))


async def _order_detail_v2(ctx: Ctx) -> Response:
    account = _account(ctx)
    order = _order_of(ctx, account, ctx.params["brokerageOrderId"])
    return json_response(wire.order_v2(order))


def _date_param(ctx: Ctx, name: str) -> date | None:
    raw = ctx.query.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid(f"{name}: expected a date as YYYY-MM-DD") from None


def _int_param(ctx: Ctx, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(ctx.query.get(name, str(default)))
    except ValueError:
        raise invalid(f"{name}: must be an integer") from None
    if not low <= value <= high:
        raise invalid(f"{name}: must be between {low} and {high}")
    return value


async def _activities(ctx: Ctx) -> Response:
    account = _account(ctx)
    start, end = _date_param(ctx, "startDate"), _date_param(ctx, "endDate")
    offset = _int_param(ctx, "offset", 0, 0, 10**9)
    limit = _int_param(ctx, "limit", 1000, 1, 1000)
    types = {t.strip().upper() for t in ctx.query.get("type", "").split(",") if t.strip()}
    acts = sorted(ctx.state.activities.get(account.id, []), key=lambda a: a.trade_date)
    selected = []
    for act in acts:
        day = datetime.fromtimestamp(act.trade_date, UTC).date()
        if (start and day < start) or (end and day > end) or (types and act.type not in types):
            continue
        selected.append(act)
    page = selected[offset : offset + limit]
    return json_response(
        {
            "data": [wire.activity(ctx.state, a) for a in page],
            "pagination": {"offset": offset, "limit": limit, "total": len(selected)},
        }
    )


ACCOUNT_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/accounts", _list_accounts, user_scoped=True),
    RouteSpec("GET", "/accounts/{accountId}", _get_account, user_scoped=True),
    RouteSpec("GET", "/accounts/{accountId}/balances", _balances, user_scoped=True),
    RouteSpec("GET", "/accounts/{accountId}/positions", _positions_route, user_scoped=True),
    RouteSpec("GET", "/accounts/{accountId}/positions/all", _all_positions, user_scoped=True),
    RouteSpec("GET", "/accounts/{accountId}/holdings", _holdings, user_scoped=True),
    RouteSpec("GET", "/accounts/{accountId}/orders", _orders, user_scoped=True),
    RouteSpec("GET", "/accounts/{accountId}/orders/v2", _orders_v2, user_scoped=True),
    RouteSpec("POST", "/accounts/{accountId}/orders/details", _order_detail, user_scoped=True),
    RouteSpec(
        "GET",
        "/accounts/{accountId}/orders/details/v2/{brokerageOrderId}",
        _order_detail_v2,
        user_scoped=True,
    ),
    RouteSpec("GET", "/accounts/{accountId}/activities", _activities, user_scoped=True),
    RouteSpec("GET", "/accounts/{accountId}/recentOrders", _recent_orders, user_scoped=True),
    RouteSpec("GET", "/accounts/{accountId}/recentOrders/v2", _recent_orders, user_scoped=True),
)
