"""The SnapTrade sandbox's webhook controls, unsigned and outside the real API's paths.

GET|PUT|DELETE /sandbox/webhook                     the client's webhook URL ({"url": ...})
GET|DELETE     /sandbox/webhooks                    deliveries and their attempts / forget finished
POST /sandbox/connections/{authorizationId}/break   the connection breaks (CONNECTION_BROKEN)
POST /sandbox/connections/{authorizationId}/repair  the user reconnects it (CONNECTION_FIXED)
POST /sandbox/accounts/{accountId}/move-holdings    {"units": "1"} more of every equity held
POST /sandbox/daily-sync                            SnapTrade's daily sync now ({"userId": ...}
                                                    for one user's accounts; `daily_sync.py`)
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from starlette.responses import Response

from brokerlink.sandbox.snaptrade import wire
from brokerlink.sandbox.snaptrade._routing import Ctx, RouteSpec, json_response
from brokerlink.sandbox.snaptrade.daily_sync import daily_sync
from brokerlink.sandbox.snaptrade.events import SnapTradeWebhooks
from brokerlink.sandbox.snaptrade.state import Account, invalid, not_found

__all__ = ["WEBHOOK_ROUTES", "move_holdings"]


def _webhooks(ctx: Ctx) -> SnapTradeWebhooks:
    webhooks: SnapTradeWebhooks = ctx.request.app.state.webhooks
    return webhooks


def _url_json(ctx: Ctx) -> Response:
    return json_response({"url": _webhooks(ctx).url})


async def _get_url(ctx: Ctx) -> Response:
    return _url_json(ctx)


async def _put_url(ctx: Ctx) -> Response:
    url = ctx.body_dict().get("url")
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise invalid("url: must be an http or https URL, or null")
    _webhooks(ctx).url = url
    return _url_json(ctx)


async def _delete_url(ctx: Ctx) -> Response:
    _webhooks(ctx).url = None
    return _url_json(ctx)


async def _deliveries(ctx: Ctx) -> Response:
    return json_response(_webhooks(ctx).dispatcher.as_json())


async def _forget_deliveries(ctx: Ctx) -> Response:
    dispatcher = _webhooks(ctx).dispatcher
    dispatcher.forget()
    return json_response(dispatcher.as_json())


def _authorization_of(ctx: Ctx) -> str:
    auth_id = ctx.params["authorizationId"]
    if auth_id not in ctx.state.authorizations:
        raise not_found(f"Connection {auth_id} not found")
    return auth_id


async def _break(ctx: Ctx) -> Response:
    auth = ctx.state.disable_authorization(_authorization_of(ctx))
    return json_response(wire.authorization(ctx.state, auth))


async def _repair(ctx: Ctx) -> Response:
    auth = ctx.state.authorizations[_authorization_of(ctx)]
    ctx.state.reconnect(auth.user_id, auth.id, "read")
    return json_response(wire.authorization(ctx.state, auth))


def move_holdings(account: Account, units: Decimal) -> None:
    """`units` more (or fewer) of every equity the account holds; none goes below zero."""
    for holding in account.holdings:
        if holding.option is None and not holding.cash_equivalent and holding.symbol is not None:
            holding.units = max(holding.units + units, Decimal(0))


async def _move_holdings(ctx: Ctx) -> Response:
    account = ctx.state.accounts.get(ctx.params["accountId"])
    if account is None:
        raise not_found(f"Account {ctx.params['accountId']} not found")
    raw = ctx.body_dict().get("units", "1")
    try:
        units = Decimal(str(raw))
    except InvalidOperation:
        raise invalid("units: must be a decimal number") from None
    if not units.is_finite() or units == 0:
        raise invalid("units: must be a non-zero number")
    move_holdings(account, units)
    # As SnapTrade's own sync would: the listing dates the new holdings (`sync_status`), so a
    # client on the Daily plan reads them, and the webhook announces them.
    account.holdings_changed_at = ctx.state.now()
    ctx.state.holdings_updated(account)
    return json_response(wire.positions(ctx.state, account))


async def _daily_sync(ctx: Ctx) -> Response:
    user_id = ctx.body_dict().get("userId")
    if user_id is not None and not isinstance(user_id, str):
        raise invalid("userId: must be a string")
    if user_id is not None and user_id not in ctx.state.users:
        raise not_found(f"User {user_id} not found")
    synced = daily_sync(ctx.state, user_id=user_id)
    return json_response({"accounts": [a.id for a in synced]})


WEBHOOK_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/sandbox/webhook", _get_url, signed=False),
    RouteSpec("PUT", "/sandbox/webhook", _put_url, signed=False),
    RouteSpec("DELETE", "/sandbox/webhook", _delete_url, signed=False),
    RouteSpec("GET", "/sandbox/webhooks", _deliveries, signed=False),
    RouteSpec("DELETE", "/sandbox/webhooks", _forget_deliveries, signed=False),
    RouteSpec("POST", "/sandbox/connections/{authorizationId}/break", _break, signed=False),
    RouteSpec("POST", "/sandbox/connections/{authorizationId}/repair", _repair, signed=False),
    RouteSpec("POST", "/sandbox/accounts/{accountId}/move-holdings", _move_holdings, signed=False),
    RouteSpec("POST", "/sandbox/daily-sync", _daily_sync, signed=False),
)
