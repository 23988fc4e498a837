"""The schedule: what is due, the scheduler's runs, and syncing before an analysis."""

from datetime import timedelta

import pytest

from brokerlink.domain import Provider
from brokerlink.sync import Scheduler, SyncEngine, SyncSchedule, due
from tests.sync.test_engine import NOW, ScriptedConnector, sessionmaker, world  # noqa: F401

DAY = timedelta(hours=24)


@pytest.mark.parametrize(
    ("provider", "last", "expected"),
    [
        (Provider.SNAPTRADE, None, True),
        (Provider.SNAPTRADE, NOW - timedelta(hours=23), False),
        (Provider.SNAPTRADE, NOW - DAY, True),
        (Provider.PLAID, NOW - timedelta(hours=2), True),  # plaid every hour here
        (Provider.MANUAL, None, False),
    ],
)
def test_due(provider, last, expected):
    schedule = SyncSchedule({Provider.SNAPTRADE: DAY, Provider.PLAID: timedelta(hours=1)})
    assert due(schedule, provider, last, NOW) is expected


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.mark.asyncio
async def test_the_scheduler_syncs_only_what_is_due(sessionmaker, world):  # noqa: F811
    user_id, _, auth = world
    connector = ScriptedConnector(auth)
    clock = Clock(NOW)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=clock)
    scheduler = Scheduler(engine, sessionmaker, SyncSchedule(), clock=clock)

    assert user_id in await scheduler.due_users()  # never synced
    await engine.sync_user(user_id)
    assert user_id not in await scheduler.due_users()
    clock.now = NOW + DAY
    assert user_id in await scheduler.due_users()

    sleeps = []

    async def sleep(seconds):
        sleeps.append(seconds)

    scheduler.sleep = sleep
    await scheduler.run(tick_seconds=60, runs=1)  # the user was due: synced
    assert user_id not in await scheduler.due_users()
    after_first = connector.calls
    await scheduler.run(tick_seconds=60, runs=2)  # nothing due: no provider call
    assert connector.calls == after_first
    assert sleeps == [60]


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
