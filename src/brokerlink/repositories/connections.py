from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_, select, text, update

from brokerlink.db.types import utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models import Account, Connection, ConnectionStatus
from brokerlink.repositories._base import Repository
from brokerlink.repositories.webhook_events import silent_connection_ids

__all__ = ["ConnectionRepository"]


class ConnectionRepository(Repository):
    """Provider connections (SnapTrade authorizations, Plaid items, manual entries)."""

    async def upsert(
        self,
        *,
        user_id: int,
        provider: Provider,
        provider_connection_id: str,
        institution_name: str,
        institution_slug: str | None = None,
        provider_institution_id: str | None = None,
    ) -> Connection:
        """The connection for (provider, provider id), created or with its institution updated
        (a `provider_institution_id` the provider did not give keeps the stored one)."""
        connection = await self.get_by_provider_id(provider, provider_connection_id)
        if connection is None:
            connection = Connection(
                user_id=user_id,
                provider=provider,
                provider_connection_id=provider_connection_id,
                status=ConnectionStatus.ACTIVE,
            )
            self.session.add(connection)
        elif connection.user_id != user_id:
            raise ValueError(
                f"{provider.value} connection {provider_connection_id} belongs to another user"
            )
        connection.institution_name = institution_name
        connection.institution_slug = institution_slug
        if provider_institution_id is not None:
            connection.provider_institution_id = provider_institution_id
        await self.session.flush()
        return connection

    async def get_or_create_manual(self, user_id: int) -> Connection:
        """The user's connection for manually entered positions."""
        return await self.upsert(
            user_id=user_id,
            provider=Provider.MANUAL,
            provider_connection_id=f"manual-{user_id}",
            institution_name="Manual",
        )

    async def get(self, connection_id: int) -> Connection | None:
        return await self.session.get(Connection, connection_id)

    async def get_by_provider_id(
        self, provider: Provider, provider_connection_id: str
    ) -> Connection | None:
        return await self.session.scalar(
            select(Connection).where(
                Connection.provider == provider,
                Connection.provider_connection_id == provider_connection_id,
            )
        )

    # -- items: how a provider connector finds a connection without asking the secret store --

    async def owner_of_account(
        self, provider: Provider, user_id: int, provider_account_id: str
    ) -> Connection | None:
        """The user's `provider` connection that holds the account with that provider id."""
        return await self.session.scalar(
            select(Connection)
            .join(Account, Account.connection_id == Connection.id)
            .where(
                Connection.provider == provider,
                Connection.user_id == user_id,
                Account.provider_account_id == provider_account_id,
            )
            .order_by(Connection.id)
            .limit(1)
        )

    # -----------------------------------------------------------------------------------------

    async def list_for_user(
        self,
        user_id: int,
        *,
        provider: Provider | None = None,
        status: ConnectionStatus | None = None,
    ) -> list[Connection]:
        query = select(Connection).where(Connection.user_id == user_id)
        if provider is not None:
            query = query.where(Connection.provider == provider)
        if status is not None:
            query = query.where(Connection.status == status)
        return list(await self.session.scalars(query.order_by(Connection.id)))

    # What a sync fetches: provider connections that are not disabled (broken ones are tried,
    # and a good answer repairs them).
    _SYNCABLE = (
        Connection.provider != Provider.MANUAL,
        Connection.status != ConnectionStatus.DISABLED,
    )

    async def list_syncable(self, user_id: int | None = None) -> list[Connection]:
        """The connections a sync fetches, of one user or of everyone."""
        query = select(Connection).where(*self._SYNCABLE)
        if user_id is not None:
            query = query.where(Connection.user_id == user_id)
        return list(await self.session.scalars(query.order_by(Connection.id)))

    async def user_ids_with_connections(self, *, provider: Provider | None = None) -> list[int]:
        """Users with at least one connection a sync fetches."""
        query = select(Connection.user_id).where(*self._SYNCABLE)
        if provider is not None:
            query = query.where(Connection.provider == provider)
        return list(await self.session.scalars(query.distinct().order_by(Connection.user_id)))

    async def set_status(
        self, connection: Connection, status: ConnectionStatus, reason: str | None = None
    ) -> Connection:
        connection.status = status
        connection.status_reason = reason
        await self.session.flush()
        return connection

    async def mark_synced(self, connection: Connection, at: datetime | None = None) -> None:
        connection.last_synced_at = at or utcnow()
        await self.session.flush()

    async def mark_manual_refresh(self, connection: Connection, at: datetime | None = None) -> None:
        connection.last_manual_refresh_at = at or utcnow()
        await self.session.flush()

    async def lock(self, connection_id: int) -> Connection | None:
        """The connection, row-locked until the transaction ends (`SELECT … FOR UPDATE`).

        What serialises decisions about one connection across processes on PostgreSQL (the
        refresh guard reads the log and writes its intent under this lock). SQLite has no row
        locks and needs none: every write transaction there holds the database's write lock.
        """
        return await self.session.scalar(
            select(Connection)
            .where(Connection.id == connection_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def advisory_lock(self, key: int) -> None:
        """A PostgreSQL transaction-scoped advisory lock on `key` (nothing to do on SQLite)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    async def take_sync_lease(
        self, connection_id: int, lease_id: str, *, now: datetime, until: datetime
    ) -> bool:
        """Claim the right to sync the connection until `until`; False if another holds it.

        One conditional UPDATE, atomic on both backends: it matches only when no unexpired lease
        is held, so of any number of processes asking at once exactly one gets it. A crashed
        holder's lease simply expires.
        """
        result = await self.session.execute(
            update(Connection)
            .where(
                Connection.id == connection_id,
                or_(Connection.sync_lease_until.is_(None), Connection.sync_lease_until <= now),
            )
            .values(sync_lease_id=lease_id, sync_lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def release_sync_lease(self, connection_id: int, lease_id: str) -> None:
        await self.session.execute(
            update(Connection)
            .where(Connection.id == connection_id, Connection.sync_lease_id == lease_id)
            .values(sync_lease_id=None, sync_lease_until=None)
            .execution_options(synchronize_session=False)
        )

    # -- the schedule (sync.schedule, sync.jobs) ------------------------------------------------

    @staticmethod
    def _not_queued(stale_before: datetime) -> ColumnElement[bool]:
        # A marker older than `stale_before` belongs to a job that was lost (never settled).
        return or_(Connection.sync_queued_at.is_(None), Connection.sync_queued_at <= stale_before)

    async def claim_due(
        self,
        *,
        now: datetime,
        stale_before: datetime,
        limit: int,
        silent_before: datetime | None = None,
        webhook_providers: Collection[Provider] = (),
    ) -> list[Connection]:
        """Up to `limit` due connections, row-locked for this transaction; rows another
        claimer holds are skipped (`FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the
        transaction already holds the database's write lock, taken at BEGIN IMMEDIATE).

        Due: a provider connection that is active (a broken one waits for its user), whose
        `next_sync_at` has come (or was never set) and with no job queued for it. With
        `silent_before`, a connection of `webhook_providers` is due as well when one of its
        accounts has had no holdings webhook since then (the operator dashboard's query,
        `silent_connection_ids`) and the connection itself was not synced since then either
        (so an account whose webhooks stopped is synced once per silent period, not every
        tick). The caller advances `next_sync_at` and marks it queued before the transaction
        ends.
        """
        due = or_(Connection.next_sync_at.is_(None), Connection.next_sync_at <= now)
        if silent_before is not None and webhook_providers:
            silent = and_(
                Connection.provider.in_(list(webhook_providers)),
                or_(
                    Connection.sync_attempted_at.is_(None),
                    Connection.sync_attempted_at < silent_before,
                ),
                Connection.id.in_(silent_connection_ids(silent_before, webhook_providers)),
            )
            due = or_(due, silent)
        query = (
            select(Connection)
            .where(
                Connection.provider != Provider.MANUAL,
                Connection.status == ConnectionStatus.ACTIVE,
                due,
                self._not_queued(stale_before),
            )
            .order_by(Connection.next_sync_at.is_not(None), Connection.next_sync_at, Connection.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return list(await self.session.scalars(query))

    async def mark_queued(
        self, connection_ids: Iterable[int], *, now: datetime, stale_before: datetime
    ) -> list[int]:
        """Mark each connection as having a sync job queued; the ids that were not already
        marked (one conditional UPDATE each, so of two requests at once only one marks it)."""
        marked: list[int] = []
        for cid in connection_ids:
            result = await self.session.execute(
                update(Connection)
                .where(Connection.id == cid, self._not_queued(stale_before))
                .values(sync_queued_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0):
                marked.append(cid)
        return marked

    async def settle_sync(
        self,
        connection_id: int,
        *,
        attempted_at: datetime,
        next_sync_at: datetime | None,
        failures: int,
    ) -> None:
        """Record a settled sync: its time, the next due time and the failure count; the
        connection's queued job, if any, is done."""
        await self.session.execute(
            update(Connection)
            .where(Connection.id == connection_id)
            .values(
                sync_attempted_at=attempted_at,
                next_sync_at=next_sync_at,
                sync_failures=failures,
                sync_queued_at=None,
            )
            .execution_options(synchronize_session=False)
        )

    async def syncing(self, user_id: int, *, now: datetime, stale_before: datetime) -> bool:
        """Whether a sync of one of the user's connections is queued or running anywhere."""
        busy = and_(
            Connection.user_id == user_id,
            or_(
                Connection.sync_queued_at > stale_before,
                Connection.sync_lease_until > now,
            ),
        )
        return bool(await self.session.scalar(select(exists().where(busy))))

    async def clear_queued(self, connection_ids: Iterable[int]) -> None:
        ids = list(connection_ids)
        if ids:
            await self.session.execute(
                update(Connection)
                .where(Connection.id.in_(ids))
                .values(sync_queued_at=None)
                .execution_options(synchronize_session=False)
            )

    # -- webhooks first (sync.schedule.due_now): a holdings webhook makes its connection due --

    async def mark_due(self, connection_ids: Iterable[int], *, now: datetime) -> list[int]:
        """Make each connection due at `now` (a holdings webhook said its data changed): its
        `next_sync_at` moves back to `now`, never forward; one that is due already, or waits
        for its user (no next time), is left as it is. The ids that moved."""
        ids = list(connection_ids)
        if not ids:
            return []
        moved = await self.session.execute(
            update(Connection)
            .where(
                Connection.id.in_(ids),
                Connection.next_sync_at.is_not(None),
                Connection.next_sync_at > now,
            )
            .values(next_sync_at=now)
            .returning(Connection.id)
            .execution_options(synchronize_session=False)
        )
        return sorted(moved.scalars())
