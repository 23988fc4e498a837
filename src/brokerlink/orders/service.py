"""The order service: the trading gate first, then the provider, and never the same order twice.

    preview(...)            gate → provider order impact (SnapTrade's checked order), returned
                            for the user to confirm
    place_previewed(...)    gate → idempotency record committed → the confirmed preview placed
    place(...)              the same in one step (on SnapTrade: impact, then the checked trade)
    get / list / cancel     scoped to the user's own accounts

Idempotency keys work like Stripe's. A key is bound to the fingerprint of its request
(`orders.fingerprint`: account, side, symbol, size, type, prices, time in force, or the
preview's content); the key reused for a different order is refused with
`idempotency_key_reused` and nothing is sent. Placing is the one write that must survive a crash
between "sent" and "answered": the record is committed as `sending` in its own transaction
*before* the provider call (so a retry, a double click or a second process finds it), the call
runs with no transaction open, and the outcome is settled in another transaction. This is why
the service takes a sessionmaker, not a session. A request with a known key answers:

    placed       the stored order, marked as a replay (`Idempotent-Replayed: true`), same status
    rejected     the provider's refusal again (`order_rejected`, with its reason)
    sending      `order_in_flight` with Retry-After: the first request is still at the provider
    unknown      the provider's answer was lost (timeout, 5xx after sending): reconciled now
    not_placed   `order_not_placed`: reconciled earlier, nothing was placed; use a new key

A failure *before* the placing call (the impact check, an unknown symbol, a rate limit, a
rejected user secret) placed nothing: the record is dropped and the key stays free, so the
client's retry with the same key is a first attempt.

Reconciling an `unknown` record (or a `sending` one older than `in_flight_timeout`, whose
process died) asks the provider for the account's orders and looks for ours
(`orders.reconcile.find_placed`). Found: the record is settled as placed and the order answered
as a replay. Absent, and the attempt ended more than `absent_after` ago (a provider that timed
out may still be processing it): settled as `not_placed`. Absent but too recent, or the provider
unreachable: still `order_in_doubt`, with Retry-After; nothing is ever re-sent blind.

Every provider call for an account is made in `providers.observe.call_context` with its user and
its connection's institution, which the call log records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.db.types import utcnow
from brokerlink.domain.connectors import TradingConnector
from brokerlink.domain.enums import Provider
from brokerlink.domain.errors import AuthFailed, LogicalError, ProviderError, RateLimited
from brokerlink.domain.models import Order, OrderPreview, OrderRequest
from brokerlink.errors import BrokerlinkError, NotFoundError, ValidationError
from brokerlink.models import Account, Connection, OrderRecord, OrderRecordState
from brokerlink.orders.errors import (
    IdempotencyKeyReused,
    OrderInDoubt,
    OrderInFlight,
    OrderNotPlaced,
    OrderRejected,
)
from brokerlink.orders.fingerprint import order_fingerprint, preview_fingerprint
from brokerlink.orders.reconcile import find_placed, wanted_from_request
from brokerlink.policies.trading_gate import check_trading_allowed
from brokerlink.providers.observe import CallContext, call_context
from brokerlink.repositories import AccountRepository, ConnectionRepository, OrderRepository

__all__ = ["OrderService", "Placement"]

log = structlog.get_logger("brokerlink.orders")
T = TypeVar("T")


@dataclass(frozen=True)
class Placement:
    """A placed order, and whether it is the answer of an earlier request with the same key."""

    order: Order
    replayed: bool = False


class _NotSent(Exception):
    """A failure before the placing call: nothing can have been placed."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def _before_placing(call: Awaitable[T]) -> T:
    try:
        return await call
    except (ProviderError, BrokerlinkError) as error:
        raise _NotSent(error) from error


def _label(account: Account, connection: Connection) -> str:
    mask = f" ••{account.number_mask}" if account.number_mask else ""
    return f"{connection.institution_name} {account.name or account.provider_account_id}{mask}"


def _calls(user_id: int, connection: Connection) -> AbstractContextManager[CallContext]:
    """Provider calls for an account of `connection`: recorded with its institution and user."""
    return call_context(institution=connection.institution_slug, user_id=user_id)


def _seconds(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))


class OrderService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        connectors: Mapping[Provider, TradingConnector],
        *,
        clock: Callable[[], datetime] = utcnow,
        absent_after: timedelta = timedelta(seconds=60),
        in_flight_timeout: timedelta = timedelta(minutes=10),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.connectors = connectors
        self.clock = clock
        self.absent_after = absent_after
        self.in_flight_timeout = in_flight_timeout

    async def _account(self, user_id: int, account_id: int) -> tuple[Account, Connection]:
        """The user's own account, gated; another user's account is simply not found."""
        account, connection = await self._account_readable(user_id, account_id)
        check_trading_allowed(
            account_label=_label(account, connection),
            provider=connection.provider,
            capabilities=account.capabilities,
            institution=connection.institution_name,
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
        with _calls(user_id, connection):
            return await self._connector(connection.provider).preview_order(str(user_id), routed)

    async def place(
        self, user_id: int, account_id: int, request: OrderRequest, *, idempotency_key: str
    ) -> Placement:
        account, connection = await self._account(user_id, account_id)
        routed = request.model_copy(
            update={"account_id": account.provider_account_id, "client_order_id": idempotency_key}
        )
        connector = self._connector(connection.provider)

        async def send() -> Order:
            if connection.provider is Provider.SNAPTRADE:
                # SnapTrade orders go through order impact first and are placed as the checked
                # trade, so what is placed is exactly what the impact check accepted.
                checked = await _before_placing(connector.preview_order(str(user_id), routed))
                return await connector.place_previewed_order(str(user_id), checked)
            return await connector.place_order(str(user_id), routed)

        with _calls(user_id, connection):
            return await self._once(
                user_id,
                account,
                connection.provider,
                idempotency_key,
                order_fingerprint(account.id, request),
                routed.model_dump(mode="json"),
                send,
            )

    async def place_previewed(
        self, user_id: int, account_id: int, preview: OrderPreview, *, idempotency_key: str
    ) -> Placement:
        account, connection = await self._account(user_id, account_id)
        if preview.account_id != account.provider_account_id:
            raise ValidationError("the preview is for another account", field="preview")
        connector = self._connector(connection.provider)
        with _calls(user_id, connection):
            return await self._once(
                user_id,
                account,
                connection.provider,
                idempotency_key,
                preview_fingerprint(account.id, preview),
                {"preview": preview.model_dump(mode="json")},
                lambda: connector.place_previewed_order(str(user_id), preview),
            )

    async def _once(
        self,
        user_id: int,
        account: Account,
        provider: Provider,
        key: str,
        fingerprint: str,
        request: dict[str, Any],
        send: Callable[[], Awaitable[Order]],
    ) -> Placement:
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
                        fingerprint=fingerprint,
                        at=self.clock(),
                    )
                    record_id = record.id
        except IntegrityError:
            # Another request with this key committed first.
            existing = await self._by_key(user_id, key)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                raise IdempotencyKeyReused(key)
            return await self._replay(user_id, account, existing)

        try:
            order = await send()
        except _NotSent as failure:
            await self._drop(record_id)
            raise failure.error from None
        except (AuthFailed, RateLimited):
            # Refused at the door (credentials, rate limit): the order was not processed.
            await self._drop(record_id)
            raise
        except LogicalError as error:
            await self._finish(record_id, OrderRecordState.REJECTED, error=error.message)
            raise OrderRejected(key, error.message) from error
        except Exception as error:
            # Timeout, 5xx, an unreadable answer: the provider may have placed it.
            log.warning("orders.place.in_doubt", key=key, error=str(error))
            await self._finish(record_id, OrderRecordState.UNKNOWN, error=str(error))
            raise OrderInDoubt(key, str(error), retry_after=_seconds(self.absent_after)) from error
        await self._finish(
            record_id,
            OrderRecordState.PLACED,
            provider_order_id=order.order_id,
            result=order.model_dump(mode="json"),
        )
        return Placement(order)

    async def _replay(self, user_id: int, account: Account, record: OrderRecord) -> Placement:
        key = record.idempotency_key
        state = record.state
        if state is OrderRecordState.PLACED and record.result is not None:
            return Placement(Order.model_validate(record.result), replayed=True)
        if state is OrderRecordState.REJECTED:
            raise OrderRejected(key, record.error or "refused", replayed=True)
        if state is OrderRecordState.NOT_PLACED:
            raise OrderNotPlaced(key)
        age = self.clock() - record.created_at
        if state is OrderRecordState.SENDING and age < self.in_flight_timeout:
            raise OrderInFlight(key)
        return await self._reconcile(user_id, account, record)

    async def _reconcile(self, user_id: int, account: Account, record: OrderRecord) -> Placement:
        """Look the order up at the provider; settle the record by what is found there."""
        key = record.idempotency_key
        cause = record.error or "the first request did not finish"
        try:
            listed = await self._connector(record.provider).list_orders(
                str(user_id), account.provider_account_id
            )
        except ProviderError as error:
            raise OrderInDoubt(
                key,
                f"{cause}; the provider could not be asked for the account's orders: "
                f"{error.message}",
                replayed=True,
            ) from error
        async with transaction(self.sessionmaker) as session:
            claimed = await OrderRepository.from_session(session).provider_order_ids(account.id)
        found = find_placed(
            wanted_from_request(record.request), listed, since=record.created_at, claimed=claimed
        )
        if found is not None:
            log.info("orders.reconcile.found", key=key, order_id=found.order_id)
            await self._finish(
                record.id,
                OrderRecordState.PLACED,
                provider_order_id=found.order_id,
                result=found.model_dump(mode="json"),
            )
            return Placement(found, replayed=True)
        ended = record.completed_at or record.created_at
        wait = ended + self.absent_after - self.clock()
        if wait > timedelta(0):
            raise OrderInDoubt(
                key,
                f"{cause}; the provider does not list it yet and may still be processing it",
                retry_after=_seconds(wait),
                replayed=True,
            )
        log.info("orders.reconcile.absent", key=key)
        await self._finish(record.id, OrderRecordState.NOT_PLACED, error=record.error)
        raise OrderNotPlaced(key)

    async def _by_key(self, user_id: int, key: str) -> OrderRecord | None:
        async with transaction(self.sessionmaker) as session:
            return await OrderRepository.from_session(session).by_key(user_id, key)

    async def _drop(self, record_id: int) -> None:
        async with transaction(self.sessionmaker) as session:
            stored = await session.get(OrderRecord, record_id)
            if stored is not None:
                await OrderRepository.from_session(session).delete(stored)

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
            stored = await session.get(OrderRecord, record_id, populate_existing=True)
            assert stored is not None
            await OrderRepository.from_session(session).finish(
                stored,
                state,
                provider_order_id=provider_order_id,
                result=result,
                error=error,
                at=self.clock(),
            )

    async def list_orders(self, user_id: int, account_id: int) -> list[Order]:
        account, connection = await self._account_readable(user_id, account_id)
        if connection.provider is not Provider.SNAPTRADE:
            return []  # no order can have been placed through a read-only provider
        with _calls(user_id, connection):
            return await self._connector(connection.provider).list_orders(
                str(user_id), account.provider_account_id
            )

    async def cancel(self, user_id: int, account_id: int, order_id: str) -> Order:
        account, connection = await self._account(user_id, account_id)
        with _calls(user_id, connection):
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
