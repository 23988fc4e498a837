"""The SnapTrade sandbox as an ASGI app: `create_app(client_id=…, consumer_key=…)`.

One dispatcher does what the real gateway does for every request, in this order: the request
counted per operation (`sandbox/_counts.py`), request id, clientId (401 1078), timestamp window
(401 1077), signature (401 1076), the per-clientId rolling rate limit (429 "0000"), injected
faults, user secret (401 1083), then the route; a fault with `after` lets the route run and then
replaces its answer. The API is served at `/` and under `/api/v1`. Unsigned: `GET /`, the HTML
portal and the sandbox's own control plane (`control.py`: faults, request counts, secret expiry;
`lost_replies.py`: `…/lose-next-reset-reply`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import time
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from brokerlink.sandbox._faults import (
    FAULT_HEADER,
    FaultDecision,
    FaultHeaderError,
)
from brokerlink.sandbox._webhook_delivery import SNAPTRADE_RETRIES, WebhookDispatcher
from brokerlink.sandbox.snaptrade import seed, wire
from brokerlink.sandbox.snaptrade._routing import Ctx, RouteSpec, error_response, json_response
from brokerlink.sandbox.snaptrade.control import CONTROL_ROUTES, connection_type, is_control_plane
from brokerlink.sandbox.snaptrade.daily_sync import DailySyncTimer
from brokerlink.sandbox.snaptrade.events import SnapTradeWebhooks
from brokerlink.sandbox.snaptrade.lost_replies import lose_next_reset_reply, reset_reply
from brokerlink.sandbox.snaptrade.portal import portal_url, show, submit
from brokerlink.sandbox.snaptrade.signing import signature_matches
from brokerlink.sandbox.snaptrade.state import (
    ApiError,
    Clock,
    RateLimitStatus,
    SandboxState,
    invalid,
    not_found,
)
from brokerlink.sandbox.snaptrade.trading import TRADING_ROUTES
from brokerlink.sandbox.snaptrade.views import ACCOUNT_ROUTES
from brokerlink.sandbox.snaptrade.webhook_routes import WEBHOOK_ROUTES

__all__ = ["API_PREFIX", "ROUTES", "create_app"]

API_PREFIX = "/api/v1"
API_VERSION = 151
_INJECTED_CODES = {
    400: "1012",
    401: "1076",
    402: "3003",
    403: "1066",
    404: "1011",
    429: "0000",
    500: "1000",
    503: "3002",
}


def _compile(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{regex}/?$")


# -- reference data and users ------------------------------------------------------------------


async def _status(ctx: Ctx) -> Response:
    return json_response(
        {"version": API_VERSION, "timestamp": wire.isotime(ctx.state.now()), "online": True}
    )


async def _register_user(ctx: Ctx) -> Response:
    user_id = ctx.body_dict().get("userId")
    if not isinstance(user_id, str) or not user_id.strip():
        raise invalid("userId: this field is required")
    user = ctx.state.register_user(user_id)
    return json_response({"userId": user.user_id, "userSecret": user.secret})


async def _list_users(ctx: Ctx) -> Response:
    return json_response(sorted(ctx.state.users))


async def _delete_user(ctx: Ctx) -> Response:
    user_id = ctx.query.get("userId")
    if not user_id:
        raise invalid("userId: this field is required")
    ctx.state.delete_user(user_id)
    return json_response(
        {
            "status": "deleted",
            "detail": f"User {user_id} and their data are queued for deletion",
            "userId": user_id,
        }
    )


async def _reset_user_secret(ctx: Ctx) -> Response:
    body = ctx.body_dict()
    user_id, secret = body.get("userId"), body.get("userSecret")
    if not isinstance(user_id, str) or not isinstance(secret, str):
        raise invalid("userId and userSecret are required")
    return await reset_reply(ctx, ctx.state.reset_user_secret(user_id, secret))


async def _brokerages(ctx: Ctx) -> Response:
    return json_response([wire.brokerage(b) for b in ctx.state.brokerages.values()])


async def _authorization_types(ctx: Ctx) -> Response:
    wanted = {s.strip().upper() for s in ctx.query.get("brokerage", "").split(",") if s.strip()}
    types = []
    for b in ctx.state.brokerages.values():
        if wanted and b.slug not in wanted:
            continue
        for kind in ("read", "trade") if b.allows_trading else ("read",):
            types.append(
                {
                    "id": seed.sandbox_uuid("authorization-type", b.slug, kind),
                    "type": kind,
                    "auth_type": b.auth_type,
                    "brokerage": {"id": b.id, "name": b.name, "slug": b.slug},
                }
            )
    return json_response(types)


async def _partner(ctx: Ctx) -> Response:
    return json_response(
        {
            "slug": ctx.state.client_id,
            "name": f"{ctx.state.client_id} (SnapTrade sandbox)",
            "logo_url": None,
            "allowed_brokerages": [wire.brokerage(b) for b in ctx.state.brokerages.values()],
            "can_access_trades": True,
            "can_access_holdings": True,
            "can_access_account_history": True,
            "can_access_reference_data": True,
            "can_access_portfolio_management": False,
            "can_access_orders": True,
            "redirect_uri": None,
            "pin_required": False,
        }
    )


async def _exchanges(ctx: Ctx) -> Response:
    return json_response([wire.exchange(mic) for mic in seed.EXCHANGES])


# -- connections -------------------------------------------------------------------------------


async def _login(ctx: Ctx) -> Response:
    body = ctx.body_dict()
    broker = body.get("broker")
    if broker is not None:
        if not isinstance(broker, str):
            raise invalid("broker: must be a string")
        broker = ctx.state.brokerage(broker).slug
    reconnect = body.get("reconnect")
    if reconnect is not None:
        auth = ctx.state.get_authorization(ctx.user_id, str(reconnect))
        broker = auth.slug
    custom = body.get("customRedirect")
    session = ctx.state.create_session(
        ctx.user_id,
        broker=broker,
        custom_redirect=str(custom) if custom else None,
        immediate_redirect=bool(body.get("immediateRedirect", False)),
        reconnect=str(reconnect) if reconnect is not None else None,
        connection_type=connection_type(body.get("connectionType")),
    )
    return json_response(
        {"redirectURI": portal_url(ctx.base_url(), session), "sessionId": session.id}
    )


async def _list_authorizations(ctx: Ctx) -> Response:
    auths = ctx.state.user_authorizations(ctx.user_id)
    return json_response([wire.authorization(ctx.state, a) for a in auths])


async def _get_authorization(ctx: Ctx) -> Response:
    auth = ctx.state.get_authorization(ctx.user_id, ctx.params["authorizationId"])
    return json_response(wire.authorization(ctx.state, auth))


async def _refresh_authorization(ctx: Ctx) -> Response:
    auth = ctx.state.refresh_authorization(ctx.user_id, ctx.params["authorizationId"])
    return json_response({"detail": f"Connection {auth.id} scheduled for refresh"})


async def _sync_transactions(ctx: Ctx) -> Response:
    auth = ctx.state.get_authorization(ctx.user_id, ctx.params["authorizationId"])
    if auth.disabled:
        raise ApiError(402, "3003", f"Connection {auth.id} is disabled")
    return json_response({"detail": f"Transactions sync scheduled for connection {auth.id}"})


async def _disable_authorization(ctx: Ctx) -> Response:
    auth = ctx.state.get_authorization(ctx.user_id, ctx.params["authorizationId"])
    if auth.disabled:
        raise ApiError(402, "3003", f"Connection {auth.id} is already disabled")
    ctx.state.disable_authorization(auth.id)
    return json_response({"detail": f"Connection {auth.id} disabled"})


async def _delete_authorization(ctx: Ctx) -> Response:
    ctx.state.delete_authorization(ctx.user_id, ctx.params["authorizationId"])
    return Response(status_code=204)


async def _delete_connection(ctx: Ctx) -> Response:
    connection_id = ctx.params["connectionId"]
    ctx.state.delete_authorization(ctx.user_id, connection_id)
    return json_response(
        {"detail": f"Connection {connection_id} deleted", "connection_id": connection_id}
    )


async def _authorization_accounts(ctx: Ctx) -> Response:
    auth = ctx.state.get_authorization(ctx.user_id, ctx.params["authorizationId"])
    accounts = [a for a in ctx.state.user_accounts(ctx.user_id) if a.authorization_id == auth.id]
    return json_response([wire.account(ctx.state, a) for a in accounts])


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/", _status, signed=False),
    RouteSpec("POST", "/snapTrade/registerUser", _register_user),
    RouteSpec("GET", "/snapTrade/listUsers", _list_users),
    RouteSpec("DELETE", "/snapTrade/deleteUser", _delete_user),
    RouteSpec("POST", "/snapTrade/resetUserSecret", _reset_user_secret),
    RouteSpec("POST", "/snapTrade/login", _login, user_scoped=True),
    RouteSpec("GET", "/brokerages", _brokerages),
    RouteSpec("GET", "/exchanges", _exchanges),
    RouteSpec("GET", "/brokerageAuthorizationTypes", _authorization_types),
    RouteSpec("GET", "/snapTrade/partners", _partner),
    RouteSpec("GET", "/authorizations", _list_authorizations, user_scoped=True),
    RouteSpec("GET", "/authorizations/{authorizationId}", _get_authorization, user_scoped=True),
    RouteSpec(
        "DELETE", "/authorizations/{authorizationId}", _delete_authorization, user_scoped=True
    ),
    RouteSpec(
        "POST",
        "/authorizations/{authorizationId}/refresh",
        _refresh_authorization,
        user_scoped=True,
    ),
    RouteSpec(
        "POST",
        "/authorizations/{authorizationId}/disable",
        _disable_authorization,
        user_scoped=True,
    ),
    RouteSpec(
        "GET",
        "/authorizations/{authorizationId}/accounts",
        _authorization_accounts,
        user_scoped=True,
    ),
    RouteSpec(
        "POST",
        "/authorizations/{authorizationId}/transactions/sync",
        _sync_transactions,
        user_scoped=True,
    ),
    RouteSpec("DELETE", "/connection/{connectionId}", _delete_connection, user_scoped=True),
    *ACCOUNT_ROUTES,
    *TRADING_ROUTES,
    *CONTROL_ROUTES,
    *WEBHOOK_ROUTES,
    RouteSpec(
        "POST", "/sandbox/users/{userId}/lose-next-reset-reply", lose_next_reset_reply, signed=False
    ),
    RouteSpec("GET", "/portal/connect", show, signed=False),
    RouteSpec("POST", "/portal/connect", submit, signed=False),
)

_COMPILED = [(spec, _compile(spec.template)) for spec in ROUTES]


def _match(method: str, path: str) -> tuple[RouteSpec, dict[str, str]] | None:
    for spec, pattern in _COMPILED:
        if spec.method == method:
            m = pattern.match(path)
            if m:
                return spec, m.groupdict()
    return None


# -- the gateway -------------------------------------------------------------------------------


@dataclass
class _Meta:
    rate: RateLimitStatus | None = None
    decision: FaultDecision = field(default_factory=FaultDecision)


class _Gateway:
    """Authentication, rate limiting and fault injection around every route."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def _authenticate(self, request: Request, path: str, unprefixed: str, body: Any) -> None:
        state = self.state
        client_id = request.query_params.get("clientId")
        if client_id != state.client_id:
            raise ApiError(401, "1078", "Invalid clientId provided")
        raw_ts = request.query_params.get("timestamp", "")
        try:
            timestamp = float(raw_ts)
        except ValueError:
            raise ApiError(401, "1077", "Missing or invalid timestamp") from None
        if not math.isfinite(timestamp) or abs(state.now() - timestamp) > state.timestamp_window:
            raise ApiError(401, "1077", "Request expired: timestamp outside the allowed window")
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        signature = request.headers.get("Signature")
        # The path as received; the SDK with a prefixed host signs it without the prefix.
        paths = {path, unprefixed}
        if not any(
            signature_matches(state.consumer_key, p, raw_query, body, signature) for p in paths
        ):
            raise ApiError(401, "1076", "Unable to verify signature sent")

    def _rate_headers(self, status: RateLimitStatus | None) -> dict[str, str]:
        if self.state.rate_limit <= 0:
            return {}
        if status is None:
            limit = self.state.rate_limit
            return {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(limit),
                "X-RateLimit-Reset": "0",
            }
        return {
            "X-RateLimit-Limit": str(status.limit),
            "X-RateLimit-Remaining": str(status.remaining),
            "X-RateLimit-Reset": str(status.reset),
        }

    async def dispatch(self, request: Request) -> Response:
        meta = _Meta()
        try:
            response = await self._handle(request, meta)
        except ApiError as err:
            response = error_response(err)
        except Exception:  # the gateway answers 500 like the real one, never a traceback
            response = error_response(ApiError(500, "1000", "Unexpected server error"))
        response.headers["X-Request-ID"] = uuid.uuid4().hex
        if meta.rate is None and self.state.rate_limit > 0:
            if request.query_params.get("clientId") == self.state.client_id:
                meta.rate = self.state.peek_client_limit(self.state.client_id)
        for name, value in self._rate_headers(meta.rate).items():
            response.headers[name] = value
        if meta.rate is not None and not meta.rate.allowed:
            response.headers["Retry-After"] = str(max(meta.rate.reset, 1))
        if meta.decision.malformed is not None and response.status_code < 400:
            response = _malform(response, meta.decision)
        return response

    async def _handle(self, request: Request, meta: _Meta) -> Response:
        state = self.state
        raw_path = request.scope.get("raw_path")
        # Signatures cover the path exactly as sent (percent-encoding kept).
        path = raw_path.decode("latin-1") if raw_path else request.url.path
        route_path = request.url.path
        if route_path == API_PREFIX or route_path.startswith(API_PREFIX + "/"):
            route_path = route_path[len(API_PREFIX) :] or "/"
        signed_route = path[len(API_PREFIX) :] if path.startswith(API_PREFIX + "/") else path
        matched = _match(request.method, route_path)
        api_call = not route_path.startswith("/portal/") and not is_control_plane(
            matched[0] if matched else None
        )
        if api_call:
            state.requests.hit(request.method, route_path)
        signed = matched is None or matched[0].signed
        raw_body = await request.body()
        body: Any = None
        is_form = "form" in request.headers.get("content-type", "")
        if raw_body and not is_form:
            try:
                body = json.loads(raw_body)
            except ValueError:
                raise invalid("The request body is not valid JSON") from None
        if signed:
            self._authenticate(request, path, signed_route, body)
            state.request_counts[state.client_id] += 1
            if state.rate_limit > 0:
                meta.rate = state.hit_client_limit(state.client_id)
                if not meta.rate.allowed:
                    state.requests.limited()
                    raise ApiError(429, "0000", "Too many requests, please slow down")
        if not api_call:
            return await self._route(request, matched, route_path, body)
        try:
            meta.decision = state.faults.decide(route_path, request.headers.get(FAULT_HEADER))
        except FaultHeaderError as e:
            raise invalid(f"{FAULT_HEADER}: {e}") from None
        decision = meta.decision
        if decision.latency:
            await asyncio.sleep(decision.latency)
        if decision.fails_before:
            return await _injected_failure(decision)
        if not decision.fails_after:
            return await self._route(request, matched, route_path, body)
        # Processed (state changed, billed), then the answer is lost.
        try:
            await self._route(request, matched, route_path, body)
        except ApiError:
            pass
        return await _injected_failure(decision)

    async def _route(
        self,
        request: Request,
        matched: tuple[RouteSpec, dict[str, str]] | None,
        route_path: str,
        body: Any,
    ) -> Response:
        if matched is None:
            raise not_found(f"No route for {request.method} {route_path}")
        spec, params = matched
        state = self.state
        query = dict(request.query_params)
        ctx = Ctx(request, state, params, query, body)
        if spec.user_scoped:
            user_id, secret = query.get("userId"), query.get("userSecret")
            if not user_id or not secret:
                raise invalid("userId and userSecret query parameters are required")
            ctx.user = state.authenticate(user_id, secret)
        return await spec.handler(ctx)


async def _injected_failure(decision: FaultDecision) -> Response:
    """Sleep out an injected timeout, then answer the injected status (504 after a timeout)."""
    if decision.timeout is not None:
        await asyncio.sleep(decision.timeout)
    status = decision.failure_status
    response = error_response(
        ApiError(status, _INJECTED_CODES.get(status, "1000"), "Injected fault")
    )
    if decision.retry_after is not None:
        response.headers["Retry-After"] = str(math.ceil(decision.retry_after))
    return response


def _malform(response: Response, decision: FaultDecision) -> Response:
    raw = bytes(response.body)
    if decision.malformed == "shape":
        new = b'{"sandbox_malformed":true}' if raw.startswith(b"[") else b"[]"
    else:
        new = raw[: max(len(raw) // 2, 1)]
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length",)}
    return Response(new, response.status_code, headers=headers)


def create_app(
    *,
    client_id: str,
    consumer_key: str,
    rate_limit: int = 250,
    state: SandboxState | None = None,
    clock: Clock | None = None,
    webhook_url: str | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    webhook_retry_scale: float = 1.0,
    webhook_timeout: float = 10.0,
    daily_sync_at: time | None = None,
) -> Starlette:
    """The SnapTrade sandbox. `app.state.sandbox` is its SandboxState.

    A given `state` must carry the same client id and consumer key; `rate_limit` and `clock`
    are applied to it. State changes are sent as signed webhooks to `webhook_url` (settable
    later at `/sandbox/webhook`), in the background, retried on SnapTrade's schedule scaled by
    `webhook_retry_scale`; `webhook_transport` lets tests receive them in-process, and
    `app.state.webhooks.dispatcher` lists the deliveries (`events.py`). With `daily_sync_at`
    (UTC), SnapTrade's daily sync runs at that time every day (`daily_sync.py`); without it, only
    `POST /sandbox/daily-sync` runs one.
    """
    if state is None:
        kwargs: dict[str, Any] = {"rate_limit": rate_limit}
        if clock is not None:
            kwargs["clock"] = clock
        state = SandboxState(client_id, consumer_key, **kwargs)
    else:
        if (state.client_id, state.consumer_key) != (client_id, consumer_key):
            raise ValueError("state was built for another client id or consumer key")
        state.rate_limit = rate_limit
        if clock is not None:
            state.clock = clock
    gateway = _Gateway(state)
    dispatcher = WebhookDispatcher(
        SNAPTRADE_RETRIES,
        clock=state.now,
        transport=webhook_transport,
        retry_scale=webhook_retry_scale,
        timeout=webhook_timeout,
    )
    webhooks = SnapTradeWebhooks(state, dispatcher, webhook_url)
    timer = None if daily_sync_at is None else DailySyncTimer(state, daily_sync_at)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with webhooks.lifespan(app):
            if timer is None:
                yield
                return
            async with timer.running():
                yield

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    app = Starlette(
        routes=[
            Route("/", gateway.dispatch, methods=methods),
            Route("/{path:path}", gateway.dispatch, methods=methods),
        ],
        lifespan=lifespan,
    )
    app.state.sandbox = state
    app.state.webhooks = webhooks
    app.state.daily_sync = timer
    return app
