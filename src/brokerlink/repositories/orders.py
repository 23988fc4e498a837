from datetime import datetime
from typing import Any

from sqlalchemy import select

from brokerlink.db.types import utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models import OrderRecord, OrderRecordState
from brokerlink.repositories._base import Repository

__all__ = ["OrderRepository"]


class OrderRepository(Repository):
    """Order requests by (user, idempotency key)."""

    async def by_key(self, user_id: int, idempotency_key: str) -> OrderRecord | None:
        return await self.session.scalar(
            select(OrderRecord)
            .where(OrderRecord.user_id == user_id, OrderRecord.idempotency_key == idempotency_key)
            .execution_options(populate_existing=True)
        )

    async def create(
        self,
        *,
        user_id: int,
        account_id: int,
        provider: Provider,
        idempotency_key: str,
        request: dict[str, Any],
        fingerprint: str,
        at: datetime | None = None,
    ) -> OrderRecord:
        record = OrderRecord(
            user_id=user_id,
            account_id=account_id,
            provider=provider,
            idempotency_key=idempotency_key,
            state=OrderRecordState.SENDING,
            request=request,
            fingerprint=fingerprint,
            created_at=at or utcnow(),
        )
        self.session.add(record)
        await self.session.flush()
        return record

    async def finish(
        self,
        record: OrderRecord,
        state: OrderRecordState,
        *,
        provider_order_id: str | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        at: datetime | None = None,
    ) -> OrderRecord:
        """Settle the record. A placed record stays placed: the order exists at the provider."""
        if record.state is OrderRecordState.PLACED and state is not OrderRecordState.PLACED:
            return record
        record.state = state
        record.provider_order_id = provider_order_id
        record.result = result
        record.error = error
        record.completed_at = at or utcnow()
        await self.session.flush()
        return record

    async def delete(self, record: OrderRecord) -> None:
        await self.session.delete(record)
        await self.session.flush()

    async def provider_order_ids(self, account_id: int) -> set[str]:
        """The provider's ids of the orders our records on this account already account for."""
        ids = await self.session.scalars(
            select(OrderRecord.provider_order_id).where(
                OrderRecord.account_id == account_id, OrderRecord.provider_order_id.is_not(None)
            )
        )
        return {i for i in ids if i is not None}

    async def list_for_account(self, account_id: int) -> list[OrderRecord]:
        return list(
            await self.session.scalars(
                select(OrderRecord)
                .where(OrderRecord.account_id == account_id)
                .order_by(OrderRecord.created_at.desc(), OrderRecord.id.desc())
            )
        )
