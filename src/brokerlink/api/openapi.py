"""The app's OpenAPI description, built in one place from the routes themselves.

Every operation lists each error status it can answer, all with the one error body
(`ErrorResponse`, see `exception_handlers.py`):

    401        the route depends on the signed-in caller (`current_user`)
    403        ... and changes data: a browser session without the CSRF header
    404        a path id is taken (another user's ids are not found either)
    413        a body is taken (the body limit, `middleware.py`)
    422        anything in the path, query, headers or body is validated
    409 422 502 503   the route calls a provider (reconnect required, rejected, unavailable,
               rate limited or not configured)

plus the statuses a route's own refusals add (`ROUTE_STATUSES`: the cost guard's 429, the
trading gate's 403, an order in doubt's 409, ...). Authenticated operations carry the bearer and
the session-cookie security schemes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from brokerlink.api.deps import SESSION_COOKIE, needs_caller

__all__ = ["ROUTE_STATUSES", "build_openapi", "install_openapi", "route_statuses"]

ERROR_REF = "#/components/schemas/ErrorResponse"
SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from `brokerlink tokens create`.",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The web app's session, from `POST /api/auth/login`. Requests that "
        "change data also need the `X-Brokerlink-CSRF` header.",
    },
}
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"sessionCookie": []}]

DESCRIPTIONS: dict[int, str] = {
    400: "The request cannot be read: the body is not valid JSON (`invalid_json`, checked after "
    "sign-in) or its length is malformed (`invalid_content_length`).",
    401: "Not signed in: no API token or session, or one that is expired or revoked "
    "(`not_authenticated`, `invalid_credentials`).",
    403: "Refused: a browser request that changes data without the CSRF header "
    "(`csrf_required`), or the trading gate (`trading_refused`).",
    404: "Not found (`not_found`); another user's ids are not found either.",
    409: "Conflicts with the state of the link or of work in flight: `reconnect_required`, "
    "`link_cancelled`, `no_provider_available`, `refresh_in_flight` (another refresh of the "
    "connection is being sent), `order_in_flight`, `order_in_doubt`.",
    413: "The body is over the limit (`request_too_large`); refused before it is read.",
    422: "Invalid input; `field` names it (`validation_error`, `invalid_id`, "
    "`unstorable_value`), or the provider rejected it (`provider_rejected`).",
    429: "Too soon or over budget (`refresh_too_soon`, `budget_exceeded`, `sign_in_throttled`); "
    "`Retry-After` says when to try again.",
    502: "The provider could not be reached or failed (`provider_unavailable`).",
    503: "The provider is rate limiting us (`provider_rate_limited`) or is not configured "
    "(`provider_not_configured`).",
}

PROVIDER_STATUSES = (409, 422, 502, 503)
_PROVIDER = "provider"

# What a route's own refusals add to what its parameters and dependencies imply. `provider`
# marks a route that calls a provider while the request waits.
ROUTE_STATUSES: dict[str, tuple[int | str, ...]] = {
    "POST /api/auth/login": (401, 429),
    "POST /api/connections": (_PROVIDER,),
    # Another user's signed state is not found, like another user's ids.
    "POST /api/connections/complete": (_PROVIDER, 404),
    "POST /api/connections/{connection_id}/reconnect": (_PROVIDER,),
    "DELETE /api/connections/{connection_id}": (_PROVIDER,),
    "POST /api/connections/{connection_id}/refresh": (_PROVIDER, 429),
    "POST /api/sync": (404,),
    "PUT /api/duplicates/preference": (404,),
    "POST /api/accounts/{account_id}/orders/preview": (_PROVIDER, 403),
    "POST /api/accounts/{account_id}/orders": (_PROVIDER, 403),
    "GET /api/accounts/{account_id}/orders": (_PROVIDER,),
    "DELETE /api/accounts/{account_id}/orders/{order_id}": (_PROVIDER, 403),
    "POST /api/snaptrade/register-user": (_PROVIDER,),
    "POST /api/snaptrade/create-connection-url": (_PROVIDER,),
    "POST /api/snaptrade/refresh-holdings": (_PROVIDER, 404, 429),
    "POST /api/plaid/create-link-token": (_PROVIDER,),
    "POST /api/plaid/exchange-public-token": (_PROVIDER, 404),
    "POST /api/plaid/refresh-holdings": (_PROVIDER, 404, 429),
}

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _error_schemas() -> dict[str, Any]:
    text = {"type": "string"}
    nullable = {"anyOf": [text, {"type": "null"}]}
    return {
        "FieldError": {
            "type": "object",
            "required": ["field", "message"],
            "properties": {"field": nullable, "message": text},
        },
        "ErrorDetail": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {**text, "description": "Stable: clients branch on it."},
                "message": {**text, "description": "For people."},
                "field": {**text, "description": "The input at fault."},
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
                "reason": text,
                "next_allowed_at": {"type": "string", "format": "date-time"},
                "remaining": text,
                "budget": text,
                "provider": text,
                "provider_code": text,
                "request_id": text,
            },
        },
        "ErrorResponse": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
        },
    }


def _flat_params(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for dependency in dependant.dependencies:
        yield from _flat_params(dependency)


def route_statuses(route: APIRoute | RouteContext, method: str) -> tuple[set[int], bool]:
    """The error statuses `method route.path` can answer, and whether it needs a caller."""
    statuses: set[int] = set()
    authenticated = needs_caller(route.dependant)
    if authenticated:
        statuses.add(401)
        if method in _UNSAFE:
            statuses.add(403)
    parts = list(_flat_params(route.dependant))
    if any(d.path_params for d in parts):
        statuses |= {404, 422}
    if any(d.query_params or d.header_params or d.cookie_params for d in parts):
        statuses.add(422)
    if route.body_field is not None:
        statuses |= {400, 413, 422}
    for extra in ROUTE_STATUSES.get(f"{method} {route.path_format}", ()):
        if extra == _PROVIDER:
            statuses.update(PROVIDER_STATUSES)
        else:
            assert isinstance(extra, int)
            statuses.add(extra)
    return statuses, authenticated


def _response(status: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": DESCRIPTIONS.get(status, "An error (see `code`)."),
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }
    if status == 429:
        out["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return out


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update(_error_schemas())
    components["securitySchemes"] = SECURITY_SCHEMES
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            statuses, authenticated = route_statuses(route, method)
            responses = operation.setdefault("responses", {})
            # What the route declares itself (its `responses=`) says more than the shared
            # wording: its description and headers are kept, on the shared error body.
            declared = {
                str(k): responses[str(k)]
                for k in route.original_route.responses
                if str(k) in responses and str(k)[0] in "45"
            }
            # FastAPI's own 422 describes its body, not the one the API answers with.
            responses.pop("422", None)
            for status in sorted(statuses | {int(k) for k in declared}):
                answer = _response(status)
                own = declared.get(str(status))
                if own is not None:
                    answer["description"] = own.get("description") or answer["description"]
                    if own.get("headers"):
                        answer["headers"] = {**answer.get("headers", {}), **own["headers"]}
                responses[str(status)] = answer
            if authenticated:
                operation["security"] = SECURITY
    # Unreferenced once the 422s are ours.
    text = json.dumps(schema["paths"])
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}" not in text:
            components["schemas"].pop(name, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve `build_openapi(app)` at /openapi.json (built once, on the first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
