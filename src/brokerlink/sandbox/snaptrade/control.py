"""The SnapTrade sandbox's own control plane, outside the real API's paths.

POST   /sandbox/connections                 complete a connection without a browser (signed)
GET|PUT|DELETE /sandbox/faults              the app-wide fault configuration
GET|DELETE /sandbox/requests                requests that reached the sandbox, per operation
POST   /sandbox/users/{userId}/expire-secret  the user's secret stops working
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

from brokerlink.sandbox._faults import FaultConfig
from brokerlink.sandbox.snaptrade import wire
from brokerlink.sandbox.snaptrade._routing import Ctx, RouteSpec, json_response
from brokerlink.sandbox.snaptrade.state import invalid, not_found

__all__ = ["CONTROL_ROUTES", "connection_type", "is_control_plane"]


def connection_type(value: Any) -> str:
    if value is None:
        return "read"
    if value not in ("read", "trade", "trade-if-available"):
        raise invalid(f"connectionType: invalid value {value!r}")
    return str(value)


async def _sandbox_connection(ctx: Ctx) -> Response:
    body = ctx.body_dict()
    broker = body.get("broker")
    if not isinstance(broker, str):
        raise invalid("broker: this field is required")
    auth = ctx.state.create_connection(
        ctx.user_id, broker, connection_type(body.get("connectionType", "read"))
    )
    return json_response(wire.authorization(ctx.state, auth))


async def _get_faults(ctx: Ctx) -> Response:
    return json_response(ctx.state.faults.config.model_dump(mode="json"))


async def _put_faults(ctx: Ctx) -> Response:
    try:
        config = FaultConfig.model_validate(ctx.body_dict())
    except ValidationError as e:
        raise invalid(f"Invalid fault configuration: {e.errors(include_url=False)}") from None
    ctx.state.faults.configure(config)
    return json_response(ctx.state.faults.config.model_dump(mode="json"))


async def _delete_faults(ctx: Ctx) -> Response:
    ctx.state.faults.reset()
    return json_response(ctx.state.faults.config.model_dump(mode="json"))


async def _get_requests(ctx: Ctx) -> Response:
    return json_response(ctx.state.requests.as_json())


async def _delete_requests(ctx: Ctx) -> Response:
    ctx.state.requests.reset()
    return json_response(ctx.state.requests.as_json())


async def _expire_secret(ctx: Ctx) -> Response:
    user_id = ctx.params["userId"]
    if user_id not in ctx.state.users:
        raise not_found(f"User {user_id} not found")
    ctx.state.expire_user_secret(user_id)
    return json_response({"userId": user_id, "secret_expired": True})


CONTROL_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/sandbox/connections", _sandbox_connection, user_scoped=True),
    RouteSpec("GET", "/sandbox/faults", _get_faults, signed=False),
    RouteSpec("PUT", "/sandbox/faults", _put_faults, signed=False),
    RouteSpec("DELETE", "/sandbox/faults", _delete_faults, signed=False),
    RouteSpec("GET", "/sandbox/requests", _get_requests, signed=False),
    RouteSpec("DELETE", "/sandbox/requests", _delete_requests, signed=False),
    RouteSpec("POST", "/sandbox/users/{userId}/expire-secret", _expire_secret, signed=False),
)


def is_control_plane(spec: RouteSpec | None) -> bool:
    """The sandbox's own unsigned routes: neither counted nor subject to injected faults."""
    return spec is not None and not spec.signed and spec.template.startswith("/sandbox/")
