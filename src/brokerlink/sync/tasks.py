"""Sync jobs in the background: in the app's own event loop (`BackgroundSyncs`, the embedded
default), or as Celery tasks on `brokerlink worker` processes (`CeleryJobs` enqueues them).

A request never waits on them: it answers from the store (with freshness) and the sync writes
the store when it finishes. Every task is acknowledged late and rejected when its worker dies
(so Redis hands it to another worker after the visibility timeout), retried with backoff when
the store or the network fails under it, and retried while another process holds the lease of
a connection it owes (the holder may have died: its lease expires).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import structlog
from celery import Celery, Task, shared_task
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.sync.engine import SyncEngine, SyncSummary
from brokerlink.sync.jobs import Job, JobKind, JobQueue, JobRunner, utcnow
from brokerlink.sync.schedule import Claim, SyncSchedule

__all__ = ["BackgroundSyncs", "CeleryJobs"]

log = structlog.get_logger("brokerlink.sync")

# A webhook's follow-up that never got its connection: another sync held it throughout.
BUSY = "another sync held the connection; the schedule syncs it next"


class BackgroundSyncs(JobQueue):
    """Jobs run as tasks of the app's event loop. Kept so that shutdown can wait for them."""

    def __init__(
        self,
        engine: SyncEngine,
        schedule: SyncSchedule | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        busy_retries: int = 5,
        busy_retry_seconds: float = 2.0,
    ) -> None:
        super().__init__(
            engine.sessionmaker, schedule or SyncSchedule(), clock=clock or engine.clock
        )
        self.engine = engine
        # A webhook's follow-up that finds its connection held tries again this many times:
        # once the holder settles, the job finds the connection synced and marks its event.
        self.busy_retries = busy_retries
        self.busy_retry_seconds = busy_retry_seconds
        self.runner = JobRunner(engine, self.schedule, clock=self.clock)
        self._tasks: set[asyncio.Task[object]] = set()
        self._users: dict[int, asyncio.Task[SyncSummary]] = {}

    async def dispatch(self, job: Job) -> None:
        self._keep(asyncio.create_task(self._run(job)), job.kind.value, job.key)

    async def _run(self, job: Job) -> None:
        result = await self.runner.run(job)
        tries = 0
        while result.busy and job.webhook is not None and tries < self.busy_retries:
            tries += 1
            await asyncio.sleep(self.busy_retry_seconds)
            result = await self.runner.run(job)
        if result.busy:
            # Another process is syncing them and settles them itself.
            await self.runner.give_up(result.busy)
            await self.runner.settle_webhook(job, BUSY)

    async def run_claims(self, claims: Sequence[Claim]) -> None:
        """The in-app scheduler's dispatch: the claimed connections, synced here."""
        await self.runner.run_claims(claims)

    def user(self, user_id: int) -> asyncio.Task[SyncSummary]:
        """Sync every connection of a user now, for a caller that waits on it (an analysis
        asked for on fresh data); a second caller joins the running task."""
        running = self._users.get(user_id)
        if running is not None and not running.done():
            return running
        task = asyncio.create_task(self.engine.sync_user(user_id))
        self._users[user_id] = task
        self._keep(task, "sync.user.inline", user_id)
        return task

    def _keep(self, task: asyncio.Task[Any], scope: str, key: int) -> None:
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(scope, key, t))

    def _finished(self, scope: str, key: int, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # The engine records per-connection failures itself; this is anything else.
            log.error("sync.background.failed", scope=scope, id=key, error=repr(error))

    async def drain(self) -> None:
        """Wait for every running sync (tests, shutdown)."""
        while running := [t for t in self._tasks if not t.done()]:
            await asyncio.gather(*running, return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class CeleryJobs(JobQueue):
    """Jobs enqueued to the Celery workers (`brokerlink worker`) over the Redis broker."""

    def __init__(
        self,
        app: Celery,
        sessionmaker: async_sessionmaker[AsyncSession],
        schedule: SyncSchedule,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(sessionmaker, schedule, clock=clock or utcnow)
        self.app = app

    async def dispatch(self, job: Job) -> None:
        await asyncio.to_thread(self.app.send_task, job.kind.value, args=job.to_args())

    async def enqueue_claims(self, claims: Sequence[Claim]) -> None:
        """`brokerlink beat`'s dispatch: one job per claimed connection (already marked)."""

        def send() -> None:
            for claim in claims:
                job = Job(JobKind.SYNC_CONNECTION, claim.connection_id, claim.claimed_at)
                self.app.send_task(job.kind.value, args=job.to_args())

        await asyncio.to_thread(send)


# -- the Celery tasks (run on a worker; `brokerlink.worker` holds the process's runtime) -------

# Technical failures under the job (the store or the network went away): retried with backoff.
# A provider's own failure is not among them: the engine records it and the schedule backs off.
RETRY_ON = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": RETRY_ON,
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 10,
}


def _execute(
    task: Task, kind: JobKind, key: int, requested_at: str, webhook: str | None = None
) -> dict[str, Any]:
    from brokerlink.worker import runtime  # the worker's process state, built on first use

    rt = runtime()
    job = Job.from_args(kind, key, requested_at, webhook)
    result = rt.run(rt.runner.run(job))
    if result.busy:
        if task.request.retries < rt.busy_retries:
            log.info("sync.job.busy", job=kind.value, key=key, connections=result.busy)
            raise task.retry(countdown=rt.busy_retry_seconds, max_retries=rt.busy_retries)
        rt.run(rt.runner.give_up(result.busy))
        rt.run(rt.runner.settle_webhook(job, BUSY))
    summary = result.summary
    return {
        "done_already": result.done_already,
        "connections": len(summary.connections),
        "ok": summary.connections_ok,
        "busy": result.busy,
    }


@shared_task(name=JobKind.SYNC_CONNECTION.value, **TASK_OPTIONS)
def sync_connection(self: Task, connection_id: int, requested_at: str) -> dict[str, Any]:
    return _execute(self, JobKind.SYNC_CONNECTION, connection_id, requested_at)


@shared_task(name=JobKind.SYNC_USER.value, **TASK_OPTIONS)
def sync_user(self: Task, user_id: int, requested_at: str) -> dict[str, Any]:
    return _execute(self, JobKind.SYNC_USER, user_id, requested_at)


@shared_task(name=JobKind.FIRST_SYNC.value, **TASK_OPTIONS)
def first_sync(self: Task, connection_id: int, requested_at: str) -> dict[str, Any]:
    return _execute(self, JobKind.FIRST_SYNC, connection_id, requested_at)


@shared_task(name=JobKind.REFRESH_FOLLOWUP.value, **TASK_OPTIONS)
def refresh_followup(self: Task, connection_id: int, requested_at: str) -> dict[str, Any]:
    return _execute(self, JobKind.REFRESH_FOLLOWUP, connection_id, requested_at)


@shared_task(name=JobKind.WEBHOOK_FOLLOWUP.value, **TASK_OPTIONS)
def webhook_followup(
    self: Task, connection_id: int, requested_at: str, webhook: str | None = None
) -> dict[str, Any]:
    return _execute(self, JobKind.WEBHOOK_FOLLOWUP, connection_id, requested_at, webhook)
