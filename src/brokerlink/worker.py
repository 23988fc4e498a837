"""The Celery app: sync jobs on worker processes over a Redis broker (`BROKERLINK_QUEUE_URL`).

    brokerlink worker                    a worker (or: celery -A brokerlink.worker worker)
    brokerlink beat                      the schedule: claims due connections, enqueues them

Tasks live in the features (`brokerlink.sync.tasks`). A worker process holds one runtime: an
event loop in a thread of its own with the store, the provider connectors and the job runner,
built on the first task from the settings; the pool's threads hand it coroutines. Beat is not
Celery's beat: the schedule is in the store (`connections.next_sync_at`), so any number of beat
processes can run and a claim decides which one enqueues a connection.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

from celery import Celery
from celery.signals import worker_process_shutdown, worker_shutdown

from brokerlink.config import Settings, get_settings
from brokerlink.errors import ConfigurationError

if TYPE_CHECKING:
    from brokerlink.sync.jobs import JobRunner

__all__ = ["WorkerRuntime", "app", "celery_config", "create_celery", "runtime", "use_runtime"]

T = TypeVar("T")

QUEUE = "brokerlink.sync"


def celery_config(settings: Settings) -> dict[str, Any]:
    if not settings.queue_url:
        raise ConfigurationError(
            "BROKERLINK_QUEUE_URL is not set: workers and beat need the Redis broker "
            "(e.g. redis://127.0.0.1:6379/0)"
        )
    return {
        "broker_url": settings.queue_url,
        "broker_connection_retry_on_startup": True,
        # A job a dead worker never acknowledged goes back to the queue after the visibility
        # timeout; Redis is scanned for such jobs every restore interval.
        "broker_transport_options": {
            "visibility_timeout": settings.queue_visibility_timeout_seconds,
            "unacked_restore_interval": settings.queue_restore_interval_seconds,
            "unacked_restore_throttle": 1,
        },
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        "task_default_queue": QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "include": ["brokerlink.sync.tasks"],
    }


def create_celery(settings: Settings) -> Celery:
    """A Celery app on the settings' broker (the app and beat enqueue through one)."""
    import brokerlink.sync.tasks  # noqa: F401 - registers the shared tasks

    celery = Celery("brokerlink", set_as_current=False)
    celery.conf.update(celery_config(settings))
    return celery


# What `celery -A brokerlink.worker worker` and `brokerlink worker` run; configured from the
# settings on first use, not at import.
app = Celery("brokerlink", set_as_current=False)


@app.on_configure.connect
def _configure(sender: Celery, **_: Any) -> None:
    sender.conf.update(celery_config(get_settings()))


class WorkerRuntime:
    """One worker process's store, connectors and job runner, on an event loop of its own."""

    def __init__(
        self,
        settings: Settings,
        *,
        snaptrade_url: str | None = None,
        plaid_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.snaptrade_url = snaptrade_url or settings.snaptrade_base_url
        self.plaid_url = plaid_url or settings.plaid_base_url
        lease = settings.sync_lease_seconds
        # While another holds a connection's lease, ask again a few times within the lease:
        # a dead holder's lease runs out, a live one settles the connection itself.
        self.busy_retry_seconds = max(0.2, min(lease / 4, 60.0))
        self.busy_retries = math.ceil(lease / self.busy_retry_seconds) + 2
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stack = AsyncExitStack()
        self._runner: JobRunner | None = None

    def start(self) -> WorkerRuntime:
        self._thread.start()
        self.run(self._open())
        return self

    async def _open(self) -> None:
        from brokerlink.composition import open_services
        from brokerlink.db import migrate
        from brokerlink.sync.jobs import JobRunner
        from brokerlink.sync.schedule import SyncSchedule

        await migrate.check_at_head_async(self.settings.database_url_resolved)
        services = await self._stack.enter_async_context(
            open_services(self.settings, snaptrade_url=self.snaptrade_url, plaid_url=self.plaid_url)
        )
        self._runner = JobRunner(services.sync, SyncSchedule.from_settings(self.settings))

    @property
    def runner(self) -> JobRunner:
        assert self._runner is not None, "the runtime is not started"
        return self._runner

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the runtime's loop and wait for it (from any thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        if self._thread.is_alive():
            self.run(self._stack.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)


_runtime: WorkerRuntime | None = None
_options: dict[str, str | None] = {}
_lock = threading.Lock()


def use_runtime(*, snaptrade_url: str | None = None, plaid_url: str | None = None) -> None:
    """Provider URLs for this process's runtime (`brokerlink worker --snaptrade-url …`)."""
    _options.update(snaptrade_url=snaptrade_url, plaid_url=plaid_url)


def runtime() -> WorkerRuntime:
    """This worker process's runtime, started on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = WorkerRuntime(get_settings(), **_options).start()
        return _runtime


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_runtime(**_: Any) -> None:
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
            _runtime = None
