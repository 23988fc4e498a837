"""The portfolio cache (portfolio/cache.py) never serves an answer the store no longer supports.

Every test compares what `GET /api/portfolio` answers through the cached app with what the same
app computes without a cache, after a write made the way the product makes it (the manual
positions API, a sync's `replace_account_positions`, the duplicate preference, account and
connection updates) or behind its back (a raw UPDATE, another session), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.accounts.service import AccountsView
from brokerlink.api import AppState, create_app
from brokerlink.auth import AuthService
from brokerlink.composition import Connectors
from brokerlink.domain import Instrument, InstrumentKind, Provider
from brokerlink.domain import Position as Holding
from brokerlink.domain.enums import AccountType
from brokerlink.models import (
    Account,
    Connection,
    ConnectionStatus,
    Position,
    RefreshStatus,
    RefreshTrigger,
    User,
)
from brokerlink.policies.cost_guard import CostGuard, CostPolicy
from brokerlink.portfolio.cache import PortfolioCache
from brokerlink.repositories import (
    AccountRepository,
    ConnectionRepository,
    PortfolioRepository,
    PositionRepository,
    PositionValues,
)
from brokerlink.repositories.refresh_log import RefreshLogRepository
from brokerlink.routing.coverage import CoverageRegistry, load_coverage
from brokerlink.routing.router import ProviderFlags
from brokerlink.sync import SyncEngine
from brokerlink.sync.tasks import BackgroundSyncs

pytestmark = pytest.mark.asyncio

BASE = "http://brokerlink.test"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Seeded:
    user_id: int
    token: str
    portfolio_id: int
    snap_account: int
    plaid_account: int  # the same real account as snap_account, through Plaid


@dataclass
class Harness:
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: PortfolioCache
    clock: Clock
    cached_app: Any
    plain_app: Any

    async def get(self, token: str, path: str = "/api/portfolio", *, cached: bool = True) -> Any:
        app = self.cached_app if cached else self.plain_app
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            response = await client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    async def call(self, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.cached_app),
            base_url=BASE,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            return await client.request(method, path, **kw)

    async def check(self, token: str, path: str = "/api/portfolio") -> Any:
        """The cached answer, asserted equal to a fresh computation."""
        cached = await self.get(token, path)
        assert cached == await self.get(token, path, cached=False)
        return cached

    async def seed(self, *, tickers: int = 4) -> Seeded:
        now = self.clock()
        async with self.sessionmaker() as session:
            auth = AuthService(session)
            user = await auth.create_user(f"{uuid.uuid4().hex[:12]}@example.com")
            token = (await auth.issue(user.id, kind="api")).token
            portfolio = await PortfolioRepository.from_session(session).get_or_create_default(
                user.id
            )
            connections = ConnectionRepository.from_session(session)
            accounts = AccountRepository.from_session(session)
            ids = []
            for provider in (Provider.SNAPTRADE, Provider.PLAID):
                connection = await connections.upsert(
                    user_id=user.id,
                    provider=provider,
                    provider_connection_id=f"{provider.value}-{uuid.uuid4().hex[:10]}",
                    institution_name="Fidelity",
                    institution_slug="fidelity",
                )
                account = await accounts.upsert(
                    connection,
                    provider_account_id=f"{provider.value}-1",
                    name="Individual",
                    type=AccountType.BROKERAGE,
                    number_mask="1234",
                )
                await accounts.mark_fresh(account, synced_at=now, data_as_of=now)
                ids.append(account.id)
                rows = [
                    PositionValues(
                        portfolio_id=portfolio.id,
                        user_id=user.id,
                        account_id=account.id,
                        ticker=f"T{n}",
                        quantity=Decimal(n + 1),
                        currency="USD",
                        type="equity",
                        provider=provider,
                        price=Decimal("10"),
                        market_value=Decimal(10 * (n + 1)),
                        as_of=now,
                    )
                    for n in range(tickers)
                ]
                rows.append(
                    PositionValues(
                        portfolio_id=portfolio.id,
                        user_id=user.id,
                        account_id=account.id,
                        ticker="CUR:USD",
                        quantity=Decimal(500),
                        currency="USD",
                        type="cash",
                        provider=provider,
                        as_of=now,
                    )
                )
                await PositionRepository.from_session(session).bulk_upsert(rows)
            await session.commit()
        return Seeded(user.id, token, portfolio.id, ids[0], ids[1])


@pytest_asyncio.fixture
async def harness(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Harness]:
    clock = Clock()
    connectors = Connectors()
    cache = PortfolioCache()
    state = AppState(
        sessionmaker=sessionmaker,
        coverage=CoverageRegistry(load_coverage()),
        flags=ProviderFlags(),
        connectors=connectors,
        syncs=BackgroundSyncs(SyncEngine(sessionmaker, connectors.by_provider())),
        clock=clock,
        portfolio_cache=cache,
    )
    plain = replace(state, portfolio_cache=None)
    yield Harness(
        sessionmaker, cache, clock, create_app(state, web=False), create_app(plain, web=False)
    )
    await state.syncs.close()


async def test_a_repeated_request_is_served_from_the_cache(harness: Harness) -> None:
    seeded = await harness.seed()
    first = await harness.check(seeded.token)
    hits = harness.cache.hits
    assert await harness.get(seeded.token) == first
    assert harness.cache.hits == hits + 1
    assert first["duplicates"], "the seed links one account twice"
    assert Decimal(first["cash"]["USD"]) == 500  # the duplicated account counts once


async def test_manual_positions_added_edited_and_removed(harness: Harness) -> None:
    seeded = await harness.seed()
    before = await harness.check(seeded.token)

    added = await harness.call(
        seeded.token,
        "POST",
        "/api/manual-positions",
        json={"ticker": "MANU", "quantity": "7", "price": "3"},
    )
    assert added.status_code == 201, added.text
    with_manual = await harness.check(seeded.token)
    assert with_manual != before
    assert "MANU" in {h["ticker"] for h in with_manual["holdings"]}

    position_id = added.json()["id"]
    edited = await harness.call(
        seeded.token, "PATCH", f"/api/manual-positions/{position_id}", json={"quantity": "9"}
    )
    assert edited.status_code == 200, edited.text
    after_edit = await harness.check(seeded.token)
    (manu,) = [h for h in after_edit["holdings"] if h["ticker"] == "MANU"]
    assert Decimal(manu["quantity"]) == 9

    removed = await harness.call(seeded.token, "DELETE", f"/api/manual-positions/{position_id}")
    assert removed.status_code == 204, removed.text
    after_remove = await harness.check(seeded.token)
    assert "MANU" not in {h["ticker"] for h in after_remove["holdings"]}
    assert after_remove == before


async def test_a_sync_replacing_positions(harness: Harness) -> None:
    seeded = await harness.seed()
    before = await harness.check(seeded.token)
    now = harness.clock()
    async with harness.sessionmaker() as session:
        account = await session.get(Account, seeded.snap_account)
        assert account is not None
        holdings = [
            Holding(
                provider=Provider.SNAPTRADE,
                account_id=account.provider_account_id,
                instrument=Instrument(symbol=symbol, kind=InstrumentKind.EQUITY),
                quantity=Decimal(quantity),
                currency="USD",
                price=Decimal("20"),
                as_of=now,
            )
            for symbol, quantity in (("T0", "100"), ("NEW", "5"))
        ]
        await PositionRepository.from_session(session).replace_account_positions(
            account, holdings, portfolio_id=seeded.portfolio_id
        )
        await session.commit()
    after = await harness.check(seeded.token)
    assert after != before
    tickers = {h["ticker"] for h in after["holdings"]}
    assert "NEW" in tickers
    assert "T1" not in tickers  # no longer reported by the winning account; Plaid's is superseded


async def test_the_duplicate_preference(harness: Harness) -> None:
    seeded = await harness.seed()
    before = await harness.check(seeded.token)
    assert before["duplicates"][0]["kept_account_id"] == seeded.snap_account

    chosen = await harness.call(
        seeded.token,
        "PUT",
        "/api/duplicates/preference",
        json={"keep_account_id": seeded.plaid_account},
    )
    assert chosen.status_code == 200, chosen.text
    after = await harness.check(seeded.token)
    assert after["duplicates"][0]["kept_account_id"] == seeded.plaid_account
    assert chosen.json() == after

    # Changed behind the API's back (another session): seen too.
    async with harness.sessionmaker() as session:
        user = await session.get(User, seeded.user_id)
        assert user is not None
        user.preferences = {}
        await session.commit()
    again = await harness.check(seeded.token)
    assert again["duplicates"][0]["kept_account_id"] == seeded.snap_account


async def test_a_write_stamped_earlier_than_the_latest_one(harness: Harness) -> None:
    """A transaction that commits after a later-stamped one (max(updated_at) unchanged)."""
    seeded = await harness.seed()
    before = await harness.check(seeded.token)
    async with harness.sessionmaker() as session:
        await session.execute(
            update(Position)
            .where(Position.account_id == seeded.snap_account, Position.ticker == "T0")
            .values(quantity=Decimal(42), updated_at=harness.clock() - timedelta(days=30))
        )
        await session.commit()
    after = await harness.check(seeded.token)
    assert after != before


async def test_account_and_connection_changes(harness: Harness) -> None:
    seeded = await harness.seed()
    before = await harness.check(seeded.token)
    async with harness.sessionmaker() as session:
        account = await session.get(Account, seeded.snap_account)
        assert account is not None
        account.name = "Renamed"
        await session.commit()
    renamed = await harness.check(seeded.token)
    assert renamed != before
    assert any("Renamed" in s["label"] for s in renamed["by_account"])

    async with harness.sessionmaker() as session:
        account = await session.get(Account, seeded.snap_account)
        assert account is not None
        connection = await session.get(Connection, account.connection_id)
        assert connection is not None
        connection.status = ConnectionStatus.DISABLED
        await session.commit()
    disabled = await harness.check(seeded.token)
    assert disabled != renamed


async def test_accounts_turn_stale_with_time_alone(harness: Harness) -> None:
    seeded = await harness.seed()
    before = await harness.check(seeded.token)
    assert before["stale_accounts"] == 0
    harness.clock.now += timedelta(hours=23)
    assert await harness.check(seeded.token) == before
    harness.clock.now += timedelta(hours=2)
    later = await harness.check(seeded.token)
    assert later["stale_accounts"] == 2


async def test_users_never_share_entries(harness: Harness) -> None:
    first = await harness.seed(tickers=3)
    second = await harness.seed(tickers=5)
    a = await harness.check(first.token)
    b = await harness.check(second.token)
    assert a != b
    assert await harness.get(first.token) == a
    assert await harness.get(second.token) == b
    assert len(harness.cache) == 2
    # The other user's write leaves this user's entry alone, and is seen by its owner.
    added = await harness.call(
        second.token, "POST", "/api/manual-positions", json={"ticker": "ONLYB", "quantity": "1"}
    )
    assert added.status_code == 201, added.text
    hits = harness.cache.hits
    assert await harness.get(first.token) == a
    assert harness.cache.hits == hits + 1
    assert "ONLYB" in {h["ticker"] for h in (await harness.check(second.token))["holdings"]}


async def test_each_portfolio_by_id(harness: Harness) -> None:
    seeded = await harness.seed()
    path = f"/api/portfolios/{seeded.portfolio_id}"
    assert await harness.check(path=path, token=seeded.token) == await harness.check(seeded.token)
    other = await harness.seed()
    response = await harness.call(other.token, "GET", path)
    assert response.status_code == 404


@pytest.mark.parametrize("entries", [1, 2])
async def test_the_cache_is_bounded(entries: int) -> None:
    from brokerlink.portfolio.schemas import PortfolioOut

    cache = PortfolioCache(max_entries=entries)
    now = datetime.now(UTC)
    value = PortfolioOut(
        id=1,
        name="Main",
        last_updated=None,
        providers=[],
        holdings=[],
        cash={},
        totals={},
        by_type=[],
        by_account=[],
        by_provider=[],
        duplicates=[],
        superseded=0,
        stale_accounts=0,
    )
    for user in range(5):
        cache.put(user, 1, (user,), value, now=now, valid_until=None)
    assert len(cache) == entries
    assert cache.get(4, 1, (4,), now=now) is value
    assert cache.get(0, 1, (0,), now=now) is None
    assert cache.get(4, 1, (5,), now=now) is None  # another version
    assert cache.get(4, 1, (4,), now=now - timedelta(seconds=1)) is None  # clock went back


async def test_batched_next_refresh_matches_the_cost_guard(harness: Harness) -> None:
    """AccountsView reads every connection's last refresh in one query (the miss path); the
    answer is CostGuard.next_refresh_allowed_at's, connection by connection."""
    seeded = await harness.seed()
    now = harness.clock()
    policy = CostPolicy(
        refresh_intervals={Provider.PLAID: timedelta(hours=24), Provider.SNAPTRADE: timedelta(0)}
    )
    async with harness.sessionmaker() as session:
        connections = await ConnectionRepository.from_session(session).list_for_user(seeded.user_id)
        extra = await ConnectionRepository.from_session(session).upsert(
            user_id=seeded.user_id,
            provider=Provider.PLAID,
            provider_connection_id=f"plaid-{uuid.uuid4().hex[:10]}",
            institution_name="Chase",
        )
        extra.last_manual_refresh_at = now - timedelta(hours=2)
        log = RefreshLogRepository.from_session(session)
        plaid = next(c for c in connections if c.provider is Provider.PLAID)
        for hours, status in (
            (30, RefreshStatus.ACCEPTED),
            (5, RefreshStatus.COMPLETED),
            (1, RefreshStatus.REJECTED),  # refusals do not count
            (0.5, RefreshStatus.FAILED),
        ):
            await log.record(
                plaid, trigger=RefreshTrigger.MANUAL, status=status, at=now - timedelta(hours=hours)
            )
        for connection in connections:
            if connection.provider is Provider.SNAPTRADE:
                await log.record(connection, trigger=RefreshTrigger.MANUAL, at=now)
        await session.flush()

        view = AccountsView(session, policy=policy, clock=harness.clock)
        guard = CostGuard(session, policy, clock=harness.clock)
        listed = {c.id: c.next_refresh_allowed_at for c in await view.connections(seeded.user_id)}
        expected = {c.id: await guard.next_refresh_allowed_at(c) for c in [*connections, extra]}
        assert listed == expected
        assert listed[plaid.id] == now - timedelta(hours=5) + timedelta(hours=24)
        assert listed[extra.id] == now - timedelta(hours=2) + timedelta(hours=24)
