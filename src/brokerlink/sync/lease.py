"""One sync in flight per connection, across every process: a lease in the connection's row.

A sync takes the lease of each connection it is about to fetch (one conditional UPDATE per
connection, committed at once, see `ConnectionRepository.take_sync_lease`), fetches only those it
got, and gives them back when done. Whoever asks while a lease is held skips that connection: its
data is already on the way. A process that dies mid-sync leaves a lease that expires by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.repositories import ConnectionRepository

__all__ = ["DEFAULT_LEASE", "SyncLease"]

# Far longer than a sync of one connection takes; only a crashed holder ever waits it out.
DEFAULT_LEASE = timedelta(minutes=15)


class SyncLease:
    """The leases one sync run holds."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, ttl: timedelta = DEFAULT_LEASE
    ) -> None:
        self.sessionmaker = sessionmaker
        self.ttl = ttl
        self.id = uuid.uuid4().hex
        self.held: set[int] = set()

    async def take(self, connection_ids: Iterable[int], *, now: datetime) -> set[int]:
        """The ids whose lease this run now holds (the others are being synced elsewhere)."""
        taken: set[int] = set()
        async with transaction(self.sessionmaker) as session:
            repo = ConnectionRepository.from_session(session)
            for cid in connection_ids:
                if await repo.take_sync_lease(cid, self.id, now=now, until=now + self.ttl):
                    taken.add(cid)
        self.held |= taken
        return taken

    async def release(self, connection_ids: Iterable[int] | None = None) -> None:
        ids = set(self.held if connection_ids is None else connection_ids) & self.held
        if not ids:
            return
        async with transaction(self.sessionmaker) as session:
            repo = ConnectionRepository.from_session(session)
            for cid in sorted(ids):
                await repo.release_sync_lease(cid, self.id)
        self.held -= ids
