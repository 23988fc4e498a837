"""SnapTrade webhooks acted on, after verification (`providers/snaptrade/webhooks.py`).

    CONNECTION_ADDED, NEW_ACCOUNT_AVAILABLE,   a sync of the connection (a follow-up job); an
    ACCOUNT_HOLDINGS_UPDATED                   authorization with no row here is left alone:
                                               links are made through the app
    CONNECTION_BROKEN / CONNECTION_FIXED       the connection `broken` with the reason / `active`
    CONNECTION_DELETED                         the connection `disabled`, its accounts kept and
                                               marked stale, as a sync does for an account the
                                               provider stops reporting
    ACCOUNT_REMOVED                            that account kept and marked stale
    USER_DELETED                               the user's SnapTrade connections `disabled`, the
                                               user's SnapTrade secret records removed
    TRADE_DETECTION / TRADE_UPDATE             the stored orders SnapTrade reports, updated

Any other documented `eventType` is recorded `handled` and left alone; a type this product does
not know never reaches here (the receiver records it `ignored`). Every change is one short
transaction of its own; secrets are removed after it commits, with none open.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.domain.enums import Provider
from brokerlink.domain.errors import ProviderError
from brokerlink.log import get_logger
from brokerlink.models import Connection, ConnectionStatus, OrderRecord
from brokerlink.providers.snaptrade import SnapTradeConnector
from brokerlink.providers.snaptrade.normalize import from_snaptrade_order
from brokerlink.providers.snaptrade.users import SnapTradeUsers
from brokerlink.providers.snaptrade.webhooks import SnapTradeEventType, SnapTradeWebhook
from brokerlink.repositories import AccountRepository, ConnectionRepository
from brokerlink.secrets import SecretNotFound
from brokerlink.webhooks.actions import Action

__all__ = ["SnapTradeEvents", "order_record_of_v2"]

_log = get_logger("brokerlink.webhooks")
_E = SnapTradeEventType
_SYNCS = frozenset({_E.CONNECTION_ADDED, _E.NEW_ACCOUNT_AVAILABLE, _E.ACCOUNT_HOLDINGS_UPDATED})
_TRADES = frozenset({_E.TRADE_DETECTION, _E.TRADE_UPDATE})


def order_record_of_v2(order: Mapping[str, Any]) -> dict[str, Any]:
    """A webhook's order (the v2 shape: one leg per instrument) as the `AccountOrderRecord`
    the connector reads, so that one function normalises both."""
    legs = order.get("legs")
    leg: Mapping[str, Any] = legs[0] if isinstance(legs, list) and legs else {}
    instrument = leg.get("instrument") if isinstance(leg.get("instrument"), Mapping) else {}
    return {
        "brokerage_order_id": order.get("brokerage_order_id"),
        "status": order.get("status"),
        "action": leg.get("action"),
        "order_type": order.get("order_type"),
        "time_in_force": order.get("time_in_force"),
        "total_quantity": leg.get("total_quantity"),
        "filled_quantity": leg.get("filled_quantity"),
        "execution_price": order.get("execution_price") or leg.get("execution_price"),
        "limit_price": order.get("limit_price"),
        "stop_price": order.get("stop_price"),
        "time_placed": order.get("time_placed"),
        "time_updated": order.get("time_executed"),
        "universal_symbol": {"symbol": instrument.get("symbol")} if instrument else None,
    }


def _store_user_id(snaptrade_user_id: str) -> int | None:
    """The store's user id SnapTrade's `userId` was registered for (the app registers each user
    under its own id); None for an id the app never registered."""
    text = snaptrade_user_id
    return int(text) if text.isascii() and text.isdigit() else None


class SnapTradeEvents:
    """Acts on verified SnapTrade webhooks against the store (and the secret store)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        connector: SnapTradeConnector,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.sessionmaker = sessionmaker
        self.connector = connector
        self.clock = clock

    async def act(self, event: SnapTradeWebhook) -> Action:
        if event.event_type in _SYNCS:
            return await self._sync(event)
        if event.event_type is _E.CONNECTION_BROKEN:
            return await self._broken(event)
        if event.event_type is _E.CONNECTION_FIXED:
            return await self._fixed(event)
        if event.event_type is _E.CONNECTION_DELETED:
            return await self._deleted(event)
        if event.event_type is _E.ACCOUNT_REMOVED:
            return await self._account_removed(event)
        if event.event_type is _E.USER_DELETED:
            return await self._user_deleted(event)
        if event.event_type in _TRADES:
            return await self._orders(event)
        return Action(note=f"nothing to do for {event.event_type.value}")

    @staticmethod
    async def _connection(session: AsyncSession, event: SnapTradeWebhook) -> Connection | None:
        if event.authorization_id is None:
            return None
        return await ConnectionRepository.from_session(session).get_by_provider_id(
            Provider.SNAPTRADE, event.authorization_id
        )

    async def _sync(self, event: SnapTradeWebhook) -> Action:
        async with transaction(self.sessionmaker) as session:
            connection = await self._connection(session, event)
            if connection is None:
                return Action(note="no connection has this authorization: links are made here")
            if connection.status is ConnectionStatus.DISABLED:
                return Action(connection.id, note="the connection is disabled")
            account_id = None
            if event.account_id is not None:
                account = await AccountRepository.from_session(session).get_by_provider_id(
                    connection.id, event.account_id
                )
                account_id = account.id if account is not None else None
            return Action(connection.id, account_id, follow_up=True)

    async def _broken(self, event: SnapTradeWebhook) -> Action:
        async with transaction(self.sessionmaker) as session:
            connection = await self._connection(session, event)
            if connection is None:
                return Action(note="no connection has this authorization")
            if connection.status is not ConnectionStatus.DISABLED:
                await ConnectionRepository.from_session(session).set_status(
                    connection,
                    ConnectionStatus.BROKEN,
                    "SnapTrade: the brokerage connection is broken (CONNECTION_BROKEN); "
                    "reconnect it",
                )
            return Action(connection.id)

    async def _fixed(self, event: SnapTradeWebhook) -> Action:
        async with transaction(self.sessionmaker) as session:
            connection = await self._connection(session, event)
            if connection is None:
                return Action(note="no connection has this authorization")
            if connection.status is ConnectionStatus.BROKEN:
                await ConnectionRepository.from_session(session).set_status(
                    connection, ConnectionStatus.ACTIVE, None
                )
            return Action(connection.id)

    async def _retire(self, session: AsyncSession, connection: Connection, reason: str) -> None:
        """Disable the connection; its accounts and positions stay, marked stale."""
        await ConnectionRepository.from_session(session).set_status(
            connection, ConnectionStatus.DISABLED, reason
        )
        accounts = AccountRepository.from_session(session)
        for account in await accounts.list_for_connection(connection.id):
            await accounts.mark_failed(account, error=reason, at=self.clock())

    async def _deleted(self, event: SnapTradeWebhook) -> Action:
        async with transaction(self.sessionmaker) as session:
            connection = await self._connection(session, event)
            if connection is None:
                return Action(note="no connection has this authorization")
            if connection.status is not ConnectionStatus.DISABLED:
                await self._retire(
                    session,
                    connection,
                    "no longer reported by the provider: the connection was deleted at "
                    "SnapTrade (CONNECTION_DELETED)",
                )
            return Action(connection.id)

    async def _account_removed(self, event: SnapTradeWebhook) -> Action:
        async with transaction(self.sessionmaker) as session:
            connection = await self._connection(session, event)
            if connection is None or event.account_id is None:
                return Action(note="no connection has this authorization")
            accounts = AccountRepository.from_session(session)
            account = await accounts.get_by_provider_id(connection.id, event.account_id)
            if account is None:
                return Action(connection.id, note="the account was never stored")
            await accounts.mark_failed(
                account,
                error="no longer reported by the provider: removed at SnapTrade (ACCOUNT_REMOVED)",
                at=self.clock(),
            )
            return Action(connection.id, account.id)

    async def _user_deleted(self, event: SnapTradeWebhook) -> Action:
        user_id = _store_user_id(event.user_id)
        if user_id is None:
            return Action(note="not a user this app registered")
        name = str(user_id)
        secrets = self.connector.secrets
        try:
            record = await secrets.get(SnapTradeUsers.user_record_name(name))
        except SecretNotFound:
            record = None
        if record is None or record.get("snaptrade_user_id") != event.user_id:
            return Action(note="not a user this app registered")
        async with transaction(self.sessionmaker) as session:
            connections = await ConnectionRepository.from_session(session).list_for_user(
                user_id, provider=Provider.SNAPTRADE
            )
            for connection in connections:
                if connection.status is not ConnectionStatus.DISABLED:
                    await self._retire(
                        session,
                        connection,
                        "no longer reported by the provider: the SnapTrade user was deleted "
                        "(USER_DELETED)",
                    )
        # The store's change is committed; the secret store is called with no transaction open.
        for secret in await secrets.list(SnapTradeUsers.prefix(name)):
            try:
                await secrets.delete(secret)
            except SecretNotFound:
                pass
        self.connector.users.forget(name)
        _log.info("webhooks.snaptrade.user_deleted", user_id=user_id, connections=len(connections))
        return Action()

    async def _orders(self, event: SnapTradeWebhook) -> Action:
        user_id = _store_user_id(event.user_id)
        if user_id is None or event.account_id is None:
            return Action(note="not a user this app registered")
        try:
            orders = [
                from_snaptrade_order(
                    event.account_id,
                    order_record_of_v2(raw),
                    operation="webhook",
                    field=f"details.orders[{i}]",
                )
                for i, raw in enumerate(event.orders)
            ]
        except ProviderError as error:
            return Action(error=f"an order in the webhook cannot be read: {error}")
        async with transaction(self.sessionmaker) as session:
            connection = await ConnectionRepository.from_session(session).owner_of_account(
                Provider.SNAPTRADE, user_id, event.account_id
            )
            if connection is None:
                return Action(note="no stored account has this id")
            account = await AccountRepository.from_session(session).get_by_provider_id(
                connection.id, event.account_id
            )
            assert account is not None  # the connection was found through it
            updated = 0
            for order in orders:
                record = await session.scalar(
                    select(OrderRecord).where(
                        OrderRecord.account_id == account.id,
                        OrderRecord.provider_order_id == order.order_id,
                    )
                )
                if record is None:
                    continue  # placed elsewhere (the brokerage's own app): not ours to track
                order = order.model_copy(update={"client_order_id": record.idempotency_key})
                record.result = order.model_dump(mode="json")
                updated += 1
            await session.flush()
            note = None if updated else "no stored order is among them"
            return Action(connection.id, account.id, note=note)
