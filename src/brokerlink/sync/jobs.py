"""Sync jobs: one interface for the callers, run in the app or on Celery workers.

    Jobs          what callers use: sync_connection, sync_user, first_sync, refresh_followup,
                  webhook_followup, syncing_user
    JobQueue      marks the connections queued, then dispatches (in-process or to the queue)
    JobRunner     runs one job wherever it lands: the engine, then the schedule settles

Deduplicated at both ends. Enqueueing marks each connection (`sync_queued_at`, one conditional
UPDATE): a plain sync asked for while one is queued or running adds nothing. Running takes the
connection's sync lease (`sync.lease`), so one sync per connection runs across every process;
the lease is a row in the store because it already holds across web, CLI and worker processes,
expires by itself when its holder dies, and needs no second source of truth beside the
schedule it guards. A job is idempotent: it does nothing when every connection it names was
synced (settled) since it was requested, so a redelivered job whose first run finished is a
no-op, and one whose first run died syncs again.

A webhook's follow-up carries the event it follows (`WebhookRef`): once its sync has run (or
was found done already), the event is marked `handled`, or `failed` with the sync's error, in
the webhook events table.
"""

from __future__ import annotations

import asyncio
import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.domain.enums import Provider
from brokerlink.repositories import ConnectionRepository
from brokerlink.repositories.webhook_events import WebhookEventRepository
from brokerlink.sync.engine import ConnectionOutcome, SyncEngine, SyncSummary
from brokerlink.sync.schedule import Claim, SyncSchedule, settle

__all__ = ["Job", "JobKind", "JobQueue", "JobResult", "JobRunner", "Jobs", "WebhookRef", "utcnow"]

log = structlog.get_logger("brokerlink.sync")


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobKind(enum.StrEnum):
    """The jobs, named as the queue's task names."""

    SYNC_CONNECTION = "sync.connection.sync"
    SYNC_USER = "sync.user.sync"
    FIRST_SYNC = "sync.connection.first"
    REFRESH_FOLLOWUP = "sync.refresh.followup"
    WEBHOOK_FOLLOWUP = "sync.webhook.followup"

    @property
    def per_user(self) -> bool:
        return self is JobKind.SYNC_USER

    @property
    def deduplicated(self) -> bool:
        # The others follow an event (a new link, a refresh the provider accepted, a webhook)
        # with news a sync queued earlier may have missed: they always go out.
        return self in (JobKind.SYNC_CONNECTION, JobKind.SYNC_USER)


@dataclass(frozen=True)
class WebhookRef:
    """The webhook event a follow-up job settles (its row in the webhook events table)."""

    provider: Provider
    event_id: str

    def to_arg(self) -> str:
        return f"{self.provider.value}:{self.event_id}"

    @classmethod
    def from_arg(cls, value: str) -> WebhookRef:
        provider, _, event_id = value.partition(":")
        return cls(Provider(provider), event_id)


@dataclass(frozen=True)
class Job:
    kind: JobKind
    key: int  # the connection's id; the user's for SYNC_USER
    requested_at: datetime
    webhook: WebhookRef | None = None  # WEBHOOK_FOLLOWUP: the event it follows

    def to_args(self) -> list[object]:
        args: list[object] = [self.key, self.requested_at.isoformat()]
        if self.webhook is not None:
            args.append(self.webhook.to_arg())
        return args

    @classmethod
    def from_args(
        cls, kind: JobKind, key: int, requested_at: str, webhook: str | None = None
    ) -> Job:
        ref = WebhookRef.from_arg(webhook) if webhook else None
        return cls(kind, int(key), datetime.fromisoformat(requested_at), ref)


@dataclass
class JobResult:
    summary: SyncSummary = field(default_factory=SyncSummary)
    # Connections the job still owes: another process holds their lease (retry later).
    busy: list[int] = field(default_factory=list)
    # Nothing to do: everything was synced since the job was requested.
    done_already: bool = False


class Jobs(Protocol):
    """Sync jobs as callers see them; each answers whether a job was queued."""

    async def sync_connection(self, connection_id: int) -> bool: ...
    async def sync_user(self, user_id: int) -> bool: ...
    async def first_sync(self, connection_id: int) -> bool: ...
    async def refresh_followup(self, connection_id: int) -> bool: ...
    async def webhook_followup(
        self, connection_id: int, webhook: WebhookRef | None = None
    ) -> bool: ...
    async def syncing_user(self, user_id: int) -> bool: ...
    async def close(self) -> None: ...


class JobRunner:
    """Runs one job: the connections it still owes, through the engine; then settles them."""

    def __init__(
        self,
        engine: SyncEngine,
        schedule: SyncSchedule,
        *,
        clock: Callable[[], datetime] = utcnow,
        concurrency: int = 16,
    ) -> None:
        self.concurrency = concurrency
        self.engine = engine
        self.sessionmaker = engine.sessionmaker
        self.schedule = schedule
        self.clock = clock
        # Every sync of this engine settles the schedule, before it gives its leases back.
        engine.before_release = self._settle

    async def _settle(self, outcomes: Sequence[ConnectionOutcome]) -> None:
        await settle(self.sessionmaker, self.schedule, outcomes, now=self.clock())

    async def _owed(self, job: Job) -> list[int]:
        """The job's connections not synced since it was requested: a sync counts only if it
        began after the request (`sync_attempted_at` is when a sync began reading), so a
        holdings webhook that arrives while a sync is reading gets a sync of its own."""
        async with transaction(self.sessionmaker) as session:
            repo = ConnectionRepository.from_session(session)
            if job.kind.per_user:
                connections = await repo.list_syncable(job.key)
            else:
                found = await repo.get(job.key)
                connections = [] if found is None else [found]
            return [
                c.id
                for c in connections
                if c.sync_attempted_at is None or c.sync_attempted_at < job.requested_at
            ]

    async def run(self, job: Job) -> JobResult:
        owed = await self._owed(job)
        if not owed:
            log.info("sync.job.done_already", job=job.kind.value, key=job.key)
            await self.settle_webhook(job, None)
            return JobResult(done_already=True)
        if job.kind.per_user:
            summary = await self.engine.sync_user(job.key)
        else:
            summary = SyncSummary([await self.engine.sync_connection(job.key)])
        busy = [
            c.connection_id for c in summary.connections if c.skipped and c.connection_id in owed
        ]
        if not busy:
            failed = [c.error or "the sync failed" for c in summary.connections if not c.ok]
            await self.settle_webhook(job, failed[0] if failed else None)
        return JobResult(summary, busy)

    async def settle_webhook(self, job: Job, error: str | None) -> None:
        """Mark the webhook a follow-up job carries `handled`, or `failed` with `error`."""
        if job.webhook is None:
            return
        async with transaction(self.sessionmaker) as session:
            await WebhookEventRepository.from_session(session).mark(
                provider=job.webhook.provider,
                event_id=job.webhook.event_id,
                result="failed" if error else "handled",
                error=error,
                connection_id=job.key,
            )

    async def give_up(self, connection_ids: Sequence[int]) -> None:
        """Unmark connections a job will not sync after all (whoever holds them settles)."""
        async with transaction(self.sessionmaker) as session:
            await ConnectionRepository.from_session(session).clear_queued(connection_ids)

    async def run_claims(self, claims: Sequence[Claim]) -> SyncSummary:
        """The scheduler's claims, run here (the embedded default: no queue)."""
        summary = SyncSummary()
        slots = asyncio.Semaphore(self.concurrency)

        async def one(claim: Claim) -> None:
            async with slots:
                result = await self.run(
                    Job(JobKind.SYNC_CONNECTION, claim.connection_id, claim.claimed_at)
                )
            summary.merge(result.summary)
            if result.busy:
                await self.give_up(result.busy)

        await asyncio.gather(*(one(c) for c in claims))
        return summary


class JobQueue(ABC):
    """The part of `Jobs` every implementation shares: mark, then dispatch."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        schedule: SyncSchedule,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.schedule = schedule
        self.clock = clock

    @abstractmethod
    async def dispatch(self, job: Job) -> None:
        """Start or enqueue the job (its connections are already marked)."""

    async def close(self) -> None:
        return None

    async def sync_connection(self, connection_id: int) -> bool:
        return await self._request(JobKind.SYNC_CONNECTION, connection_id)

    async def sync_user(self, user_id: int) -> bool:
        return await self._request(JobKind.SYNC_USER, user_id)

    async def first_sync(self, connection_id: int) -> bool:
        return await self._request(JobKind.FIRST_SYNC, connection_id)

    async def refresh_followup(self, connection_id: int) -> bool:
        return await self._request(JobKind.REFRESH_FOLLOWUP, connection_id)

    async def webhook_followup(self, connection_id: int, webhook: WebhookRef | None = None) -> bool:
        return await self._request(JobKind.WEBHOOK_FOLLOWUP, connection_id, webhook)

    async def syncing_user(self, user_id: int) -> bool:
        now = self.clock()
        async with transaction(self.sessionmaker) as session:
            return await ConnectionRepository.from_session(session).syncing(
                user_id, now=now, stale_before=now - self.schedule.stale_after
            )

    async def _request(self, kind: JobKind, key: int, webhook: WebhookRef | None = None) -> bool:
        now = self.clock()
        async with transaction(self.sessionmaker) as session:
            repo = ConnectionRepository.from_session(session)
            if kind.per_user:
                ids = [c.id for c in await repo.list_syncable(key)]
            else:
                ids = [key] if await repo.get(key) is not None else []
            marked = await repo.mark_queued(
                ids, now=now, stale_before=now - self.schedule.stale_after
            )
        if not ids or (kind.deduplicated and not marked):
            log.info("sync.job.deduplicated", job=kind.value, key=key)
            return False
        try:
            await self.dispatch(Job(kind, key, now, webhook))
        except Exception as error:  # noqa: BLE001 - the broker is down: the schedule catches up
            log.error("sync.job.enqueue_failed", job=kind.value, key=key, error=repr(error))
            async with transaction(self.sessionmaker) as session:
                await ConnectionRepository.from_session(session).clear_queued(marked)
            return False
        return True
