"""The Plaid sandbox's webhook delivery: every webhook the state queues for an Item's (or a
Hosted Link token's) URL is POSTed in the background, signed afresh for each attempt (a
`Plaid-Verification` JWT whose `iat` is the attempt's time) and retried on Plaid's schedule
(`_webhook_delivery.PLAID_RETRIES`).

What is sent, and when: HOLDINGS DEFAULT_UPDATE after `/investments/refresh` and when
`/sandbox-admin/items/{item_id}/move-holdings` moves the prices; ITEM ERROR (ITEM_LOGIN_REQUIRED)
when a login expires or `/sandbox/item/reset_login` resets it; ITEM PENDING_EXPIRATION a week
before it expires (`.../login-expiry` moves the expiry); ITEM LOGIN_REPAIRED after update mode;
whatever `/sandbox/item/fire_webhook` fires; WEBHOOK_UPDATE_ACKNOWLEDGED; LINK SESSION_FINISHED
and ITEM_ADD_RESULT for Hosted Link. Expiry is noticed on the next request after it is due.

Admin routes:
GET|DELETE /sandbox-admin/webhook-deliveries          deliveries and their attempts / forget
POST /sandbox-admin/items/{item_id}/move-holdings     a new extraction: prices move
POST /sandbox-admin/items/{item_id}/login-expiry      {"in_seconds": n}: the login expires then
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from brokerlink.sandbox._webhook_delivery import WebhookDispatcher
from brokerlink.sandbox.plaid import wire
from brokerlink.sandbox.plaid.state import Item, PlaidSandboxState
from brokerlink.sandbox.plaid.webhooks import VERIFICATION_HEADER, encode_body

__all__ = ["PlaidWebhookDelivery", "add_delivery_routes"]


class PlaidWebhookDelivery:
    """Hands what `state` queues to `dispatcher`, signed by the state's current key."""

    def __init__(self, state: PlaidSandboxState, dispatcher: WebhookDispatcher) -> None:
        self.state = state
        self.dispatcher = dispatcher
        state.webhook_listener = self.send

    def send(self, url: str, body: dict[str, Any]) -> None:
        raw = encode_body(body)
        signer = self.state.signer

        def headers(now: float) -> dict[str, str]:
            return {"Content-Type": "application/json", VERIFICATION_HEADER: signer.sign(raw, now)}

        event = f"{body.get('webhook_type')} {body.get('webhook_code')}"
        self.dispatcher.send(url, event, raw, headers)

    @asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """The app's lifespan: deliveries still in flight at shutdown are cancelled."""
        try:
            yield
        finally:
            await self.dispatcher.aclose()


def _not_found(what: str) -> JSONResponse:
    return JSONResponse({"detail": f"{what} not found"}, status_code=404)


def add_delivery_routes(app: FastAPI) -> None:
    def delivery(request: Request) -> PlaidWebhookDelivery:
        found: PlaidWebhookDelivery = request.app.state.webhook_delivery
        return found

    def item_of(request: Request, item_id: str) -> Item | None:
        state: PlaidSandboxState = request.app.state.sandbox
        return state.items.get(item_id)

    @app.get("/sandbox-admin/webhook-deliveries")
    async def get_deliveries(request: Request) -> JSONResponse:
        return JSONResponse(delivery(request).dispatcher.as_json())

    @app.delete("/sandbox-admin/webhook-deliveries")
    async def forget_deliveries(request: Request) -> JSONResponse:
        dispatcher = delivery(request).dispatcher
        dispatcher.forget()
        return JSONResponse(dispatcher.as_json())

    @app.post("/sandbox-admin/items/{item_id}/move-holdings")
    async def move_holdings(item_id: str, request: Request) -> JSONResponse:
        item = item_of(request, item_id)
        if item is None:
            return _not_found(f"Item {item_id}")
        state: PlaidSandboxState = request.app.state.sandbox
        state.move_holdings(item)
        return JSONResponse({"item": wire.item_json(state, item)})

    @app.post("/sandbox-admin/items/{item_id}/login-expiry")
    async def login_expiry(item_id: str, request: Request) -> JSONResponse:
        item = item_of(request, item_id)
        if item is None:
            return _not_found(f"Item {item_id}")
        try:
            body = await request.json()
        except ValueError:
            body = None
        seconds = body.get("in_seconds") if isinstance(body, dict) else None
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
        ):
            return JSONResponse(
                {"detail": "in_seconds: a number of seconds is required"}, status_code=422
            )
        state: PlaidSandboxState = request.app.state.sandbox
        state.set_login_expiry(item, state.now() + float(seconds))
        return JSONResponse({"item": wire.item_json(state, item)})
