"""Sync on Celery workers over Redis, across real processes on PostgreSQL.

Two `brokerlink beat` and two (or more) `brokerlink worker` processes share one store, one
Redis and one SnapTrade sandbox (its own process, which counts every request it receives).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.pool import NullPool

from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.models import Account, Connection, Position
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeConnector
from brokerlink.secrets import secret_store_from_settings
from brokerlink.sync import SyncSchedule
from brokerlink.sync.tasks import CeleryJobs
from brokerlink.worker import create_celery
from tests.worker.processes import (
    CLIENT_ID,
    CONSUMER_KEY,
    Stack,
    connection_rows,
    make_users,
    reset_counts,
    sandbox,
    sandbox_counts,
    set_latency,
)

pytestmark = pytest.mark.asyncio


@pytest.fixture
def stack(new_database, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    url = new_database("postgresql")
    migrate.upgrade(url)
    saved = dict(os.environ)
    with sandbox() as sandbox_url:
        deployment = Stack(url, redis_url, sandbox_url, tmp_path / "data")
        deployment.activate()
        try:
            yield deployment
        finally:
            deployment.close()
            os.environ.clear()
            os.environ.update(saved)


async def _wait_for(predicate, what: str, stack: Stack, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{stack.logs()}")
        await asyncio.sleep(0.1)


async def _queue_length(redis_url: str) -> int:
    import redis.asyncio as redis

    client = redis.from_url(redis_url)
    try:
        return int(await client.llen("brokerlink.sync"))
    finally:
        await client.aclose()


async def test_one_trigger_syncs_each_connection_once_across_workers_and_beats(stack):
    # Jobs wait behind each other here: a visibility timeout shorter than that wait would hand
    # a job that is still running to a second worker (harmless, but it would blur the count).
    stack.overrides["BROKERLINK_QUEUE_VISIBILITY_TIMEOUT_SECONDS"] = "60"
    stack.activate()
    users = await make_users(stack, 200, "ALPACA")  # one account each
    settings = stack.settings()
    engine = create_engine(stack.database_url, pool_size=8, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    jobs = CeleryJobs(create_celery(settings), sessionmaker, SyncSchedule.from_settings(settings))
    try:
        stack.beat()
        stack.beat()
        reset_counts(stack.sandbox_url)
        set_latency(stack.sandbox_url, 0.4)

        # The trigger: every connection falls due at once. Both beats race to claim them.
        async with sessionmaker() as session:
            await session.execute(update(Connection).values(next_sync_at=datetime.now(UTC)))
            await session.commit()

        async def all_queued() -> bool:
            rows = await connection_rows(stack.database_url)
            return all(r.sync_queued_at is not None for r in rows)

        await _wait_for(all_queued, "both beats to claim every connection", stack)

        async def all_enqueued() -> bool:
            return await _queue_length(stack.queue_url) >= 200

        await _wait_for(all_enqueued, "the claimed connections' jobs", stack)
        await asyncio.sleep(1.0)  # several more ticks of both beats
        assert await _queue_length(stack.queue_url) == 200  # one job per connection

        # A second trigger while the first is pending: "sync all" for every user adds nothing.
        assert not any(await asyncio.gather(*(jobs.sync_user(uid) for uid, _ in users)))

        stack.worker()
        stack.worker()

        async def running() -> list[int]:
            rows = await connection_rows(stack.database_url)
            return [r.user_id for r in rows if r.sync_lease_id is not None]

        async def something_running() -> bool:
            return bool(await running())

        await _wait_for(something_running, "a worker to start syncing", stack)
        # … and again for the users whose sync is running right now: nothing is added (a
        # request that lands just after its sync settled is a new one, and syncs once more).
        busy = await running()
        answers = await asyncio.gather(*(jobs.sync_user(u) for u in busy))
        again = dict(zip(busy, answers, strict=True))
        assert list(again.values()).count(False) >= 1
        repeated = {uid for uid, queued in again.items() if queued}

        async def all_settled() -> bool:
            rows = await connection_rows(stack.database_url)
            return all(r.sync_queued_at is None and r.last_synced_at for r in rows)

        await _wait_for(all_settled, "every connection to sync", stack, timeout=120)
        await asyncio.sleep(1.0)  # anything duplicated would show at the sandbox by now
    finally:
        await engine.dispose()

    counts: dict[str, int] = {}
    for op, n in sandbox_counts(stack.sandbox_url).items():
        if op.startswith("GET /accounts/"):
            op = "GET /accounts/{accountId}/" + op.rsplit("/", 1)[-1]
        counts[op] = counts.get(op, 0) + n
    per_connection = {"GET /accounts"}  # one listing per user, no authorizations read
    per_account = {"GET /accounts/{accountId}/all", "GET /accounts/{accountId}/balances"}
    expected = 200 + len(repeated)  # each connection once, and once more per late request
    assert {op: counts.get(op, 0) for op in per_connection | per_account} == {
        op: expected for op in per_connection | per_account
    }, counts
    assert sum(counts.values()) == 3 * expected, counts
    assert len(repeated) < len(again), again


async def test_a_worker_killed_mid_sync_loses_nothing(stack):
    ((user_id, connection_id),) = await make_users(stack, 1, "SCHWAB")  # two accounts
    settings = stack.settings()
    engine = create_engine(stack.database_url, poolclass=NullPool)
    sessionmaker = create_sessionmaker(engine)
    jobs = CeleryJobs(create_celery(settings), sessionmaker, SyncSchedule.from_settings(settings))
    try:
        set_latency(stack.sandbox_url, 1.0)
        reset_counts(stack.sandbox_url)
        doomed = stack.worker()
        assert await jobs.first_sync(connection_id)

        async def leased() -> bool:
            (row,) = await connection_rows(stack.database_url)
            return (
                row.sync_lease_id is not None
                and sum(sandbox_counts(stack.sandbox_url).values()) > 0
            )

        await _wait_for(leased, "the first worker to start the sync", stack)
        os.killpg(doomed.pid, signal.SIGKILL)  # mid-sync: its provider calls are in flight
        doomed.wait(timeout=10)
        (row,) = await connection_rows(stack.database_url)
        assert row.last_synced_at is None
        assert row.sync_queued_at is not None

        stack.worker()  # the survivor: the job comes back to it once Redis deems it lost

        async def synced() -> bool:
            (row,) = await connection_rows(stack.database_url)
            return row.last_synced_at is not None and row.sync_queued_at is None

        await _wait_for(synced, "the job to complete on the other worker", stack)
        set_latency(stack.sandbox_url, 0.0)

        # Consistent: the store holds exactly what the sandbox holds, each position once.
        async with SnapTradeClient(CLIENT_ID, CONSUMER_KEY, base_url=stack.sandbox_url) as client:
            connector = SnapTradeConnector(
                client, secret_store_from_settings(settings, sessionmaker=sessionmaker)
            )
            expected = {}
            for account in await connector.list_accounts(str(user_id)):
                held = await connector.get_holdings(str(user_id), account.account_id)
                expected[account.account_id] = sorted(
                    (p.instrument.symbol or "", p.quantity) for p in held
                )
        async with sessionmaker() as session:
            accounts = list(
                await session.scalars(select(Account).where(Account.connection_id == connection_id))
            )
            stored = {}
            for account in accounts:
                positions = await session.scalars(
                    select(Position).where(Position.account_id == account.id)
                )
                stored[account.provider_account_id] = sorted(
                    (p.ticker, p.quantity) for p in positions
                )
    finally:
        await engine.dispose()
    assert len(expected) == 2
    assert stored == expected
