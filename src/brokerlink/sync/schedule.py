"""When to sync: one schedule in the store, claimed by whichever process ticks.

    SyncSchedule        per-provider intervals, the backoff of failing connections, and which
                        providers send webhooks (webhooks first)
    claim_due(...)      the due connections, taken (and advanced) in one transaction
    due_now(...)        a holdings webhook arrived: its connection is due now
    settle(...)         after a sync: the next due time from its outcome
    Scheduler           every tick: claim what is due, hand it to a dispatcher

Each connection carries `next_sync_at`. A claim selects due rows `FOR UPDATE SKIP LOCKED` on
PostgreSQL (SQLite: the transaction holds the database's write lock from BEGIN IMMEDIATE),
marks them queued and advances `next_sync_at` before it commits, so two schedulers (two `beat`
processes, or a beat and an app) never take the same connection. What a sync settles decides
the next time: its interval after a success; for a failure a fraction of the interval doubling
with each consecutive failure, never more than the interval; a broken connection waits for its
user (no next time until a reconnect repairs it).

Webhooks first: a provider that sends its webhooks to this app (`BROKERLINK_WEBHOOKS_<PROVIDER>`)
is not polled. Its connections are synced when a holdings webhook makes them due (`due_now`),
and otherwise once per catch-all interval (`BROKERLINK_CATCHALL_HOURS`) in place of the polling
interval. A missing webhook is caught too. Both providers announce each account's holdings about
once a day (SnapTrade after its daily sync, Plaid after the market's close), so a day without one
is normal; an account is missing its webhook once it is `BROKERLINK_MISSING_WEBHOOK_HOURS` past
that (`WEBHOOK_CADENCE` + the grace: 36 h by default). A claim then also takes its connection (by
the operator dashboard's own query) unless the connection itself was synced within that time (so
an account stays silent without being synced every tick), and logs `sync.webhook.missing`. Read
as "no webhook for 12 h", every account would be missing half of each day and synced twice a day
for nothing; `bench.webhooks` measures both readings.

Scheduled syncs only read (accounts and holdings); they never ask a provider to refresh, which
is billed per call and goes through the cost guard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.config import Settings
from brokerlink.db.session import transaction
from brokerlink.domain.enums import Provider
from brokerlink.repositories import ConnectionRepository
from brokerlink.sync.engine import ConnectionOutcome

__all__ = [
    "WEBHOOK_CADENCE",
    "Claim",
    "Scheduler",
    "SyncSchedule",
    "claim_due",
    "due_now",
    "settle",
]

log = structlog.get_logger("brokerlink.sync")

DAY = timedelta(hours=24)
# How often a provider announces an account's holdings when nothing is wrong: SnapTrade sends
# ACCOUNT_HOLDINGS_UPDATED per account after its daily sync, Plaid HOLDINGS DEFAULT_UPDATE after
# the market's close. A webhook is missing only once this has passed, plus a grace.
WEBHOOK_CADENCE = DAY


@dataclass(frozen=True)
class SyncSchedule:
    intervals: Mapping[Provider, timedelta] = field(
        default_factory=lambda: {Provider.SNAPTRADE: DAY, Provider.PLAID: DAY}
    )
    # A failing connection is tried again after this fraction of its interval, doubled with
    # each consecutive failure and capped at the interval (24 h: 1 h, 2 h, 4 h, … 24 h).
    retry_fraction: float = 1 / 24
    # A queued job not settled within this long was lost (its marker no longer blocks): longer
    # than a backlog may keep a job waiting, plus its run.
    stale_after: timedelta = timedelta(hours=2)
    # Webhooks first: the providers that send their webhooks to this app, synced once per
    # `catchall` (and on their holdings webhooks) instead of every polling interval, and
    # whose accounts silent for `missing_webhook_after` (their daily webhook's cadence plus a
    # grace) are synced anyway.
    webhooks: frozenset[Provider] = frozenset()
    catchall: timedelta = DAY
    missing_webhook_after: timedelta = WEBHOOK_CADENCE + timedelta(hours=12)

    @classmethod
    def from_settings(cls, settings: Settings) -> SyncSchedule:
        queued = settings.sync_lease_seconds + (
            settings.queue_visibility_timeout_seconds if settings.queue_url else 0.0
        )
        pushed = {
            Provider.SNAPTRADE: settings.webhooks_snaptrade,
            Provider.PLAID: settings.webhooks_plaid,
        }
        return cls(
            {
                Provider.SNAPTRADE: timedelta(hours=settings.sync_interval_hours_snaptrade),
                Provider.PLAID: timedelta(hours=settings.sync_interval_hours_plaid),
            },
            stale_after=timedelta(seconds=max(2 * queued, 3600.0)),
            webhooks=frozenset(p for p, on in pushed.items() if on),
            catchall=timedelta(hours=settings.catchall_hours),
            missing_webhook_after=WEBHOOK_CADENCE + timedelta(hours=settings.missing_webhook_hours),
        )

    def interval(self, provider: Provider) -> timedelta | None:
        """How long a synced connection waits for its next scheduled sync: the catch-all
        for a provider that sends webhooks, else its polling interval."""
        if provider in self.webhooks:
            return self.catchall
        return self.intervals.get(provider)

    def retry_delay(self, provider: Provider, failures: int) -> timedelta:
        """How long a connection that failed `failures` times in a row waits."""
        interval = self.interval(provider) or DAY
        delay: timedelta = interval * (self.retry_fraction * 2 ** max(failures - 1, 0))
        return min(delay, interval)

    def after(
        self, outcome: ConnectionOutcome, failures: int, now: datetime
    ) -> tuple[datetime | None, int]:
        """The next due time and failure count once `outcome` settles (`failures` before)."""
        if outcome.ok:
            return now + (self.interval(outcome.provider) or DAY), 0
        if outcome.broken:
            return None, failures + 1  # waits for the user; the claim skips broken rows
        return now + self.retry_delay(outcome.provider, failures + 1), failures + 1


ClaimReason = Literal["due", "missing_webhook"]


@dataclass(frozen=True)
class Claim:
    connection_id: int
    user_id: int
    provider: Provider
    claimed_at: datetime
    # "due": its next_sync_at came; "missing_webhook": only an account's silence made it due.
    reason: ClaimReason = "due"


async def claim_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    schedule: SyncSchedule,
    *,
    now: datetime,
    limit: int = 500,
) -> list[Claim]:
    """Take up to `limit` due connections: marked queued, `next_sync_at` advanced by one
    interval (what a lost job falls back to), committed before anything is enqueued. With
    webhooks, connections holding an account silent for `missing_webhook_after` are due too."""
    async with transaction(sessionmaker) as session:
        rows = await ConnectionRepository.from_session(session).claim_due(
            now=now,
            stale_before=now - schedule.stale_after,
            limit=limit,
            silent_before=now - schedule.missing_webhook_after,
            webhook_providers=schedule.webhooks,
        )
        claims: list[Claim] = []
        for row in rows:
            reason: ClaimReason = "due"
            if row.next_sync_at is not None and row.next_sync_at > now:
                reason = "missing_webhook"
                log.info(
                    "sync.webhook.missing",
                    connection_id=row.id,
                    user_id=row.user_id,
                    provider=row.provider.value,
                    silent_hours=schedule.missing_webhook_after / timedelta(hours=1),
                )
            claims.append(Claim(row.id, row.user_id, row.provider, now, reason))
            row.sync_queued_at = now
            row.next_sync_at = now + (schedule.interval(row.provider) or DAY)
        await session.flush()
        return claims


async def due_now(
    sessionmaker: async_sessionmaker[AsyncSession],
    connection_ids: Iterable[int],
    *,
    now: datetime,
) -> list[int]:
    """A holdings webhook named these connections: each is due at `now` (the next claim
    takes it, unless a job already queued for it runs first and settles it). The ids moved.

    Inside a transaction of its own; a route that records the webhook calls
    `ConnectionRepository.mark_due` in the recording transaction instead."""
    async with transaction(sessionmaker) as session:
        return await ConnectionRepository.from_session(session).mark_due(connection_ids, now=now)


async def settle(
    sessionmaker: async_sessionmaker[AsyncSession],
    schedule: SyncSchedule,
    outcomes: Iterable[ConnectionOutcome],
    *,
    now: datetime,
) -> None:
    """Record what each sync that ran decided (skipped ones belong to whoever ran them)."""
    ran = [o for o in outcomes if not o.skipped]
    if not ran:
        return
    async with transaction(sessionmaker) as session:
        repo = ConnectionRepository.from_session(session)
        for outcome in ran:
            connection = await repo.get(outcome.connection_id)
            if connection is None:
                continue  # removed meanwhile
            next_at, failures = schedule.after(outcome, connection.sync_failures, now)
            # Attempted when it began reading: a webhook that arrived mid-sync is not answered
            # by data read before it (`JobRunner._owed`).
            await repo.settle_sync(
                outcome.connection_id,
                attempted_at=outcome.started_at or now,
                next_sync_at=next_at,
                failures=failures,
            )


Dispatch = Callable[[list[Claim]], Awaitable[None]]


class Scheduler:
    """Every tick, claim what is due and hand it to `dispatch`: the in-process job runner (the
    embedded default) or the queue (`brokerlink beat`, which only enqueues)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        schedule: SyncSchedule,
        dispatch: Dispatch,
        *,
        batch: int = 500,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.schedule = schedule
        self.dispatch = dispatch
        self.batch = batch
        self.clock = clock
        self.sleep = sleep

    async def run_once(self) -> int:
        """Claim and dispatch every due connection, a batch at a time; how many."""
        total = 0
        while True:
            claims = await claim_due(
                self.sessionmaker, self.schedule, now=self.clock(), limit=self.batch
            )
            if claims:
                log.info("sync.schedule.claimed", connections=len(claims))
                await self.dispatch(claims)
            total += len(claims)
            if len(claims) < self.batch:
                return total

    async def run(self, *, tick_seconds: float = 60.0, runs: int | None = None) -> None:
        """Check every `tick_seconds`; `runs` bounds the loop (None: until cancelled)."""
        done = 0
        while runs is None or done < runs:
            try:
                await self.run_once()
            except Exception as error:  # noqa: BLE001 - a failed tick is retried next tick
                log.error("sync.schedule.failed", error=repr(error))
            done += 1
            if runs is None or done < runs:
                await self.sleep(tick_seconds)
