"""Route plumbing shared by the sandbox's route modules: the handler context and JSON replies."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from brokerlink.sandbox.snaptrade import wire
from brokerlink.sandbox.snaptrade.state import ApiError, SandboxState, User, invalid

__all__ = ["Ctx", "Handler", "RouteSpec", "error_response", "json_response"]


@dataclass
class Ctx:
    """What a route handler sees: the parsed request, already authenticated."""

    request: Request
    state: SandboxState
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    user: User | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        assert self.user is not None
        return self.user.user_id

    def body_dict(self) -> dict[str, Any]:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise invalid("The request body must be a JSON object")
        return self.body

    def base_url(self) -> str:
        return str(self.request.base_url).rstrip("/")


Handler = Callable[[Ctx], Awaitable[Response]]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    template: str
    handler: Handler
    user_scoped: bool = False
    signed: bool = True


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status, media_type="application/json")


def error_response(err: ApiError) -> Response:
    response = json_response(wire.error_body(err.status, err.code, err.detail), err.status)
    if err.status == 429:
        response.headers["Retry-After"] = "1"
    return response
