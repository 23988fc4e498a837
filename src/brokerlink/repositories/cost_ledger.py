from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from brokerlink.db.types import utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models import CostEntry, LedgerStatus
from brokerlink.repositories._base import Repository

__all__ = ["CostLedgerRepository"]


class CostLedgerRepository(Repository):
    """What provider operations cost: one row per billable call."""

    async def record(
        self,
        *,
        provider: Provider,
        operation: str,
        amount: Decimal,
        user_id: int | None = None,
        currency: str = "USD",
        at: datetime | None = None,
        status: LedgerStatus = LedgerStatus.BILLED,
        refresh_id: int | None = None,
    ) -> CostEntry:
        entry = CostEntry(
            provider=provider,
            operation=operation,
            amount=amount,
            currency=currency,
            user_id=user_id,
            occurred_at=at or utcnow(),
            status=status,
            refresh_id=refresh_id,
            settled_at=None if status is LedgerStatus.PENDING else (at or utcnow()),
        )
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def total(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        provider: Provider | None = None,
        user_id: int | None = None,
        operation: str | None = None,
        currency: str = "USD",
    ) -> Decimal:
        """The exact sum of matching amounts that count: billed, pending and in doubt (a
        charge that may have happened counts against a budget until it is settled)."""
        query = select(CostEntry.amount).where(
            CostEntry.currency == currency, CostEntry.status != LedgerStatus.VOID
        )
        if since is not None:
            query = query.where(CostEntry.occurred_at >= since)
        if until is not None:
            query = query.where(CostEntry.occurred_at < until)
        if provider is not None:
            query = query.where(CostEntry.provider == provider)
        if user_id is not None:
            query = query.where(CostEntry.user_id == user_id)
        if operation is not None:
            query = query.where(CostEntry.operation == operation)
        # Summed here, not with SUM(): SQLite keeps amounts as text and would sum them as floats.
        return sum(await self.session.scalars(query), Decimal(0))

    async def recent(
        self, *, provider: Provider | None = None, limit: int = 100
    ) -> list[CostEntry]:
        query = select(CostEntry).order_by(CostEntry.occurred_at.desc(), CostEntry.id.desc())
        if provider is not None:
            query = query.where(CostEntry.provider == provider)
        return list(await self.session.scalars(query.limit(limit)))

    async def for_refresh(self, refresh_id: int) -> CostEntry | None:
        return await self.session.scalar(
            select(CostEntry).where(CostEntry.refresh_id == refresh_id)
        )

    async def settle(self, entry: CostEntry, status: LedgerStatus, *, at: datetime) -> CostEntry:
        entry.status = status
        entry.settled_at = at
        await self.session.flush()
        return entry
