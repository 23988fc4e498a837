"""Syncs against both sandboxes with faults on a share of calls: nothing stored is ever lost,
and once the faults stop, one more sync converges to the sandboxes' true holdings."""

import pytest

from brokerlink.domain import Provider
from brokerlink.models import AccountSyncStatus
from brokerlink.repositories import AccountRepository, ConnectionRepository, PositionRepository
from brokerlink.sandbox._faults import FaultConfig
from brokerlink.sync import SyncEngine

pytestmark = pytest.mark.asyncio


async def _stored(stack, user):
    async with stack.sessionmaker() as session:
        connections = await ConnectionRepository.from_session(session).list_for_user(user)
        accounts = AccountRepository.from_session(session)
        positions = PositionRepository.from_session(session)
        result = {}
        for connection in connections:
            for account in await accounts.list_for_connection(connection.id):
                rows = await positions.list_for_account(account.id)
                result[account.provider_account_id] = (
                    account.sync_status,
                    {r.ticker: r.quantity for r in rows},
                )
        return result


async def _truth(stack, user):
    truth = {}
    for connector in (stack.snaptrade, stack.plaid):
        for account in await connector.list_accounts(str(user)):
            holdings = await connector.get_holdings(str(user), account.account_id)
            merged = {}
            for p in holdings:
                key = p.instrument.symbol or f"CUSIP:{p.instrument.cusip}"
                merged[key] = merged.get(key, 0) + p.quantity
            truth[account.account_id] = merged
    return truth


async def test_faulty_syncs_never_lose_positions_and_then_converge(stack):
    user = await stack.new_user()
    await stack.link(user, "schwab")
    await stack.link(user, "First Platypus Bank")
    engine = SyncEngine(
        stack.sessionmaker, {Provider.SNAPTRADE: stack.snaptrade, Provider.PLAID: stack.plaid}
    )
    first = await engine.sync_user(user)
    assert first.connections_failed == 0
    good = await _stored(stack, user)
    assert all(status is AccountSyncStatus.FRESH for status, _ in good.values())

    for app in (stack.snaptrade_app, stack.plaid_app):
        app.state.sandbox.faults.configure(FaultConfig(error_rate=0.4, error_status=503, seed=7))
    failures = 0
    for _ in range(4):
        summary = await engine.sync_user(user)
        failures += summary.connections_failed
        now = await _stored(stack, user)
        for account_id, (status, held) in now.items():
            if status is AccountSyncStatus.STALE:
                assert held == good[account_id][1], "a failed sync changed stored positions"
            if good[account_id][1]:  # (a credit card has no holdings to lose)
                assert held, f"account {account_id} lost its positions"
    assert failures > 0  # the faults did bite

    for app in (stack.snaptrade_app, stack.plaid_app):
        app.state.sandbox.faults.reset()
    final = await engine.sync_user(user)
    assert final.connections_failed == 0
    stored = await _stored(stack, user)
    assert all(status is AccountSyncStatus.FRESH for status, _ in stored.values())
    truth = await _truth(stack, user)
    for account_id, held in truth.items():
        if held:
            assert stored[account_id][1] == held
