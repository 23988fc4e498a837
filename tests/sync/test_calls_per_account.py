"""Provider calls per account in a sync, counted where the provider sees them: the sandboxes'
request logs (SnapTrade `/sandbox/requests`, Plaid `/sandbox-admin/requests`).

SnapTrade: one `GET /accounts` per user (the authorizations only give capabilities, which a
sync never reads), then positions/all and balances per account: 1 + 2N. Plaid: `/accounts/get`
and `/item/get` per Item, then one holdings or accounts read per account: 2 + N per Item.
"""

import re

import httpx
import pytest

from brokerlink.domain import Provider
from brokerlink.models import AccountSyncStatus
from brokerlink.repositories import AccountRepository, ConnectionRepository
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


async def _counted_sync(stack, app, log: str, engine: SyncEngine, user: int):
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

    summary, counts = await _counted_sync(stack, stack.snaptrade_app, SNAPTRADE_LOG, engine, user)

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

    summary, counts = await _counted_sync(stack, stack.plaid_app, PLAID_LOG, engine, user)

    assert summary.connections_failed == 0
    assert summary.accounts_synced == accounts
    assert counts["POST /item/get"] == items
    assert sum(counts.values()) == 2 * items + accounts
