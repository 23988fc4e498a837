"""`brokerlink worker` and `brokerlink beat`: sync jobs and the schedule on the Redis queue.

Both need `BROKERLINK_QUEUE_URL` and a store already migrated to head (`brokerlink db upgrade`);
they refuse to start otherwise, saying what to set or run. Run as many of each as needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Annotated

import typer

from brokerlink.cli._options import LogLevel, PlaidUrl, SnapTradeUrl
from brokerlink.config import Settings, get_settings
from brokerlink.db import migrate
from brokerlink.errors import ConfigurationError
from brokerlink.log import configure_logging

__all__ = ["beat", "worker"]


def _ready(settings: Settings) -> None:
    try:
        if not settings.queue_url:
            raise ConfigurationError(
                "BROKERLINK_QUEUE_URL is not set: workers and beat need the Redis broker "
                "(e.g. redis://127.0.0.1:6379/0)"
            )
        migrate.check_at_head(settings.database_url_resolved)
    except (ConfigurationError, migrate.DatabaseNotAtHead) as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(2) from error


def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs run at once by this process.")] = 8,
    snaptrade_url: SnapTradeUrl = None,
    plaid_url: PlaidUrl = None,
    name: Annotated[
        str | None, typer.Option(help="The worker's node name (default: brokerlink-PID@host).")
    ] = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Run sync jobs from the queue (a Celery worker; its jobs share one event loop)."""
    settings = get_settings()
    configure_logging(log_level, json=settings.log_json)
    _ready(settings)
    from brokerlink.worker import app, use_runtime

    use_runtime(snaptrade_url=snaptrade_url, plaid_url=plaid_url)
    app.worker_main(
        [
            "worker",
            f"--hostname={name or f'brokerlink-{os.getpid()}@%h'}",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--loglevel={log_level.upper()}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def beat(
    tick: Annotated[
        float | None, typer.Option(help="Seconds between claims (default: the setting).")
    ] = None,
    log_level: LogLevel = "INFO",
) -> None:
    """The schedule: every tick, claim the due connections and enqueue a job for each."""
    settings = get_settings()
    configure_logging(log_level, json=settings.log_json)
    _ready(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_beat(settings, tick or settings.sync_tick_seconds))


async def _beat(settings: Settings, tick: float) -> None:
    from brokerlink.db.session import create_engine, create_sessionmaker
    from brokerlink.sync.schedule import Scheduler, SyncSchedule
    from brokerlink.sync.tasks import CeleryJobs
    from brokerlink.worker import create_celery

    engine = create_engine(settings.database_url_resolved)
    sessionmaker = create_sessionmaker(engine)
    schedule = SyncSchedule.from_settings(settings)
    jobs = CeleryJobs(create_celery(settings), sessionmaker, schedule)
    try:
        await Scheduler(sessionmaker, schedule, jobs.enqueue_claims).run(tick_seconds=tick)
    finally:
        await engine.dispose()
