"""Manual refreshes: billed calls that follow intent → call → settle, in three transactions.

    refresh(user, connection)    the cost guard's decision and the intent committed (refresh log
                                 `sending`, ledger `pending`), the provider called with no
                                 transaction open, the outcome settled in its own transaction

Nothing of a billed call can be rolled back by what happens after it: a later failure in the same
request (the next connection of a "refresh all", a sync, the response) leaves the ledger and the
refresh log as the provider left them. A slow provider holds no database lock, so reads and other
writes go on while it answers. When the answer is lost (timeout, 5xx after sending, the process
cancelled mid-call) the refresh is settled `in_doubt`: counted against the interval and the
budgets as if billed, never sent again without the user asking. The guarantees that hold across
processes are the database's; see `policies.cost_guard`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime

import httpx
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.connections.service import ProviderNotConfigured
from brokerlink.db.session import transaction
from brokerlink.domain.connectors import InvestmentsConnector
from brokerlink.domain.enums import Provider
from brokerlink.domain.errors import LogicalError, ProviderError, RateLimited
from brokerlink.domain.models import RefreshResult
from brokerlink.errors import BrokerlinkError, NotFoundError
from brokerlink.models import Connection, RefreshTrigger
from brokerlink.policies.cost_guard import (
    BudgetExceeded,
    CostGuard,
    CostPolicy,
    RefreshInFlight,
    RefreshRefused,
    RefreshTicket,
)
from brokerlink.providers.observe import call_context
from brokerlink.repositories import ConnectionRepository
from brokerlink.routing.coverage import CoverageMap
from brokerlink.routing.router import provider_for_account

__all__ = ["RefreshNotSupported", "RefreshService"]

log = structlog.get_logger("brokerlink.connections")

# A provider's answer that it can never refresh this institution on demand (Plaid:
# /investments/refresh at an institution without it).
_UNSUPPORTED = frozenset({"PRODUCTS_NOT_SUPPORTED", "PRODUCT_NOT_SUPPORTED"})


class RefreshNotSupported(BrokerlinkError):
    """The provider cannot refresh this institution on demand; it updates it on its own."""

    status_code = 422
    code = "refresh_not_supported"

    @classmethod
    def at(cls, connection: Connection) -> RefreshNotSupported:
        return cls(
            f"{connection.provider.label} cannot refresh {connection.institution_name} on "
            "demand; it updates it by itself about once a day. Nothing was charged."
        )


# Failures that prove the request never left this machine: nothing can have been billed.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def lost(error: ProviderError) -> bool:
    """Whether the call's outcome is unknown: it may have been carried out (and billed).

    A provider that answered with a 4xx said what it did: nothing (PRODUCT_NOT_READY, a bad
    item, its own throttle). A 5xx, a timeout or a dropped connection after the request went out
    says nothing about whether the work was done.
    """
    if never_sent(error):
        return False
    return error.status is None or error.status >= 500


def never_sent(error: BaseException) -> bool:
    """Whether `error` (or what it was raised from) shows the request never reached the
    provider. Anything else after the call started may have been billed."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _NEVER_SENT):
            return True
        seen = seen.__cause__
    return False


class RefreshService:
    """Cost-guarded manual refreshes over a sessionmaker (it owns its three transactions)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        policy: CostPolicy,
        connectors: Mapping[Provider, InvestmentsConnector],
        *,
        clock: Callable[[], datetime],
        coverage: CoverageMap | None = None,
    ) -> None:
        self.coverage = coverage
        self.sessionmaker = sessionmaker
        self.policy = policy
        self.connectors = connectors
        self.clock = clock

    def _guard(self, session: AsyncSession) -> CostGuard:
        return CostGuard(session, self.policy, clock=self.clock)

    def _connector(self, provider: Provider) -> InvestmentsConnector:
        connector = self.connectors.get(provider)
        if connector is None:
            raise ProviderNotConfigured(f"{provider.label} is not configured")
        return connector

    async def refresh(
        self,
        user_id: int,
        connection_id: int,
        *,
        override: bool = False,
        trigger: RefreshTrigger = RefreshTrigger.MANUAL,
    ) -> RefreshResult:
        """Refresh one of the user's connections, or raise the refusal with its reason."""
        ticket, connector = await self._intent(user_id, connection_id, override, trigger)
        provider_id = ticket.connection.provider_connection_id
        try:
            with call_context(institution=ticket.connection.institution_slug, user_id=user_id):
                result = await connector.refresh(str(user_id), provider_id)
        except RateLimited as limited:
            # SnapTrade's "refreshed too recently" (and Plaid's limit): the same refusal, unbilled.
            async with transaction(self.sessionmaker) as session:
                refusal = await self._guard(session).provider_throttled(
                    ticket, retry_after=limited.retry_after, detail=str(limited)
                )
            raise refusal from limited
        except LogicalError as error:
            await self._settle(ticket, accepted=False, detail=str(error))
            if error.code in _UNSUPPORTED:
                raise RefreshNotSupported.at(ticket.connection) from error
            raise
        except ProviderError as error:
            await self._settle(ticket, accepted=False, detail=str(error), in_doubt=lost(error))
            raise
        except BaseException as error:
            # Cancelled mid-call (shutdown, a dropped request) or a bug: the call may have gone
            # out. The settle runs shielded so that the cancellation cannot skip it.
            await asyncio.shield(
                self._settle(ticket, accepted=False, detail=type(error).__name__, in_doubt=True)
            )
            raise
        await self._settle(ticket, accepted=result.accepted, detail=result.detail)
        return result

    async def _intent(
        self, user_id: int, connection_id: int, override: bool, trigger: RefreshTrigger
    ) -> tuple[RefreshTicket, InvestmentsConnector]:
        """The decision and the intent, committed; a refusal is committed too, then raised."""
        refusal: RefreshRefused | BudgetExceeded | None = None
        try:
            async with transaction(self.sessionmaker) as session:
                connection = await ConnectionRepository.from_session(session).lock(connection_id)
                if connection is None or connection.user_id != user_id:
                    raise NotFoundError(f"connection {connection_id} not found")
                provider = provider_for_account(connection.provider)
                if self.coverage is not None and not self.coverage.refreshable_on_demand(
                    connection.institution_slug
                ):
                    # Refused before anything is recorded or sent: the provider would refuse.
                    raise RefreshNotSupported.at(connection)
                # Manual connections are refused by the guard itself, with its reason.
                connector = None if provider is Provider.MANUAL else self._connector(provider)
                try:
                    ticket = await self._guard(session).authorize_refresh(
                        connection, override=override, trigger=trigger
                    )
                except (RefreshRefused, BudgetExceeded) as refused:
                    refusal = refused  # its REJECTED log row commits with this transaction
        except IntegrityError as race:
            # The in-flight index: another process's intent for this connection committed
            # between our check and our insert.
            reason = "a refresh of this connection is already being sent"
            raise RefreshInFlight(
                f"Refresh refused: {reason}; its result will show on the connection.",
                reason=reason,
                next_allowed_at=None,
            ) from race
        if refusal is not None:
            log.info(
                "connections.refresh.refused",
                connection_id=connection_id,
                code=refusal.code,
                reason=refusal.reason,
            )
            raise refusal
        assert connector is not None
        log.info(
            "connections.refresh.sending",
            connection_id=connection_id,
            refresh_id=ticket.entry.id,
            provider=ticket.connection.provider.value,
            price=str(ticket.price),
        )
        return ticket, connector

    async def _settle(
        self,
        ticket: RefreshTicket,
        *,
        accepted: bool,
        detail: str | None,
        in_doubt: bool = False,
    ) -> None:
        async with transaction(self.sessionmaker) as session:
            await self._guard(session).settle(
                ticket, accepted=accepted, detail=detail, in_doubt=in_doubt
            )
        log.info(
            "connections.refresh.settled",
            connection_id=ticket.connection.id,
            refresh_id=ticket.entry.id,
            outcome="in_doubt" if in_doubt else ("accepted" if accepted else "failed"),
        )
