"""`POST /webhooks/snaptrade`, `POST /webhooks/plaid`: public routes for the providers.

No session and no CSRF header (no route here depends on the caller, so neither check runs);
the signature is the authentication. The body is read raw, as it was signed; the app's body
limit applies before anything is read. Errors are the API's JSON error body.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from brokerlink.api.deps import State
from brokerlink.api.state import AppState
from brokerlink.domain.enums import Provider
from brokerlink.webhooks.service import WebhookReceipt, WebhookReceiver
from brokerlink.webhooks.urls import WEBHOOK_PATHS

__all__ = ["receiver", "router"]

router = APIRouter(tags=["webhooks"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Signed, but not a payload of the provider's shape (`malformed`)."},
    401: {
        "description": "No signature, a forged one, or an event signed over five minutes ago "
        "(`bad_signature`, `stale`)."
    },
    404: {"description": "The provider is not configured here (`not_found`)."},
    409: {"description": "An event already received (`replayed`)."},
    413: {"description": "The body is over the limit (`request_too_large`)."},
    503: {
        "description": "The event cannot be verified or queued right now "
        "(`webhook_verification_unavailable`, `webhook_followup_not_queued`): the provider "
        "delivers it again later."
    },
}


def receiver(request: Request, state: AppState) -> WebhookReceiver:
    """The app's receiver, built on first use and kept with the app (so are Plaid's keys)."""
    found: WebhookReceiver | None = getattr(request.app.state, "webhook_receiver", None)
    if found is None or (found.sessionmaker, found.queue) != (state.sessionmaker, state.queue):
        found = WebhookReceiver(
            state.sessionmaker,
            state.queue,
            clock=state.clock,
            snaptrade=state.snaptrade,
            plaid=state.plaid,
        )
        request.app.state.webhook_receiver = found
    return found


@router.post(WEBHOOK_PATHS[Provider.SNAPTRADE], response_model=WebhookReceipt, responses=_RESPONSES)
async def snaptrade_webhook(request: Request, state: State) -> WebhookReceipt:
    """A SnapTrade webhook, verified by its `Signature` (HMAC-SHA256 under the consumer key)."""
    body = await request.body()
    return await receiver(request, state).snaptrade(body, request.headers)


@router.post(WEBHOOK_PATHS[Provider.PLAID], response_model=WebhookReceipt, responses=_RESPONSES)
async def plaid_webhook(request: Request, state: State) -> WebhookReceipt:
    """A Plaid webhook, verified by its `Plaid-Verification` JWT (ES256, Plaid's key)."""
    body = await request.body()
    return await receiver(request, state).plaid(body, request.headers)
