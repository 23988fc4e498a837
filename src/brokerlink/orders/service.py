"""The order service: the trading gate first, then the provider, and never the same order twice.

    preview(...)            gate → provider order impact (SnapTrade's checked order), returned
                            for the user to confirm
    place_previewed(...)    gate → idempotency record committed → the confirmed preview placed
    place(...)              the same in one step (on SnapTrade: impact, then the checked trade)
    get / list / cancel     scoped to the user's own accounts

Placing is the one write that must survive a crash between "sent" and "answered": the record
is committed as `sending` in its own transaction *before* the provider call, so a retry with
the same key (a double click, a client's retry, a second process) finds it. A finished record
answers with the stored order; one whose outcome is unknown is refused with `OrderInDoubt`
rather than risking a second order. This is why the service takes a sessionmaker, not a session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.domain.connectors import TradingConnector
from brokerlink.domain.enums import Provider
from brokerlink.domain.errors import LogicalError, ProviderError
from brokerlink.domain.models import Order, OrderPreview, OrderRequest
from brokerlink.errors import BrokerlinkError, NotFoundError, ValidationError
from brokerlink.models import Account, Connection, OrderRecord, OrderRecordState
from brokerlink.policies.trading_gate import check_trading_allowed
from brokerlink.repositories import AccountRepository, ConnectionRepository, OrderRepository

__all__ = ["OrderInDoubt", "OrderService"]


class OrderInDoubt(BrokerlinkError):
    """An earlier request with this key has no known outcome; placing again could double it."""

    status_code = 409
    code = "order_in_doubt"


def _label(account: Account, connection: Connection) -> str:
    mask = f" ••{account.number_mask}" if account.number_mask else ""
    return f"{connection.institution_name} {account.name or account.provider_account_id}{mask}"


class OrderService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        connectors: Mapping[Provider, TradingConnector],
    ) -> None:
        self.sessionmaker = sessionmaker
        self.connectors = connectors

    async def _account(self, user_id: int, account_id: int) -> tuple[Account, Connection]:
        """The user's own account, gated; another user's account is simply not found."""
        account, connection = await self._account_readable(user_id, account_id)
        check_trading_allowed(
            account_label=_label(account, connection),
            provider=connection.provider,
            capabilities=account.capabilities,
        )
        return account, connection

    def _connector(self, provider: Provider) -> TradingConnector:
        connector = self.connectors.get(provider)
        if connector is None:
            raise BrokerlinkError(
                f"no {provider.value} trading connector is configured",
                status_code=503,
                code="provider_not_configured",
            )
        return connector

    async def preview(self, user_id: int, account_id: int, request: OrderRequest) -> OrderPreview:
        account, connection = await self._account(user_id, account_id)
        routed = request.model_copy(update={"account_id": account.provider_account_id})
        return await self._connector(connection.provider).preview_order(str(user_id), routed)

    async def place(
        self, user_id: int, account_id: int, request: OrderRequest, *, idempotency_key: str
    ) -> Order:
        account, connection = await self._account(user_id, account_id)
        routed = request.model_copy(
            update={"account_id": account.provider_account_id, "client_order_id": idempotency_key}
        )
        connector = self._connector(connection.provider)

        async def send() -> Order:
            if connection.provider is Provider.SNAPTRADE:
                # SnapTrade orders go through order impact first and are placed as the checked
                # trade, so what is placed is exactly what the impact check accepted.
                checked = await connector.preview_order(str(user_id), routed)
                return await connector.place_previewed_order(str(user_id), checked)
            return await connector.place_order(str(user_id), routed)

        return await self._once(
            user_id,
            account,
            connection.provider,
            idempotency_key,
            routed.model_dump(mode="json"),
            send,
        )

    async def place_previewed(
        self, user_id: int, account_id: int, preview: OrderPreview, *, idempotency_key: str
    ) -> Order:
        account, connection = await self._account(user_id, account_id)
        if preview.account_id != account.provider_account_id:
            raise ValidationError("the preview is for another account", field="preview")
        connector = self._connector(connection.provider)
        return await self._once(
            user_id,
            account,
            connection.provider,
            idempotency_key,
            {"preview": preview.model_dump(mode="json")},
            lambda: connector.place_previewed_order(str(user_id), preview),
        )

    async def _once(
        self,
        user_id: int,
        account: Account,
        provider: Provider,
        key: str,
        request: dict[str, Any],
        send: Callable[[], Awaitable[Order]],
    ) -> Order:
        if not key or len(key) > 128:
            raise ValidationError("an idempotency key of 1-128 characters is required", field="key")
        try:
            async with transaction(self.sessionmaker) as session:
                orders = OrderRepository.from_session(session)
                existing = await orders.by_key(user_id, key)
                if existing is None:
                    record = await orders.create(
                        user_id=user_id,
                        account_id=account.id,
                        provider=provider,
                        idempotency_key=key,
                        request=request,
                    )
                    record_id = record.id
        except IntegrityError:
            # Another request with this key committed first.
            existing = await self._by_key(user_id, key)
        if existing is not None:
            return self._replay(existing.state, existing.result, existing.error, key)

        try:
            order = await send()
        except ProviderError as error:
            # A logical refusal placed nothing; anything else (timeout, 5xx) might have.
            state = (
                OrderRecordState.REJECTED
                if isinstance(error, LogicalError)
                else OrderRecordState.UNKNOWN
            )
            await self._finish(record_id, state, error=str(error))
            raise
        await self._finish(
            record_id,
            OrderRecordState.PLACED,
            provider_order_id=order.order_id,
            result=order.model_dump(mode="json"),
        )
        return order

    async def _by_key(self, user_id: int, key: str) -> OrderRecord | None:
        async with transaction(self.sessionmaker) as session:
            return await OrderRepository.from_session(session).by_key(user_id, key)

    @staticmethod
    def _replay(
        state: OrderRecordState, result: dict[str, Any] | None, error: str | None, key: str
    ) -> Order:
        if state is OrderRecordState.PLACED and result is not None:
            return Order.model_validate(result)
        if state is OrderRecordState.REJECTED:
            raise OrderInDoubt(
                f"The order with key {key} was refused by the provider ({error}); "
                "use a new key to try again."
            )
        raise OrderInDoubt(
            f"The order with key {key} is being placed or its outcome is unknown; check the "
            "account's orders before trying again with a new key."
        )

    async def _finish(
        self,
        record_id: int,
        state: OrderRecordState,
        *,
        provider_order_id: str | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        async with transaction(self.sessionmaker) as session:
            stored = await session.get(OrderRecord, record_id)
            assert stored is not None
            await OrderRepository.from_session(session).finish(
                stored, state, provider_order_id=provider_order_id, result=result, error=error
            )

    async def list_orders(self, user_id: int, account_id: int) -> list[Order]:
        account, connection = await self._account_readable(user_id, account_id)
        if connection.provider is not Provider.SNAPTRADE:
            return []  # no order can have been placed through a read-only provider
        return await self._connector(connection.provider).list_orders(
            str(user_id), account.provider_account_id
        )

    async def cancel(self, user_id: int, account_id: int, order_id: str) -> Order:
        account, connection = await self._account(user_id, account_id)
        return await self._connector(connection.provider).cancel_order(
            str(user_id), account.provider_account_id, order_id
        )

    async def _account_readable(self, user_id: int, account_id: int) -> tuple[Account, Connection]:
        async with transaction(self.sessionmaker) as session:
            account = await AccountRepository.from_session(session).get(account_id)
            connection = (
                await ConnectionRepository.from_session(session).get(account.connection_id)
                if account is not None
                else None
            )
        if account is None or connection is None or connection.user_id != user_id:
            raise NotFoundError(f"account {account_id} not found")
        return account, connection
