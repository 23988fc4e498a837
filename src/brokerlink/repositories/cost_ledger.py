from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from brokerlink.db.types import utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models import CostEntry
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
    ) -> CostEntry:
        entry = CostEntry(
            provider=provider,
            operation=operation,
            amount=amount,
            currency=currency,
            user_id=user_id,
            occurred_at=at or utcnow(),
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
        """The exact sum of matching amounts."""
        query = select(CostEntry.amount).where(CostEntry.currency == currency)
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
