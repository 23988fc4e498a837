"""Webhooks first, on the real schema (SQLite and PostgreSQL): a provider that sends webhooks is
synced once per catch-all and on its holdings webhooks; an account whose webhooks stop is
synced anyway (the operator dashboard's query decides); with webhooks off nothing changes."""

import uuid
from datetime import timedelta

import pytest
import pytest_asyncio
import structlog
from sqlalchemy import select, update
from sqlalchemy.pool import NullPool

from brokerlink.config import Settings
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.domain import Provider
from brokerlink.models import Account, Connection, ConnectionStatus
from brokerlink.operator.service import OperatorService
from brokerlink.repositories import (
    ConnectionRepository,
    PortfolioRepository,
    UserRepository,
    WebhookEventRepository,
)
from brokerlink.repositories.webhook_events import silent_connection_ids
from brokerlink.sync import ConnectionOutcome, JobRunner, Scheduler, SyncEngine, SyncSchedule
from brokerlink.sync.schedule import claim_due, due_now
from tests.sync.test_engine import NOW, ScriptedConnector
from tests.sync.test_schedule import Clock, _connections, _rows

H = timedelta(hours=1)
M = timedelta(minutes=1)
POLL = H  # the polling interval (hourly): what webhooks replace
CATCHALL = 24 * H
SILENT = 12 * H


def _schedule(*webhooks: Provider) -> SyncSchedule:
    return SyncSchedule(
        {Provider.SNAPTRADE: POLL, Provider.PLAID: POLL},
        webhooks=frozenset(webhooks),
        catchall=CATCHALL,
        missing_webhook_after=SILENT,
    )


WEBHOOKS_ON = _schedule(Provider.SNAPTRADE, Provider.PLAID)
WEBHOOKS_OFF = _schedule()


@pytest_asyncio.fixture
async def store(db_backend, new_database):
    """A database of its own: claims and the dashboard see every connection in the store."""
    url = new_database(db_backend)
    await migrate.upgrade_async(url)
    engine = create_engine(url, poolclass=NullPool)
    yield url, create_sessionmaker(engine)
    await engine.dispose()


class Synced:
    """One SnapTrade connection (accounts a1, a2) synced at NOW by the scheduler."""

    def __init__(self, maker, schedule, connection_id, auth):
        self.maker = maker
        self.clock = Clock(NOW)
        self.connector = ScriptedConnector(auth)
        engine = SyncEngine(maker, {Provider.SNAPTRADE: self.connector}, clock=self.clock)
        runner = JobRunner(engine, schedule, clock=self.clock)
        self.scheduler = Scheduler(maker, schedule, runner.run_claims, clock=self.clock)
        self.connection_id = connection_id

    @classmethod
    async def start(cls, maker, schedule):
        _, (connection_id,) = await _connections(maker, 1)
        auth = (await _rows(maker, [connection_id]))[connection_id].provider_connection_id
        synced = cls(maker, schedule, connection_id, auth)
        assert await synced.scheduler.run_once() == 1
        return synced

    async def tick(self, at):
        self.clock.now = at
        return await self.scheduler.run_once()

    async def row(self):
        return (await _rows(self.maker, [self.connection_id]))[self.connection_id]

    async def account_ids(self):
        async with self.maker() as session:
            found = await session.execute(
                select(Account.provider_account_id, Account.id).where(
                    Account.connection_id == self.connection_id
                )
            )
            return dict(found.all())

    async def holdings_webhook(self, at, *, account):
        """ACCOUNT_HOLDINGS_UPDATED for one account, recorded as the receiving route does."""
        ids = await self.account_ids()
        async with self.maker() as session:
            assert await WebhookEventRepository.from_session(session).record(
                provider=Provider.SNAPTRADE,
                event_id=str(uuid.uuid4()),
                event_type="ACCOUNT_HOLDINGS_UPDATED",
                event_at=at,
                received_at=at,
                connection_id=self.connection_id,
                account_id=ids[account],
            )
            await session.commit()


async def _missing_on_the_dashboard(maker, now, schedule=WEBHOOKS_ON):
    async with maker() as session:
        service = OperatorService(
            session,
            clock=lambda: now,
            missing_after=schedule.missing_webhook_after,
            webhook_providers=schedule.webhooks or None,  # as the routes pass it
        )
        missing = await service.missing_webhooks(now)
        connections = set(await session.scalars(silent_connection_ids(now - SILENT)))
    return {(m.connection_id, m.account_id) for m in missing.accounts}, connections


@pytest.mark.parametrize(
    ("schedule", "waits"),
    [(WEBHOOKS_ON, CATCHALL), (WEBHOOKS_OFF, POLL)],
    ids=["webhooks-on", "webhooks-off"],
)
@pytest.mark.parametrize("outcome", ["ok", "failed"])
def test_the_next_time_is_the_catchall_only_for_a_provider_that_sends_webhooks(
    schedule, waits, outcome
):
    settled = ConnectionOutcome(1, Provider.SNAPTRADE, ok=outcome == "ok")
    expected = NOW + (waits if outcome == "ok" else waits / 24)
    assert schedule.after(settled, 0, NOW)[0] == expected


def test_the_settings_say_which_providers_send_webhooks():
    default = SyncSchedule.from_settings(Settings())
    assert default.webhooks == frozenset()
    assert default.interval(Provider.SNAPTRADE) == 24 * H  # the polling interval, as today
    hourly = Settings(sync_interval_hours_snaptrade=1, sync_interval_hours_plaid=1)
    assert SyncSchedule.from_settings(hourly).interval(Provider.PLAID) == H

    pushed = SyncSchedule.from_settings(
        Settings(
            sync_interval_hours_snaptrade=1,
            sync_interval_hours_plaid=1,
            webhooks_snaptrade=True,
            catchall_hours=30,
            missing_webhook_hours=6,
        )
    )
    assert pushed.webhooks == frozenset({Provider.SNAPTRADE})
    assert pushed.interval(Provider.SNAPTRADE) == 30 * H
    assert pushed.interval(Provider.PLAID) == H  # Plaid still polls
    # Hours past the daily webhook: silent 24 h + 6 h.
    assert pushed.missing_webhook_after == 30 * H
    # By default an account is missing its webhook 12 h after its daily one was due, not after
    # 12 h: SnapTrade and Plaid announce holdings about once a day.
    assert SyncSchedule.from_settings(Settings()).missing_webhook_after == 36 * H
    assert SyncSchedule().missing_webhook_after == 36 * H


@pytest.mark.asyncio
class TestWebhooksOn:
    async def test_a_connection_synced_now_is_next_due_after_the_catchall(self, store):
        _, maker = store
        synced = await Synced.start(maker, WEBHOOKS_ON)
        assert (await synced.row()).next_sync_at == NOW + CATCHALL
        calls = synced.connector.calls
        for hours in (1, 2, 6, 11):  # every polling interval passes: nothing is polled
            assert await synced.tick(NOW + hours * H + M) == 0
        assert synced.connector.calls == calls

    async def test_a_holdings_webhook_makes_it_due_now(self, store):
        _, maker = store
        synced = await Synced.start(maker, WEBHOOKS_ON)
        calls = synced.connector.calls
        at = NOW + 3 * H
        await synced.holdings_webhook(at, account="a1")
        assert await due_now(maker, [synced.connection_id], now=at) == [synced.connection_id]
        assert await due_now(maker, [synced.connection_id], now=at) == []  # due already
        assert (await synced.row()).next_sync_at == at

        assert await synced.tick(at) == 1
        assert synced.connector.calls == 2 * calls
        assert (await synced.row()).next_sync_at == at + CATCHALL  # settled: the catch-all
        assert await due_now(maker, [synced.connection_id], now=at + H) == [synced.connection_id]
        assert (await synced.row()).next_sync_at == at + H  # moved back, never forward

    async def test_a_connection_waiting_for_its_user_is_not_made_due(self, store):
        _, maker = store
        _, (broken,) = await _connections(maker, 1, status=ConnectionStatus.BROKEN)
        assert await due_now(maker, [broken], now=NOW) == []
        assert (await _rows(maker, [broken]))[broken].next_sync_at is None
        assert await claim_due(maker, WEBHOOKS_ON, now=NOW) == []

    async def test_an_account_silent_for_12_hours_is_synced_anyway_and_logged(self, store):
        _, maker = store
        synced = await Synced.start(maker, WEBHOOKS_ON)
        ids = await synced.account_ids()
        await synced.holdings_webhook(NOW + H, account="a1")  # a2 never gets one
        calls = synced.connector.calls

        assert await synced.tick(NOW + SILENT - M) == 0
        assert await _missing_on_the_dashboard(maker, NOW + SILENT - M) == (set(), set())

        at = NOW + SILENT + M  # a2: no webhook, last synced 12 h 1 min ago
        assert await _missing_on_the_dashboard(maker, at) == (
            {(synced.connection_id, ids["a2"])},
            {synced.connection_id},
        )
        with structlog.testing.capture_logs() as logs:
            assert await synced.tick(at) == 1
        assert synced.connector.calls == 2 * calls
        missing = [e for e in logs if e["event"] == "sync.webhook.missing"]
        assert [(e["connection_id"], e["provider"]) for e in missing] == [
            (synced.connection_id, "snaptrade")
        ]
        assert await _missing_on_the_dashboard(maker, at) == (set(), set())  # a2 just synced

        # a1's webhook (1 h after the sync) is 12 h old at 13 h 1 min: the dashboard shows it,
        # but the connection was synced less than 12 h ago, so it is not synced again yet.
        later = NOW + 13 * H + 2 * M
        assert await _missing_on_the_dashboard(maker, later) == (
            {(synced.connection_id, ids["a1"])},
            {synced.connection_id},
        )
        assert await synced.tick(later) == 0
        # Twelve hours after the last sync the silence counts again (before the catch-all).
        assert await synced.tick(at + SILENT + M) == 1
        assert synced.connector.calls == 3 * calls

    async def test_an_item_webhook_covers_every_account_of_the_item(self, store):
        _, maker = store
        heard = await _plaid_item(maker, webhook_at=NOW - H)
        quiet = await _plaid_item(maker, webhook_at=None)
        old = await _plaid_item(maker, webhook_at=NOW - 13 * H)

        claims = await claim_due(maker, WEBHOOKS_ON, now=NOW)

        assert sorted((c.connection_id, c.reason) for c in claims) == sorted(
            [(quiet, "missing_webhook"), (old, "missing_webhook")]
        )
        assert heard not in {c.connection_id for c in claims}


async def _plaid_item(maker, *, webhook_at):
    """A Plaid item with two accounts, synced 13 h ago and next due in 11 h; with one holdings
    webhook naming the item (Plaid's HOLDINGS DEFAULT_UPDATE) at `webhook_at`."""
    async with maker() as session:
        user = await UserRepository.from_session(session).create(
            email=f"{uuid.uuid4().hex[:8]}@example.com"
        )
        await PortfolioRepository.from_session(session).get_or_create_default(user.id)
        item = await ConnectionRepository.from_session(session).upsert(
            user_id=user.id,
            provider=Provider.PLAID,
            provider_connection_id=f"item-{uuid.uuid4().hex[:8]}",
            institution_name="Chase",
        )
        for n in range(2):
            session.add(
                Account(
                    connection_id=item.id,
                    provider_account_id=f"acc-{n}",
                    last_synced_at=NOW - 13 * H,
                )
            )
        await session.execute(
            update(Connection)
            .where(Connection.id == item.id)
            .values(next_sync_at=NOW + 11 * H, sync_attempted_at=NOW - 13 * H)
        )
        if webhook_at is not None:
            await WebhookEventRepository.from_session(session).record(
                provider=Provider.PLAID,
                event_id=str(uuid.uuid4()),
                event_type="HOLDINGS:DEFAULT_UPDATE",
                event_at=webhook_at,
                received_at=webhook_at,
                connection_id=item.id,
            )
        await session.commit()
        return item.id


@pytest.mark.asyncio
class TestWebhooksOff:
    async def test_polling_goes_on_and_silence_claims_nothing(self, store):
        _, maker = store
        synced = await Synced.start(maker, WEBHOOKS_OFF)
        assert (await synced.row()).next_sync_at == NOW + POLL
        calls = synced.connector.calls
        assert await synced.tick(NOW + POLL - M) == 0
        assert await synced.tick(NOW + POLL) == 1  # polled every interval, as today
        assert synced.connector.calls == 2 * calls

    async def test_a_silent_account_is_not_claimed(self, store):
        _, maker = store
        quiet = await _plaid_item(maker, webhook_at=None)
        with structlog.testing.capture_logs() as logs:
            assert await claim_due(maker, WEBHOOKS_OFF, now=NOW) == []
        assert not [e for e in logs if e["event"] == "sync.webhook.missing"]
        # The dashboard still lists it (every webhook-capable provider when none is set).
        listed, _ = await _missing_on_the_dashboard(maker, NOW, WEBHOOKS_OFF)
        assert {c for c, _ in listed} == {quiet}
