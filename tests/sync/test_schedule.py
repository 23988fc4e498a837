"""The schedule on the real schema (SQLite and PostgreSQL): claims, backoff for failing
connections, broken ones waiting for their user, two claimers at once, deduplicated jobs."""

import asyncio
import uuid
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy import select, update
from sqlalchemy.pool import NullPool

from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.domain import Provider
from brokerlink.domain.errors import ProviderUnavailable, ReconnectRequired
from brokerlink.models import Connection, ConnectionStatus
from brokerlink.repositories import ConnectionRepository, PortfolioRepository, UserRepository
from brokerlink.sync import (
    ConnectionOutcome,
    Job,
    JobKind,
    JobRunner,
    Scheduler,
    SyncEngine,
    SyncSchedule,
    claim_due,
)
from brokerlink.sync.tasks import BackgroundSyncs
from tests.sync.test_engine import NOW, ScriptedConnector, sessionmaker, world  # noqa: F401

DAY = timedelta(hours=24)
SCHEDULE = SyncSchedule({Provider.SNAPTRADE: DAY, Provider.PLAID: timedelta(hours=1)})


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.mark.parametrize(
    ("provider", "outcome", "failures", "expected"),
    [
        (Provider.SNAPTRADE, "ok", 3, (NOW + DAY, 0)),
        (Provider.SNAPTRADE, "failed", 0, (NOW + timedelta(hours=1), 1)),
        (Provider.SNAPTRADE, "failed", 1, (NOW + timedelta(hours=2), 2)),
        (Provider.SNAPTRADE, "failed", 3, (NOW + timedelta(hours=8), 4)),
        (Provider.SNAPTRADE, "failed", 9, (NOW + DAY, 10)),  # capped at the interval
        (Provider.PLAID, "failed", 0, (NOW + timedelta(minutes=2.5), 1)),
        (Provider.SNAPTRADE, "broken", 0, (None, 1)),  # waits for the user
    ],
)
def test_the_next_time_follows_the_outcome(provider, outcome, failures, expected):
    settled = ConnectionOutcome(1, provider, ok=outcome == "ok", broken=outcome == "broken")
    assert SCHEDULE.after(settled, failures, NOW) == expected


@pytest_asyncio.fixture
async def store(db_backend, new_database):
    """A database of its own: claims see every connection in the store."""
    url = new_database(db_backend)
    await migrate.upgrade_async(url)
    engine = create_engine(url, poolclass=NullPool)
    yield url, create_sessionmaker(engine)
    await engine.dispose()


async def _connections(maker, count, **values):
    async with maker() as session:
        user = await UserRepository.from_session(session).create(
            email=f"{uuid.uuid4().hex[:8]}@example.com"
        )
        await PortfolioRepository.from_session(session).get_or_create_default(user.id)
        repo = ConnectionRepository.from_session(session)
        ids = []
        for n in range(count):
            c = await repo.upsert(
                user_id=user.id,
                provider=Provider.SNAPTRADE,
                provider_connection_id=f"auth-{uuid.uuid4().hex[:8]}-{n}",
                institution_name="Charles Schwab",
                institution_slug="schwab",
            )
            ids.append(c.id)
        if values:
            await session.execute(update(Connection).where(Connection.id.in_(ids)).values(**values))
        await session.commit()
        return user.id, ids


async def _rows(maker, ids):
    async with maker() as session:
        found = await session.scalars(select(Connection).where(Connection.id.in_(ids)))
        return {c.id: c for c in found}


@pytest.mark.asyncio
async def test_a_claim_takes_what_is_due_and_advances_it(store):
    _, maker = store
    _, never = await _connections(maker, 1)
    _, past = await _connections(maker, 1, next_sync_at=NOW - timedelta(minutes=1))
    _, future = await _connections(maker, 1, next_sync_at=NOW + timedelta(minutes=1))
    _, broken = await _connections(maker, 1, status=ConnectionStatus.BROKEN)
    _, queued = await _connections(maker, 1, sync_queued_at=NOW - timedelta(minutes=5))
    _, lost = await _connections(maker, 1, sync_queued_at=NOW - timedelta(hours=3))
    async with maker() as session:
        manual = (await ConnectionRepository.from_session(session).get_or_create_manual(1)).id
        await session.commit()

    claims = await claim_due(maker, SCHEDULE, now=NOW)

    assert sorted(c.connection_id for c in claims) == sorted(never + past + lost)
    assert manual not in {c.connection_id for c in claims}
    rows = await _rows(maker, never + past + lost)
    assert all(r.next_sync_at == NOW + DAY and r.sync_queued_at == NOW for r in rows.values())
    assert await claim_due(maker, SCHEDULE, now=NOW) == []  # taken: not twice
    assert future
    assert broken
    assert queued


@pytest.mark.asyncio
async def test_two_claimers_at_once_never_take_the_same_connection(store):
    url, _ = store
    engines = [create_engine(url, poolclass=NullPool) for _ in range(2)]
    makers = [create_sessionmaker(e) for e in engines]
    try:
        _, ids = await _connections(makers[0], 60)

        async def claimer(maker):
            taken = []
            while claims := await claim_due(maker, SCHEDULE, now=NOW, limit=4):
                taken += [c.connection_id for c in claims]
                await asyncio.sleep(0)
            return taken

        results = await asyncio.gather(*(claimer(makers[i % 2]) for i in range(6)))
    finally:
        for e in engines:
            await e.dispose()
    everything = [cid for taken in results for cid in taken]
    assert sorted(everything) == sorted(ids)  # each exactly once
    assert sum(1 for taken in results if taken) >= 2  # the claims really interleaved


async def _runner(maker, connector, clock):
    engine = SyncEngine(maker, {Provider.SNAPTRADE: connector}, clock=clock)
    return JobRunner(engine, SCHEDULE, clock=clock)


@pytest.mark.asyncio
async def test_a_failing_connection_backs_off_and_a_success_resets_it(sessionmaker, world):  # noqa: F811
    _, connection_id, auth = world
    connector = ScriptedConnector(auth)
    connector.fail_accounts = ProviderUnavailable(
        "down for maintenance", provider=Provider.SNAPTRADE, operation="accounts", status=503
    )
    clock = Clock(NOW)
    runner = await _runner(sessionmaker, connector, clock)
    waits = []
    for _ in range(3):
        await runner.run(Job(JobKind.SYNC_CONNECTION, connection_id, clock.now))
        row = (await _rows(sessionmaker, [connection_id]))[connection_id]
        waits.append((row.next_sync_at - clock.now, row.sync_failures))
        clock.now = row.next_sync_at
    assert waits == [
        (timedelta(hours=1), 1),
        (timedelta(hours=2), 2),
        (timedelta(hours=4), 3),
    ]
    connector.fail_accounts = None
    await runner.run(Job(JobKind.SYNC_CONNECTION, connection_id, clock.now))
    row = (await _rows(sessionmaker, [connection_id]))[connection_id]
    assert (row.next_sync_at, row.sync_failures) == (clock.now + DAY, 0)


@pytest.mark.asyncio
async def test_a_broken_connection_waits_for_its_user(store):
    _, maker = store
    user_id, (connection_id,) = await _connections(maker, 1)
    auth = (await _rows(maker, [connection_id]))[connection_id].provider_connection_id
    connector = ScriptedConnector(auth)
    connector.fail_accounts = ReconnectRequired(
        "the login expired", provider=Provider.SNAPTRADE, operation="accounts", code="3003"
    )
    clock = Clock(NOW)
    runner = await _runner(maker, connector, clock)
    scheduler = Scheduler(maker, SCHEDULE, runner.run_claims, clock=clock)

    assert await scheduler.run_once() == 1
    row = (await _rows(maker, [connection_id]))[connection_id]
    assert row.status is ConnectionStatus.BROKEN
    assert row.next_sync_at is None
    assert row.sync_queued_at is None
    calls = connector.calls
    for days in (1, 7, 30):  # not every tick, not every interval: never, until the user acts
        clock.now = NOW + days * DAY
        assert await scheduler.run_once() == 0
    assert connector.calls == calls

    connector.fail_accounts = None  # the user syncs (or reconnects): repaired, scheduled again
    summary = await runner.run(Job(JobKind.SYNC_USER, user_id, clock.now))
    assert summary.summary.connections_ok == 1
    row = (await _rows(maker, [connection_id]))[connection_id]
    assert row.status is ConnectionStatus.ACTIVE
    assert row.next_sync_at == clock.now + DAY


@pytest.mark.asyncio
async def test_the_in_app_scheduler_syncs_only_what_is_due(store):
    _, maker = store
    _, (connection_id,) = await _connections(maker, 1)
    auth = (await _rows(maker, [connection_id]))[connection_id].provider_connection_id
    connector = ScriptedConnector(auth)
    clock = Clock(NOW)
    runner = await _runner(maker, connector, clock)
    sleeps = []

    async def sleep(seconds):
        sleeps.append(seconds)

    scheduler = Scheduler(maker, SCHEDULE, runner.run_claims, clock=clock, sleep=sleep)
    await scheduler.run(tick_seconds=60, runs=1)  # never synced: due
    after_first = connector.calls
    assert after_first == 3  # the accounts, then each account's holdings
    await scheduler.run(tick_seconds=60, runs=2)  # nothing due: no provider call
    assert connector.calls == after_first
    assert sleeps == [60]
    clock.now = NOW + DAY
    await scheduler.run(tick_seconds=60, runs=1)
    assert connector.calls == 2 * after_first


@pytest.mark.asyncio
async def test_a_sync_asked_for_while_one_is_queued_adds_nothing(sessionmaker, world):  # noqa: F811
    user_id, connection_id, auth = world
    connector = ScriptedConnector(auth)
    clock = Clock(NOW)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=clock)
    jobs = BackgroundSyncs(engine, SCHEDULE)
    jobs.clock = jobs.runner.clock = clock
    try:
        assert await jobs.sync_connection(connection_id) is True
        assert await jobs.syncing_user(user_id) is True
        assert await jobs.sync_connection(connection_id) is False
        assert await jobs.sync_user(user_id) is False  # its only connection is queued
        await jobs.drain()
        assert connector.calls == 3
        assert await jobs.syncing_user(user_id) is False

        # A redelivered job whose first run finished does nothing.
        result = await jobs.runner.run(Job(JobKind.SYNC_CONNECTION, connection_id, NOW))
        assert result.done_already
        assert connector.calls == 3

        clock.now = NOW + timedelta(seconds=1)
        assert await jobs.sync_user(user_id) is True  # settled: a new request runs
        await jobs.drain()
        assert connector.calls == 6
    finally:
        await jobs.close()


@pytest.mark.asyncio
async def test_analysis_syncs_first_only_when_data_is_older_than_the_setting(
    sessionmaker,  # noqa: F811
    world,  # noqa: F811
):
    user_id, _, auth = world
    connector = ScriptedConnector(auth)
    clock = Clock(NOW)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=clock)
    assert await engine.sync_user_if_stale(user_id, DAY) is not None  # never synced
    assert await engine.sync_user_if_stale(user_id, DAY) is None  # fresh enough
    clock.now = NOW + DAY + timedelta(minutes=1)
    summary = await engine.sync_user_if_stale(user_id, DAY)
    assert summary is not None
    assert summary.connections_ok == 1


class HeldConnector(ScriptedConnector):
    """Reads the holdings as they are when asked, then waits for `release` before answering."""

    def __init__(self, auth):
        super().__init__(auth)
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def get_holdings(self, user_id, account_id):
        answer = await super().get_holdings(user_id, account_id)
        self.reading.set()
        await self.release.wait()
        return answer


@pytest.mark.asyncio
async def test_a_webhook_that_arrives_mid_sync_gets_a_sync_of_its_own(sessionmaker, world):  # noqa: F811
    """A holdings webhook while a sync is reading: that sync read what was there before, so the
    webhook's job must sync again, not count the sync that settles after it."""
    _, connection_id, auth = world
    connector = HeldConnector(auth)
    clock = Clock(NOW)
    runner = JobRunner(
        SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=clock),
        SCHEDULE,
        clock=clock,
    )
    first = asyncio.create_task(
        runner.run(Job(JobKind.SYNC_CONNECTION, connection_id, NOW - timedelta(minutes=1)))
    )
    await connector.reading.wait()
    # The provider's data moves and its webhook arrives while the first sync still reads.
    clock.now = NOW + timedelta(seconds=30)
    connector.holdings["a1"] = [("AAPL", "11"), ("MSFT", "5")]
    webhook_job = Job(JobKind.WEBHOOK_FOLLOWUP, connection_id, clock.now)
    clock.now = NOW + timedelta(seconds=40)
    connector.release.set()
    await first
    calls = connector.calls

    result = await runner.run(webhook_job)

    assert not result.done_already
    assert connector.calls > calls
    async with sessionmaker() as session:
        stored = await session.get(Connection, connection_id)
        assert stored is not None
        assert stored.sync_attempted_at == NOW + timedelta(seconds=40)  # when the second began
