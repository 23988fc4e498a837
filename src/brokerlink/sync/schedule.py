"""When to sync: a connection is due once its data is older than its provider's interval.

    due(...)            pure: is this connection due now
    Scheduler.run_once  syncs every user with a due connection (never on a page load)
    Scheduler.run       the loop `brokerlink sync --watch` runs

Scheduled syncs only read (accounts and holdings); they never ask a provider to refresh, which
is billed per call and goes through the cost guard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.config import Settings
from brokerlink.db.session import transaction
from brokerlink.domain.enums import Provider
from brokerlink.repositories import ConnectionRepository
from brokerlink.sync.engine import SyncEngine, SyncSummary

__all__ = ["Scheduler", "SyncSchedule", "due"]

DAY = timedelta(hours=24)


@dataclass(frozen=True)
class SyncSchedule:
    intervals: Mapping[Provider, timedelta] = field(
        default_factory=lambda: {Provider.SNAPTRADE: DAY, Provider.PLAID: DAY}
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> SyncSchedule:
        return cls(
            {
                Provider.SNAPTRADE: timedelta(hours=settings.sync_interval_hours_snaptrade),
                Provider.PLAID: timedelta(hours=settings.sync_interval_hours_plaid),
            }
        )

    def interval(self, provider: Provider) -> timedelta | None:
        return self.intervals.get(provider)


def due(
    schedule: SyncSchedule, provider: Provider, last_synced_at: datetime | None, now: datetime
) -> bool:
    """A never-synced connection is due; otherwise once its provider's interval has passed."""
    interval = schedule.interval(provider)
    if interval is None:
        return False  # manual entries, or a provider the schedule leaves alone
    return last_synced_at is None or now - last_synced_at >= interval


class Scheduler:
    def __init__(
        self,
        engine: SyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        schedule: SyncSchedule,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.schedule = schedule
        self.clock = clock
        self.sleep = sleep

    async def due_users(self) -> list[int]:
        now = self.clock()
        async with transaction(self.sessionmaker) as session:
            connections = await ConnectionRepository.from_session(session).list_syncable()
            due_users = {
                c.user_id
                for c in connections
                if due(self.schedule, c.provider, c.last_synced_at, now)
            }
            return sorted(due_users)

    async def run_once(self) -> SyncSummary:
        """Sync every user with at least one due connection (their whole set: one accounts
        call per provider covers them all)."""
        summary = SyncSummary()
        for user_id in await self.due_users():
            summary.merge(await self.engine.sync_user(user_id))
        return summary

    async def run(
        self,
        *,
        tick_seconds: float = 60.0,
        runs: int | None = None,
        on_run: Callable[[SyncSummary], None] | None = None,
    ) -> None:
        """Check every `tick_seconds`; `runs` bounds the loop (None: until cancelled)."""
        done = 0
        while runs is None or done < runs:
            summary = await self.run_once()
            if on_run is not None and summary.connections:
                on_run(summary)
            done += 1
            if runs is None or done < runs:
                await self.sleep(tick_seconds)
