"""The SnapTrade sandbox's webhooks: state changes become signed payloads POSTed to the URL
configured for the client, as SnapTrade's dashboard configures one listener per client.

`SandboxState.emit` names what changed; this module shapes it as research notes §5 and the
spec's webhook schemas do (`webhookId`, TRADE_* with the misspelt `webookId` as well, no
deprecated `webhookSecret`), signs it (`webhooks.sign_webhook`, §1.5) and hands it to the
shared dispatcher, which retries on SnapTrade's schedule. Without a URL nothing is sent.

Events and when they are sent:

- USER_REGISTERED / USER_DELETED: registerUser / deleteUser (a deleted user's connections and
  accounts are not announced one by one).
- CONNECTION_ADDED, then NEW_ACCOUNT_AVAILABLE per account: a connection is made (portal,
  `/sandbox/connections`).
- CONNECTION_BROKEN: the connection is disabled (`.../disable`, `/sandbox/connections/{id}/break`).
- CONNECTION_FIXED / CONNECTION_UPDATED: a reconnect of a broken / working connection (portal,
  `/sandbox/connections/{id}/repair`).
- ACCOUNT_REMOVED per account, then CONNECTION_DELETED: the connection is deleted.
- ACCOUNT_HOLDINGS_UPDATED per account: after a refresh, and when
  `/sandbox/accounts/{id}/move-holdings` moves them.
- TRADE_UPDATE: an order fills or is cancelled (`details.orders` holds it in the v2 shape).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from brokerlink.sandbox._webhook_delivery import WebhookDispatcher
from brokerlink.sandbox.snaptrade import wire
from brokerlink.sandbox.snaptrade.state import Order, SandboxState
from brokerlink.sandbox.snaptrade.webhooks import sign_webhook, webhook_payload

__all__ = ["SnapTradeWebhooks"]

_SYNCED = {"success": True, "error": None}


class SnapTradeWebhooks:
    """Listens to a `SandboxState` and sends its events to `url` (None: send nothing)."""

    def __init__(
        self, state: SandboxState, dispatcher: WebhookDispatcher, url: str | None = None
    ) -> None:
        self.state = state
        self.dispatcher = dispatcher
        self.url = url
        state.webhook_listener = self.publish

    @asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """The app's lifespan: deliveries still in flight at shutdown are cancelled."""
        try:
            yield
        finally:
            await self.dispatcher.aclose()

    def publish(self, event_type: str, user_id: str, fields: dict[str, Any]) -> None:
        if not self.url:
            return
        fields = dict(fields)
        order = fields.pop("order", None)
        if isinstance(order, Order):
            fields["details"] = {"orders": [wire.order_v2(order)]}
        elif event_type == "ACCOUNT_HOLDINGS_UPDATED":
            # Which parts of the sync succeeded; the sandbox's syncs never fail.
            fields["details"] = {
                part: dict(_SYNCED) for part in ("total_value", "positions", "balances", "orders")
            }
        payload = webhook_payload(
            event_type,
            client_id=self.state.client_id,
            user_id=user_id,
            now=self.state.now(),
            **fields,
        )
        signed = sign_webhook(self.state.consumer_key, payload)
        self.dispatcher.send(self.url, event_type, signed.body, lambda _now: signed.headers)
