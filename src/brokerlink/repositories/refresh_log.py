from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select

from brokerlink.db.types import utcnow
from brokerlink.models import Connection, RefreshLog, RefreshStatus, RefreshTrigger
from brokerlink.repositories._base import Repository

__all__ = ["RefreshLogRepository"]


class RefreshLogRepository(Repository):
    """Refresh requests per connection: what was asked, when, and how it ended."""

    async def record(
        self,
        connection: Connection,
        *,
        trigger: RefreshTrigger,
        status: RefreshStatus = RefreshStatus.REQUESTED,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> RefreshLog:
        entry = RefreshLog(
            connection_id=connection.id,
            user_id=connection.user_id,
            provider=connection.provider,
            trigger=trigger,
            status=status,
            detail=detail,
            requested_at=at or utcnow(),
        )
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def complete(
        self,
        entry: RefreshLog,
        status: RefreshStatus,
        *,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> RefreshLog:
        entry.status = status
        entry.detail = detail
        entry.completed_at = at or utcnow()
        await self.session.flush()
        return entry

    async def latest(
        self, connection_id: int, *, statuses: Iterable[RefreshStatus] | None = None
    ) -> RefreshLog | None:
        """The most recent request for the connection (only those in `statuses`, when given)."""
        query = select(RefreshLog).where(RefreshLog.connection_id == connection_id)
        if statuses is not None:
            query = query.where(RefreshLog.status.in_(list(statuses)))
        return await self.session.scalar(
            query.order_by(RefreshLog.requested_at.desc(), RefreshLog.id.desc()).limit(1)
        )

    async def latest_times(
        self, connection_ids: Iterable[int], *, statuses: Iterable[RefreshStatus]
    ) -> dict[int, datetime]:
        """`latest(...).requested_at` for many connections in one query."""
        ids = list(connection_ids)
        if not ids:
            return {}
        rows = await self.session.execute(
            select(RefreshLog.connection_id, func.max(RefreshLog.requested_at))
            .where(RefreshLog.connection_id.in_(ids), RefreshLog.status.in_(list(statuses)))
            .group_by(RefreshLog.connection_id)
        )
        return {cid: at for cid, at in rows.all() if at is not None}

    async def count_since(
        self,
        since: datetime,
        *,
        user_id: int | None = None,
        connection_id: int | None = None,
        trigger: RefreshTrigger | None = None,
    ) -> int:
        """How many refreshes were requested since `since` (for rate and cost guards)."""
        query = select(func.count()).select_from(RefreshLog).where(RefreshLog.requested_at >= since)
        if user_id is not None:
            query = query.where(RefreshLog.user_id == user_id)
        if connection_id is not None:
            query = query.where(RefreshLog.connection_id == connection_id)
        if trigger is not None:
            query = query.where(RefreshLog.trigger == trigger)
        return int(await self.session.scalar(query) or 0)

    async def get(self, entry_id: int) -> RefreshLog | None:
        return await self.session.get(RefreshLog, entry_id, populate_existing=True)

    async def in_flight(self, connection_id: int) -> list[RefreshLog]:
        """The connection's refreshes still being sent (at most one, by the partial index)."""
        return list(
            await self.session.scalars(
                select(RefreshLog)
                .where(
                    RefreshLog.connection_id == connection_id,
                    RefreshLog.status == RefreshStatus.SENDING,
                )
                .order_by(RefreshLog.requested_at)
            )
        )
