"""The Plaid connector's `ItemDirectory`, over the connections table.

A Plaid connection's row is its Item's record: `provider_connection_id` is the item id (unique
with the provider, so a webhook's item id is one index lookup), the institution's name, slug and
Plaid id, and `status`, the one truth about a needed re-login (`broken` until update mode or
Plaid's LOGIN_REPAIRED). Each method is one short transaction of its own: the connector calls
them between provider calls, never across one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.domain.enums import Provider
from brokerlink.models import Connection, ConnectionStatus
from brokerlink.providers.plaid import PlaidItem
from brokerlink.repositories import ConnectionRepository

__all__ = ["ConnectionItems"]


def _user_id(user_id: str) -> int | None:
    """The store's id of a connector's user id (`"42"`); None for ids the store never made."""
    return int(user_id) if user_id.isascii() and user_id.isdigit() else None


def _item(connection: Connection) -> PlaidItem:
    return PlaidItem(
        user_id=str(connection.user_id),
        item_id=connection.provider_connection_id,
        institution_name=connection.institution_name,
        institution_slug=connection.institution_slug,
        institution_id=connection.provider_institution_id,
        login_required=connection.status is ConnectionStatus.BROKEN,
        created_at=connection.created_at,
    )


class ConnectionItems:
    """Plaid Items as the store's connections (implements `providers.plaid.ItemDirectory`)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def items(self, user_id: str) -> list[PlaidItem]:
        """The user's Plaid connections that are not disabled."""
        uid = _user_id(user_id)
        if uid is None:
            return []
        async with transaction(self.sessionmaker) as session:
            found = await ConnectionRepository.from_session(session).list_for_user(
                uid, provider=Provider.PLAID
            )
            return [_item(c) for c in found if c.status is not ConnectionStatus.DISABLED]

    async def item(self, item_id: str) -> PlaidItem | None:
        async with transaction(self.sessionmaker) as session:
            found = await ConnectionRepository.from_session(session).get_by_provider_id(
                Provider.PLAID, item_id
            )
            return _item(found) if found is not None else None

    async def item_of_account(self, user_id: str, account_id: str) -> PlaidItem | None:
        uid = _user_id(user_id)
        if uid is None:
            return None
        async with transaction(self.sessionmaker) as session:
            found = await ConnectionRepository.from_session(session).owner_of_account(
                Provider.PLAID, uid, account_id
            )
            return _item(found) if found is not None else None

    async def set_login_required(
        self, item_id: str, required: bool, reason: str | None = None
    ) -> None:
        """`broken` with the reason, or `active` again; a disabled connection stays disabled."""
        async with transaction(self.sessionmaker) as session:
            repo = ConnectionRepository.from_session(session)
            found = await repo.get_by_provider_id(Provider.PLAID, item_id)
            if found is None or found.status is ConnectionStatus.DISABLED:
                return
            if required:
                await repo.set_status(
                    found, ConnectionStatus.BROKEN, reason or "Plaid: ITEM_LOGIN_REQUIRED"
                )
            elif found.status is ConnectionStatus.BROKEN:
                await repo.set_status(found, ConnectionStatus.ACTIVE, None)

    async def set_institution_id(self, item_id: str, institution_id: str) -> None:
        async with transaction(self.sessionmaker) as session:
            found = await ConnectionRepository.from_session(session).get_by_provider_id(
                Provider.PLAID, item_id
            )
            if found is not None and found.provider_institution_id != institution_id:
                found.provider_institution_id = institution_id

    async def set_reconnect_by(self, item_id: str, when: datetime | None) -> None:
        async with transaction(self.sessionmaker) as session:
            found = await ConnectionRepository.from_session(session).get_by_provider_id(
                Provider.PLAID, item_id
            )
            if found is not None:
                found.reconnect_by = when
