"""The store's own guarantees behind the refresh guard, on SQLite and PostgreSQL, with real
concurrent transactions (separate connections, not one rolled-back outer transaction).

    the partial unique index   a second `sending` row for a connection is refused by the database
    the connection row lock    a decision waits for another's intent and then sees it
    the sync lease             of many takers at once, exactly one gets it; it expires
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from brokerlink.db.session import create_sessionmaker, transaction
from brokerlink.domain.enums import Provider
from brokerlink.models import RefreshStatus, RefreshTrigger
from brokerlink.policies.cost_guard import CostGuard, CostPolicy, RefreshRefused
from brokerlink.repositories import ConnectionRepository, RefreshLogRepository
from tests.db.factories import make_graph

pytestmark = pytest.mark.asyncio


async def _connection(engine: AsyncEngine) -> int:
    tag = uuid.uuid4().hex[:10]
    async with transaction(create_sessionmaker(engine)) as session:
        graph = await make_graph(
            session,
            provider=Provider.PLAID,
            email=f"{tag}@example.com",
            provider_connection_id=f"item-{tag}",
            provider_account_id=f"acct-{tag}",
        )
        return graph.connection.id


async def test_the_database_refuses_a_second_refresh_in_flight(engine):
    cid = await _connection(engine)
    maker = create_sessionmaker(engine)
    async with transaction(maker) as session:
        connection = await ConnectionRepository.from_session(session).get(cid)
        assert connection is not None
        log = RefreshLogRepository.from_session(session)
        await log.record(connection, trigger=RefreshTrigger.MANUAL, status=RefreshStatus.SENDING)
        await log.record(connection, trigger=RefreshTrigger.MANUAL, status=RefreshStatus.ACCEPTED)

    async def second_in_flight() -> None:
        async with transaction(maker) as session:
            connection = await ConnectionRepository.from_session(session).get(cid)
            assert connection is not None
            await RefreshLogRepository.from_session(session).record(
                connection, trigger=RefreshTrigger.MANUAL, status=RefreshStatus.SENDING
            )

    with pytest.raises(IntegrityError):
        await second_in_flight()


async def test_a_decision_waits_for_the_row_lock_and_sees_the_other_intent(engine):
    cid = await _connection(engine)
    maker = create_sessionmaker(engine)
    locked, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with transaction(maker) as session:
            connection = await ConnectionRepository.from_session(session).lock(cid)
            assert connection is not None
            locked.set()
            await release.wait()
            # An accepted refresh (not `sending`, so the in-flight index plays no part): only
            # the row lock can make the second decision see it.
            await RefreshLogRepository.from_session(session).record(
                connection, trigger=RefreshTrigger.MANUAL, status=RefreshStatus.ACCEPTED
            )

    async def second() -> None:
        async with transaction(maker) as session:
            connection = await ConnectionRepository.from_session(session).lock(cid)
            assert connection is not None
            await CostGuard(session, CostPolicy()).authorize_refresh(connection)

    holder = asyncio.create_task(first())
    await locked.wait()
    waiter = asyncio.create_task(second())
    await asyncio.sleep(0.3)
    assert not waiter.done()  # blocked on the lock while the first decision is open
    release.set()
    await holder
    with pytest.raises(RefreshRefused) as refused:
        await waiter
    assert "24 h" in refused.value.reason


async def test_one_sync_lease_among_many_takers_and_it_expires(engine):
    cid = await _connection(engine)
    maker = create_sessionmaker(engine)
    now = datetime.now(UTC)

    async def take(lease: str) -> bool:
        async with transaction(maker) as session:
            return await ConnectionRepository.from_session(session).take_sync_lease(
                cid, lease, now=now, until=now + timedelta(minutes=15)
            )

    taken = await asyncio.gather(*(take(f"lease-{i}") for i in range(10)))
    assert taken.count(True) == 1
    async with transaction(maker) as session:
        assert not await ConnectionRepository.from_session(session).take_sync_lease(
            cid, "late", now=now + timedelta(minutes=5), until=now + timedelta(minutes=20)
        )
        # A holder that died: its lease runs out and the next taker gets it.
        assert await ConnectionRepository.from_session(session).take_sync_lease(
            cid, "after", now=now + timedelta(minutes=16), until=now + timedelta(minutes=31)
        )
