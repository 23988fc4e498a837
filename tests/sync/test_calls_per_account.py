"""Provider calls per account in a sync, counted where the provider sees them: the sandboxes'
request logs (SnapTrade `/sandbox/requests`, Plaid `/sandbox-admin/requests`).

SnapTrade: one `GET /accounts` per user (the authorizations only give capabilities, which a
sync never reads), then positions/all and balances per account: 1 + 2N. Plaid: `/accounts/get`
and `/item/get` per Item, then one holdings or accounts read per account: 2 + N per Item.
"""

import re
from decimal import Decimal

import httpx
import pytest
from structlog.testing import capture_logs

from brokerlink.domain import OrderRequest, OrderSide, Provider
from brokerlink.models import AccountSyncStatus
from brokerlink.providers.snaptrade import SnapTradeConnector
from brokerlink.repositories import AccountRepository, ConnectionRepository, PositionRepository
from brokerlink.sandbox._faults import FaultConfig
from brokerlink.sync import SyncEngine

pytestmark = pytest.mark.asyncio

# Provider ids in paths (uuids, Plaid ids): `GET /accounts/{id}/balances`.
_ID = re.compile(r"/(?=[^/]*\d)[A-Za-z0-9_-]{16,}")

SNAPTRADE_LOG, PLAID_LOG = "/sandbox/requests", "/sandbox-admin/requests"


async def _admin(app, method: str, path: str) -> dict:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
    ) as admin:
        answer = await admin.request(method, path)
        answer.raise_for_status()
        return answer.json() if method == "GET" else {}


async def _counted_sync(app, log: str, engine: SyncEngine, user: int):
    """Sync `user` and return (summary, requests per operation shape) seen by the sandbox."""
    await _admin(app, "DELETE", log)
    summary = await engine.sync_user(user)
    counts: dict[str, int] = {}
    for key, n in (await _admin(app, "GET", log))["counts"].items():
        shape = _ID.sub("/{id}", key)
        counts[shape] = counts.get(shape, 0) + n
    return summary, counts


@pytest.mark.parametrize(
    ("institutions", "accounts"),
    [
        (("alpaca",), 1),
        (("schwab", "alpaca"), 3),
        (("schwab", "fidelity", "etrade", "vanguard", "interactive-brokers"), 10),
    ],
)
async def test_snaptrade_sync_makes_one_listing_and_two_reads_per_account(
    stack, institutions, accounts
):
    user = await stack.new_user()
    for institution in institutions:
        await stack.link(user, institution)
    engine = SyncEngine(stack.sessionmaker, {Provider.SNAPTRADE: stack.snaptrade})

    summary, counts = await _counted_sync(stack.snaptrade_app, SNAPTRADE_LOG, engine, user)

    assert summary.connections_failed == 0
    assert summary.accounts_synced == accounts
    assert counts == {
        "GET /accounts": 1,
        "GET /accounts/{id}/positions/all": accounts,
        "GET /accounts/{id}/balances": accounts,
    }
    assert sum(counts.values()) == 1 + 2 * accounts  # was 2 + 2N with GET /authorizations


async def test_snaptrade_sync_without_authorizations_stores_what_the_full_listing_says(stack):
    """The listing a sync uses leaves out only capabilities: names, masks, types, currency and
    freshness are stored as the full listing reports them."""
    user = await stack.new_user()
    await stack.link(user, "interactive-brokers")  # multi-currency cash, an option
    engine = SyncEngine(stack.sessionmaker, {Provider.SNAPTRADE: stack.snaptrade})
    assert (await engine.sync_user(user)).connections_failed == 0

    reported = {a.account_id: a for a in await stack.snaptrade.list_accounts(str(user))}
    async with stack.sessionmaker() as session:
        (connection,) = await ConnectionRepository.from_session(session).list_for_user(user)
        stored = await AccountRepository.from_session(session).list_for_connection(connection.id)
    assert {a.provider_account_id for a in stored} == set(reported)
    for account in stored:
        row = reported[account.provider_account_id]
        assert account.sync_status is AccountSyncStatus.FRESH
        assert (account.name, account.number_mask, account.type, account.currency) == (
            row.name,
            row.number_mask,
            row.type,
            row.currency,
        )
        assert account.data_as_of == row.holdings_as_of


@pytest.mark.parametrize(
    ("institutions", "accounts", "items"),
    [
        (("empower",), 1, 1),
        (("chase",), 4, 1),
        (("First Platypus Bank",), 6, 1),
        (("First Platypus Bank", "chase"), 10, 2),
    ],
)
async def test_plaid_sync_makes_two_item_reads_and_one_read_per_account(
    stack, institutions, accounts, items
):
    user = await stack.new_user()
    for institution in institutions:
        await stack.link(user, institution)
    engine = SyncEngine(stack.sessionmaker, {Provider.PLAID: stack.plaid})

    summary, counts = await _counted_sync(stack.plaid_app, PLAID_LOG, engine, user)

    assert summary.connections_failed == 0
    assert summary.accounts_synced == accounts
    assert counts["POST /item/get"] == items
    assert sum(counts.values()) == 2 * items + accounts


def _daily(stack) -> SnapTradeConnector:
    """The stack's SnapTrade connector on the Daily plan (same client, same secrets)."""
    return SnapTradeConnector(stack.snaptrade.client, stack.snaptrade.secrets, plan="daily")


async def _stored_accounts(stack, user):
    async with stack.sessionmaker() as session:
        accounts = AccountRepository.from_session(session)
        positions = PositionRepository.from_session(session)
        result = {}
        for connection in await ConnectionRepository.from_session(session).list_for_user(user):
            for account in await accounts.list_for_connection(connection.id):
                held = {p.ticker: p.quantity for p in await positions.list_for_account(account.id)}
                result[account.provider_account_id] = (account, held)
        return result


class TestDailyPlanSkipsHoldingsSnapTradeHasNotResynced:
    async def test_a_second_sync_is_one_listing_and_keeps_everything(self, stack):
        user = await stack.new_user()
        await stack.link(user, "schwab")
        await stack.link(user, "interactive-brokers")
        engine = SyncEngine(stack.sessionmaker, {Provider.SNAPTRADE: _daily(stack)})
        first, counts = await _counted_sync(stack.snaptrade_app, SNAPTRADE_LOG, engine, user)
        assert first.accounts_unchanged == 0
        assert sum(counts.values()) == 1 + 2 * 4
        before = await _stored_accounts(stack, user)

        second, counts = await _counted_sync(stack.snaptrade_app, SNAPTRADE_LOG, engine, user)

        assert counts == {"GET /accounts": 1}
        assert second.connections_failed == 0
        assert second.accounts_synced == second.accounts_unchanged == 4
        after = await _stored_accounts(stack, user)
        for account_id, (account, held) in after.items():
            old, old_held = before[account_id]
            assert held == old_held
            assert held
            assert account.sync_status is AccountSyncStatus.FRESH
            assert account.data_as_of == old.data_as_of
            assert account.last_synced_at > old.last_synced_at

    async def test_a_refresh_makes_the_next_sync_read_that_connection_again(self, stack):
        user = await stack.new_user()
        schwab = await stack.link(user, "schwab")
        await stack.link(user, "alpaca")
        connector = _daily(stack)
        engine = SyncEngine(stack.sessionmaker, {Provider.SNAPTRADE: connector})
        await engine.sync_user(user)
        await connector.refresh(str(user), schwab.connection.provider_connection_id)

        summary, counts = await _counted_sync(stack.snaptrade_app, SNAPTRADE_LOG, engine, user)

        assert counts == {
            "GET /accounts": 1,
            "GET /accounts/{id}/positions/all": 2,  # Schwab's two accounts
            "GET /accounts/{id}/balances": 2,
        }
        assert summary.accounts_unchanged == 1  # Alpaca's

    async def test_a_fill_makes_the_next_sync_read_that_account_again(self, stack):
        user = await stack.new_user()
        await stack.link(user, "schwab", need_trading=True)
        connector = _daily(stack)
        engine = SyncEngine(stack.sessionmaker, {Provider.SNAPTRADE: connector})
        await engine.sync_user(user)
        traded = next(a for a in await connector.list_accounts(str(user)) if a.capabilities.trading)
        await connector.place_order(
            str(user),
            OrderRequest(
                account_id=traded.account_id,
                side=OrderSide.BUY,
                symbol="AAPL",
                quantity=Decimal(1),
                client_order_id="3f0c1a52-8d4e-4b7a-9e61-2a5b7c9d0e1f",
            ),
        )
        before = (await _stored_accounts(stack, user))[traded.account_id][1]["AAPL"]

        summary, counts = await _counted_sync(stack.snaptrade_app, SNAPTRADE_LOG, engine, user)

        assert counts["GET /accounts/{id}/positions/all"] == 1
        assert summary.accounts_unchanged == 1
        assert (await _stored_accounts(stack, user))[traded.account_id][1]["AAPL"] == before + 1

    async def test_an_account_whose_last_read_failed_is_read_again(self, stack):
        user = await stack.new_user()
        await stack.link(user, "alpaca")
        engine = SyncEngine(stack.sessionmaker, {Provider.SNAPTRADE: _daily(stack)})
        await engine.sync_user(user)
        faults = stack.snaptrade_app.state.sandbox.faults
        # The listing fails: the account turns stale (positions kept), though nothing changed.
        faults.configure(FaultConfig(error_rate=1.0, error_status=503, path_pattern="^/accounts$"))
        failed = await engine.sync_user(user)
        assert failed.connections_failed == 1
        ((account, _),) = (await _stored_accounts(stack, user)).values()
        assert account.sync_status is AccountSyncStatus.STALE
        faults.reset()

        summary, counts = await _counted_sync(stack.snaptrade_app, SNAPTRADE_LOG, engine, user)

        assert counts["GET /accounts/{id}/positions/all"] == 1
        assert summary.accounts_unchanged == 0
        ((account, held),) = (await _stored_accounts(stack, user)).values()
        assert account.sync_status is AccountSyncStatus.FRESH
        assert held

    async def test_on_a_real_time_plan_every_sync_reads_every_account(self, stack):
        user = await stack.new_user()
        await stack.link(user, "schwab")
        realtime = SnapTradeConnector(
            stack.snaptrade.client, stack.snaptrade.secrets, plan="realtime"
        )
        engine = SyncEngine(stack.sessionmaker, {Provider.SNAPTRADE: realtime})
        await engine.sync_user(user)

        summary, counts = await _counted_sync(stack.snaptrade_app, SNAPTRADE_LOG, engine, user)

        assert sum(counts.values()) == 1 + 2 * 2
        assert summary.accounts_unchanged == 0


async def test_syncing_one_connection_does_not_call_the_users_other_connections_unknown(stack):
    user = await stack.new_user()
    schwab = await stack.link(user, "schwab")
    await stack.link(user, "alpaca")
    engine = SyncEngine(stack.sessionmaker, {Provider.SNAPTRADE: stack.snaptrade})
    with capture_logs() as logs:
        outcome = await engine.sync_connection(schwab.connection.id)
    assert outcome.ok
    # Alpaca's accounts come in the same listing: a stored connection, not an unknown link.
    assert [e for e in logs if e["event"] == "sync.connection.unknown"] == []
