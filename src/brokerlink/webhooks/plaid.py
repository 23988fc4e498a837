"""Plaid webhooks acted on, after verification (`providers/plaid/webhooks.py`).

    HOLDINGS DEFAULT_UPDATE                a sync of the Item's connection (a follow-up job)
    ITEM ERROR, PENDING_EXPIRATION,        through `apply_item_webhook`: marked for reconnect,
    PENDING_DISCONNECT, LOGIN_REPAIRED, …  dated, or cleared (inline: no provider call)

The other webhooks this product knows (`KNOWN_WEBHOOKS`: transactions updates, LINK, …) are
recorded `handled` and left alone; one it does not know never reaches here (the receiver
records it `ignored`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.domain.enums import Provider
from brokerlink.models import Connection, ConnectionStatus
from brokerlink.providers.plaid import PlaidConnector
from brokerlink.providers.plaid.webhooks import PlaidWebhook
from brokerlink.repositories import ConnectionRepository
from brokerlink.webhooks.actions import Action

__all__ = ["PlaidEvents", "event_type"]


def event_type(event: PlaidWebhook) -> str:
    """The webhook events table's name for it: `webhook_type:webhook_code`."""
    return f"{event.webhook_type}:{event.webhook_code}"


class PlaidEvents:
    """Acts on verified Plaid webhooks against the store."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], connector: PlaidConnector
    ) -> None:
        self.sessionmaker = sessionmaker
        self.connector = connector

    async def _connection(self, item_id: str | None) -> Connection | None:
        if item_id is None:
            return None
        async with transaction(self.sessionmaker) as session:
            return await ConnectionRepository.from_session(session).get_by_provider_id(
                Provider.PLAID, item_id
            )

    async def act(self, event: PlaidWebhook) -> Action:
        connection = await self._connection(event.item_id)
        if connection is None:
            return Action(note="no connection has this Item: links are made here")
        if event.webhook_type == "HOLDINGS" and event.webhook_code == "DEFAULT_UPDATE":
            if connection.status is ConnectionStatus.DISABLED:
                return Action(connection.id, note="the connection is disabled")
            return Action(connection.id, follow_up=True)
        if event.webhook_type == "ITEM":
            outcome = await self.connector.handle_webhook(event.payload)
            note = "nothing to do for this code" if outcome.action == "ignored" else None
            return Action(connection.id, note=note)
        return Action(connection.id, note=f"nothing to do for {event_type(event)}")
