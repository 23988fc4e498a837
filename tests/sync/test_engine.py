"""The sync engine on the real schema: fresh, stale, broken, and nothing lost on failure.

The connector here is a scripted implementation of the neutral protocol, for failures the
sandboxes cannot produce on cue (a generator that dies midway, one account of several failing);
the same engine runs against the sandboxes in tests/integration.
"""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import pytest_asyncio

from brokerlink.db.session import create_sessionmaker
from brokerlink.domain import (
    AccountSummary,
    Instrument,
    InstrumentKind,
    Position,
    Provider,
)
from brokerlink.domain.errors import ProviderUnavailable, ReconnectRequired
from brokerlink.models import AccountSyncStatus, ConnectionStatus
from brokerlink.portfolio.service import PortfolioService
from brokerlink.repositories import (
    AccountRepository,
    ConnectionRepository,
    PortfolioRepository,
    PositionRepository,
    UserRepository,
)
from brokerlink.sync import SyncEngine

AS_OF = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def _position(account, ticker, qty):
    return Position(
        provider=Provider.SNAPTRADE,
        account_id=account,
        instrument=Instrument(symbol=ticker, kind=InstrumentKind.EQUITY),
        quantity=Decimal(qty),
        currency="USD",
        as_of=AS_OF,
    )


class ScriptedConnector:
    provider = Provider.SNAPTRADE

    def __init__(self, auth="auth-1"):
        self.accounts = {
            "a1": AccountSummary(
                provider=Provider.SNAPTRADE,
                account_id="a1",
                connection_id=auth,
                institution_name="Schwab",
                name="Individual",
                number_mask="1111",
            ),
            "a2": AccountSummary(
                provider=Provider.SNAPTRADE,
                account_id="a2",
                connection_id=auth,
                institution_name="Schwab",
                name="Roth IRA",
                number_mask="2222",
            ),
        }
        self.holdings = {"a1": [("AAPL", "10"), ("MSFT", "5")], "a2": [("VTI", "7")]}
        self.fail_accounts: BaseException | None = None
        self.fail_holdings: dict[str, BaseException] = {}
        self.calls = 0

    async def list_accounts(self, user_id):
        self.calls += 1
        if self.fail_accounts:
            raise self.fail_accounts
        return list(self.accounts.values())

    async def get_holdings(self, user_id, account_id):
        self.calls += 1
        if account_id in self.fail_holdings:
            raise self.fail_holdings[account_id]
        return [_position(account_id, t, q) for t, q in self.holdings[account_id]]


@pytest.fixture
def sessionmaker(engine):
    # Real sessions on their own connections: the engine runs them concurrently and commits.
    return create_sessionmaker(engine)


@pytest_asyncio.fixture
async def world(sessionmaker):
    auth = f"auth-{uuid.uuid4().hex[:8]}"
    async with sessionmaker() as session:
        user = await UserRepository.from_session(session).create(email=f"{auth}@example.com")
        await PortfolioRepository.from_session(session).get_or_create_default(user.id)
        connection = await ConnectionRepository.from_session(session).upsert(
            user_id=user.id,
            provider=Provider.SNAPTRADE,
            provider_connection_id=auth,
            institution_name="Charles Schwab",
            institution_slug="schwab",
        )
        await session.commit()
        return user.id, connection.id, auth


async def _state(sessionmaker, connection_id):
    async with sessionmaker() as session:
        accounts = await AccountRepository.from_session(session).list_for_connection(connection_id)
        positions = PositionRepository.from_session(session)
        held = {
            a.provider_account_id: {
                p.ticker: p.quantity for p in await positions.list_for_account(a.id)
            }
            for a in accounts
        }
        status = {a.provider_account_id: (a.sync_status, a.last_error) for a in accounts}
        connection = await ConnectionRepository.from_session(session).get(connection_id)
        return held, status, connection


@pytest.mark.asyncio
async def test_a_sync_writes_accounts_positions_and_freshness(sessionmaker, world):
    user_id, connection_id, auth = world
    connector = ScriptedConnector(auth)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=lambda: NOW)

    summary = await engine.sync_user(user_id)

    assert (summary.connections_ok, summary.connections_failed) == (1, 0)
    assert summary.positions_written == 3
    assert summary.provider_calls == 3  # one accounts call, one holdings call per account
    assert summary.calls_per_account == 1.5
    held, status, connection = await _state(sessionmaker, connection_id)
    assert held == {"a1": {"AAPL": 10, "MSFT": 5}, "a2": {"VTI": 7}}
    assert status["a1"] == (AccountSyncStatus.FRESH, None)
    assert connection.last_synced_at == NOW
    async with sessionmaker() as session:
        account = (
            await AccountRepository.from_session(session).list_for_connection(connection_id)
        )[0]
        assert account.data_as_of == AS_OF
        assert account.last_synced_at == NOW


@pytest.mark.asyncio
async def test_one_failing_account_keeps_its_positions_and_does_not_stop_the_other(
    sessionmaker, world
):
    user_id, connection_id, auth = world
    connector = ScriptedConnector(auth)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=lambda: NOW)
    await engine.sync_user(user_id)

    connector.holdings = {"a1": [("AAPL", "11")], "a2": [("VTI", "8")]}
    connector.fail_holdings["a1"] = ProviderUnavailable(
        "server error", provider=Provider.SNAPTRADE, operation="positions", status=503
    )
    summary = await engine.sync_user(user_id)

    assert summary.connections_failed == 1
    held, status, connection = await _state(sessionmaker, connection_id)
    assert held["a1"] == {"AAPL": 10, "MSFT": 5}  # last good positions kept
    assert held["a2"] == {"VTI": 8}  # the other account moved on
    assert status["a1"][0] is AccountSyncStatus.STALE
    assert "server error" in status["a1"][1]
    assert connection.status is ConnectionStatus.ACTIVE


@pytest.mark.asyncio
async def test_reconnect_required_marks_connection_and_accounts_broken(sessionmaker, world):
    user_id, connection_id, auth = world
    connector = ScriptedConnector(auth)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=lambda: NOW)
    await engine.sync_user(user_id)

    connector.fail_accounts = ReconnectRequired(
        "connection disabled", provider=Provider.SNAPTRADE, operation="accounts", code="3003"
    )
    summary = await engine.sync_user(user_id)

    assert summary.connections[0].broken
    held, status, connection = await _state(sessionmaker, connection_id)
    assert held["a1"] == {"AAPL": 10, "MSFT": 5}
    assert status["a2"][0] is AccountSyncStatus.BROKEN
    assert connection.status is ConnectionStatus.BROKEN
    assert "connection disabled" in connection.status_reason

    connector.fail_accounts = None
    await engine.sync_user(user_id)
    _, status, connection = await _state(sessionmaker, connection_id)
    assert connection.status is ConnectionStatus.ACTIVE
    assert status["a2"][0] is AccountSyncStatus.FRESH


@pytest.mark.asyncio
async def test_a_payload_failing_midway_fails_closed(sessionmaker, world):
    user_id, connection_id, auth = world
    connector = ScriptedConnector(auth)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=lambda: NOW)
    await engine.sync_user(user_id)

    # A position for another account inside a1's answer: the store refuses the whole batch.
    connector.holdings["a1"] = [("AAPL", "99")]
    original = connector.get_holdings

    async def mixed(user, account_id):
        rows = await original(user, account_id)
        if account_id == "a1":
            rows.append(_position("a2", "BAD", "1"))
        return rows

    connector.get_holdings = mixed
    await engine.sync_user(user_id)
    held, status, _ = await _state(sessionmaker, connection_id)
    assert held["a1"] == {"AAPL": 10, "MSFT": 5}
    assert status["a1"][0] is AccountSyncStatus.STALE
    assert "could not store" in status["a1"][1]


@pytest.mark.asyncio
async def test_an_account_no_longer_reported_is_kept_and_marked(sessionmaker, world):
    user_id, connection_id, auth = world
    connector = ScriptedConnector(auth)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=lambda: NOW)
    await engine.sync_user(user_id)
    del connector.accounts["a2"]
    await engine.sync_user(user_id)
    held, status, _ = await _state(sessionmaker, connection_id)
    assert held["a2"] == {"VTI": 7}
    assert status["a2"] == (AccountSyncStatus.STALE, "no longer reported by the provider")


@pytest.mark.asyncio
async def test_missing_connector_is_an_error_not_an_empty_success(sessionmaker, world):
    user_id, connection_id, _ = world
    engine = SyncEngine(sessionmaker, {}, clock=lambda: NOW)
    summary = await engine.sync_user(user_id)
    assert summary.connections_failed == 1
    assert "no snaptrade connector" in summary.connections[0].error


@pytest.mark.asyncio
async def test_sync_all_and_sync_connection(sessionmaker, world):
    user_id, connection_id, auth = world
    connector = ScriptedConnector(auth)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=lambda: NOW)
    await engine.sync_all()
    held, status, _ = await _state(sessionmaker, connection_id)
    assert held == {"a1": {"AAPL": 10, "MSFT": 5}, "a2": {"VTI": 7}}
    outcome = await engine.sync_connection(connection_id)
    assert outcome.ok
    assert [a.positions for a in outcome.accounts] == [2, 1]


async def _account_ids(sessionmaker, connection_id):
    async with sessionmaker() as session:
        rows = await AccountRepository.from_session(session).list_for_connection(connection_id)
        return {a.provider_account_id: a.id for a in rows}


@pytest.mark.asyncio
async def test_an_account_relinked_under_a_new_id_keeps_its_identity(sessionmaker, world):
    user_id, connection_id, auth = world
    connector = ScriptedConnector(auth)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=lambda: NOW)
    await engine.sync_user(user_id)
    before = await _account_ids(sessionmaker, connection_id)
    async with sessionmaker() as session:
        manual = await PortfolioService(session).add_manual(
            user_id, ticker="GOOG", quantity=Decimal("2"), account_id=before["a1"]
        )
        await session.commit()

    # The provider now reports a1 under a new id (same mask, type and holdings).
    connector.accounts["a1-new"] = connector.accounts.pop("a1").model_copy(
        update={"account_id": "a1-new"}
    )
    connector.holdings["a1-new"] = connector.holdings.pop("a1")
    await engine.sync_user(user_id)

    after = await _account_ids(sessionmaker, connection_id)
    assert after == {"a1-new": before["a1"], "a2": before["a2"]}
    held, status, _ = await _state(sessionmaker, connection_id)
    assert status["a1-new"] == (AccountSyncStatus.FRESH, None)
    async with sessionmaker() as session:
        kept = await PositionRepository.from_session(session).get(manual.id)
        assert kept.account_id == before["a1"]  # the manual edit stayed with the account


@pytest.mark.asyncio
async def test_a_reconnect_moves_accounts_from_the_broken_connection(sessionmaker, world):
    user_id, connection_id, auth = world
    connector = ScriptedConnector(auth)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=lambda: NOW)
    await engine.sync_user(user_id)
    before = await _account_ids(sessionmaker, connection_id)

    new_auth = f"{auth}-re"
    async with sessionmaker() as session:
        repo = ConnectionRepository.from_session(session)
        old = await repo.get(connection_id)
        await repo.set_status(old, ConnectionStatus.BROKEN, "login required")
        fresh = await repo.upsert(
            user_id=user_id,
            provider=Provider.SNAPTRADE,
            provider_connection_id=new_auth,
            institution_name="Charles Schwab",
            institution_slug="schwab",
        )
        await session.commit()
        new_connection_id = fresh.id
    for key in list(connector.accounts):
        connector.accounts[key] = connector.accounts[key].model_copy(
            update={"connection_id": new_auth}
        )
    await engine.sync_user(user_id)

    assert await _account_ids(sessionmaker, new_connection_id) == before
    assert await _account_ids(sessionmaker, connection_id) == {}


@pytest.mark.asyncio
async def test_different_holdings_are_a_different_account(sessionmaker, world):
    user_id, connection_id, auth = world
    connector = ScriptedConnector(auth)
    engine = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=lambda: NOW)
    await engine.sync_user(user_id)
    before = await _account_ids(sessionmaker, connection_id)

    connector.accounts["a3"] = connector.accounts.pop("a1").model_copy(update={"account_id": "a3"})
    connector.holdings["a3"] = [("TSLA", "1"), ("NFLX", "2")]
    del connector.holdings["a1"]
    await engine.sync_user(user_id)

    after = await _account_ids(sessionmaker, connection_id)
    assert after["a1"] == before["a1"]
    assert after["a3"] not in before.values()
    _, status, _ = await _state(sessionmaker, connection_id)
    assert status["a1"] == (AccountSyncStatus.STALE, "no longer reported by the provider")
