"""Who schedules: with a queue configured no web process does (`brokerlink beat` does), and its
jobs go to the queue; without one, the app's own scheduler claims due connections."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.pool import NullPool

from brokerlink.api.state import open_state
from brokerlink.config import Settings
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.domain import Provider
from brokerlink.models import Connection
from brokerlink.repositories import ConnectionRepository, UserRepository
from brokerlink.sync.tasks import BackgroundSyncs, CeleryJobs
from tests.fixtures.db import BACKENDS

pytestmark = pytest.mark.asyncio


async def _due_connection(url):
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with create_sessionmaker(engine)() as session:
            user = await UserRepository.from_session(session).create(
                email=f"{uuid.uuid4().hex[:8]}@example.com"
            )
            c = await ConnectionRepository.from_session(session).upsert(
                user_id=user.id,
                provider=Provider.SNAPTRADE,
                provider_connection_id=f"auth-{uuid.uuid4().hex[:8]}",
                institution_name="Charles Schwab",
            )
            c.next_sync_at = datetime.now(UTC) - timedelta(minutes=1)
            await session.commit()
            return c.id
    finally:
        await engine.dispose()


async def _row(url, connection_id):
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with create_sessionmaker(engine)() as session:
            return await session.scalar(select(Connection).where(Connection.id == connection_id))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("queued", [True, False], ids=["queue", "embedded"])
async def test_the_app_schedules_only_without_a_queue(
    queued, backend, new_database, redis_url, tmp_path
):
    url = new_database(backend)
    await migrate.upgrade_async(url)
    connection_id = await _due_connection(url)
    settings = Settings(
        database_url=url,
        data_dir=tmp_path / "data",
        queue_url=redis_url if queued else None,
        sync_tick_seconds=0.05,
    )
    async with open_state(settings) as state:
        assert isinstance(state.queue, CeleryJobs if queued else BackgroundSyncs)
        await asyncio.sleep(1.0)  # twenty ticks of a scheduler, had the app started one
        await state.syncs.drain()
    row = await _row(url, connection_id)
    if queued:
        assert row.sync_queued_at is None  # never claimed by the web process
        assert row.sync_attempted_at is None
    else:
        # Claimed and run in the app: no SnapTrade is configured here, so it failed and backs off.
        assert row.sync_attempted_at is not None
        assert row.sync_failures == 1
        assert row.next_sync_at > row.sync_attempted_at


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_broker_that_is_down_leaves_the_connection_to_the_schedule(
    backend, new_database, tmp_path
):
    import socket

    from brokerlink.sync import SyncSchedule
    from brokerlink.worker import create_celery

    url = new_database(backend)
    await migrate.upgrade_async(url)
    connection_id = await _due_connection(url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket closes
    settings = Settings(database_url=url, queue_url=f"redis://127.0.0.1:{closed}/0")
    engine = create_engine(url, poolclass=NullPool)
    try:
        jobs = CeleryJobs(create_celery(settings), create_sessionmaker(engine), SyncSchedule())
        assert await jobs.sync_connection(connection_id) is False
    finally:
        await engine.dispose()
    row = await _row(url, connection_id)
    assert row.sync_queued_at is None  # not left marked: the next claim takes it
