"""Every path that calls a provider for a known institution records it: the whole stack against
both sandboxes (SQLite and PostgreSQL), each call a provider_call_log row with the institution
and the user. Linking (start and completion, both providers and Plaid's own search), the first
sync, a user's sync over several Plaid Items, orders, refresh, reconnect and removal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from brokerlink.cli.demo import log_in_hosted_link
from brokerlink.config import Settings
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.domain import OrderRequest, OrderSide, OrderType, Provider
from brokerlink.models import ProviderCall
from brokerlink.observability.calls import CallRecorder
from brokerlink.observability.observer import call_observer
from brokerlink.orders import OrderService
from brokerlink.providers.observe import CallRecord
from brokerlink.secrets import MemorySecretStore
from brokerlink.sync import SyncEngine
from tests.fixtures.stack import REDIRECT, Stack, open_stack

pytestmark = pytest.mark.asyncio

# A limit far below the market: it stays open, so that it can be cancelled.
RESTING = OrderRequest(
    account_id="",
    side=OrderSide.BUY,
    symbol="AAPL",
    quantity=Decimal(1),
    order_type=OrderType.LIMIT,
    limit_price=Decimal("1.00"),
)


class Seen:
    """A sink keeping the records it is told of."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def observe(self, record: CallRecord) -> None:
        self.records.append(record)


@dataclass
class Logged:
    """The stack with every call told to the call log writer and to `seen`."""

    stack: Stack
    recorder: CallRecorder
    seen: Seen

    async def rows(self) -> list[ProviderCall]:
        """The rows of the calls seen since the last time, in order."""
        ours = [r.request_id for r in self.seen.records]
        self.seen.records.clear()
        await self.recorder.flush()
        async with self.stack.sessionmaker() as session:
            found = await session.scalars(
                select(ProviderCall).where(ProviderCall.call_id.in_(ours)).order_by(ProviderCall.id)
            )
            rows = list(found)
        assert [r.call_id for r in rows] == ours  # one row per call, none lost
        return rows


@pytest_asyncio.fixture
async def logged(fresh_db_url: str) -> AsyncIterator[Logged]:
    # A database of its own: these links, charges and rows are committed, and the other tests
    # here count what their shared database holds.
    await migrate.upgrade_async(fresh_db_url)
    engine = create_engine(fresh_db_url)
    seen = Seen()
    recorder = CallRecorder(create_sessionmaker(engine))
    observer = call_observer(Settings(), recorder, seen)
    try:
        async with open_stack(engine, MemorySecretStore(), observer=observer) as stack:
            yield Logged(stack, recorder, seen)
    finally:
        await engine.dispose()


def _labels(rows: list[ProviderCall]) -> set[tuple[str | None, int | None]]:
    return {(r.institution, r.user_id) for r in rows}


@pytest.mark.parametrize(
    ("institution", "provider", "opened_by"),
    [
        ("schwab", Provider.SNAPTRADE, "Authentication_loginSnapTradeUser"),
        ("chase", Provider.PLAID, "/link/token/create"),
    ],
)
async def test_a_link_flows_calls_carry_the_institution_and_the_user(
    logged, institution, provider, opened_by
):
    user = await logged.stack.new_user()

    linked = await logged.stack.link(user, institution)

    assert linked.connection.institution_slug == institution
    rows = await logged.rows()
    assert {r.provider for r in rows} == {provider}
    assert opened_by in [r.operation for r in rows]  # the start, then the completion
    assert len(rows) > 2
    assert _labels(rows) == {(institution, user)}

    engine = SyncEngine(logged.stack.sessionmaker, {provider: _connector(logged.stack, provider)})
    await engine.sync_connection(linked.connection.id)  # the first sync after the link
    assert _labels(await logged.rows()) == {(institution, user)}


def _connector(stack: Stack, provider: Provider):
    return stack.snaptrade if provider is Provider.SNAPTRADE else stack.plaid


async def test_a_user_sync_over_two_plaid_items_records_each_items_institution(logged):
    stack = logged.stack
    user = await stack.new_user()
    for institution in ("chase", "merrill"):
        await stack.link(user, institution)
    await logged.rows()

    await SyncEngine(stack.sessionmaker, {Provider.PLAID: stack.plaid}).sync_user(user)

    rows = await logged.rows()
    # One listing for the user, one /accounts/get and /item/get per Item: each is its Item's.
    listing = [r for r in rows if r.operation in ("/accounts/get", "/item/get")]
    assert {r.institution for r in listing} == {"chase", "merrill"}
    assert _labels(rows) == {("chase", user), ("merrill", user)}


async def test_plaids_own_search_records_the_institution_plaid_linked(logged):
    stack = logged.stack
    user = await stack.new_user()
    async with (
        stack.sessionmaker() as session,
        httpx.AsyncClient(
            mounts={"http://plaid.sandbox": httpx.ASGITransport(app=stack.plaid_app)}
        ) as browser,
    ):
        links = stack.links(session)
        start = await links.start(user, None, redirect_uri=REDIRECT)
        page = await browser.post(
            start.url,
            data={"institution_id": "ins_115616", "username": "user_good", "password": "pass_good"},
        )
        assert page.status_code in (200, 303), page.text
        linked = await links.complete_plaid(user, institution="", link_token=start.link_token)
        await session.commit()

    slug = linked.connection.institution_slug
    assert slug == "vanguard"
    rows = await logged.rows()
    # Nobody knew the institution when Link opened, nor when its result was read; every call
    # after Plaid named it says so.
    assert [(r.operation, r.institution) for r in rows[:2]] == [
        ("/link/token/create", None),
        ("/link/token/get", None),
    ]
    assert len(rows) > 2
    assert _labels(rows[2:]) == {(slug, user)}
    assert {r.user_id for r in rows} == {user}


async def test_orders_refresh_reconnect_and_removal_carry_the_institution(logged):
    stack = logged.stack
    user = await stack.new_user()
    schwab = await stack.link(user, "schwab")
    chase = await stack.link(user, "chase")
    await logged.rows()

    trading = next(a for a in schwab.accounts if a.capabilities.trading)
    orders = OrderService(stack.sessionmaker, {Provider.SNAPTRADE: stack.snaptrade})
    placed = await orders.place(user, trading.id, RESTING, idempotency_key="inst-1")
    await orders.list_orders(user, trading.id)
    await orders.cancel(user, trading.id, placed.order.order_id)
    rows = await logged.rows()
    assert {
        "Trading_placeOrder",
        "AccountInformation_getUserAccountOrders",
        "Trading_cancelOrder",
    } <= {r.operation for r in rows}
    assert {r.result for r in rows} == {"ok"}
    assert _labels(rows) == {("schwab", user)}

    await stack.refreshes().refresh(user, chase.connection.id)
    rows = await logged.rows()
    assert [(r.operation, r.institution, r.user_id) for r in rows] == [
        ("/investments/refresh", "chase", user)
    ]
    assert (rows[0].cost_type, rows[0].cost_amount) == (
        "plaid.investments.refresh",
        Decimal("0.12"),
    )

    for linked in (schwab, chase):
        slug = linked.connection.institution_slug
        async with stack.sessionmaker() as session:
            links = stack.links(session)
            await links.reconnect(user, linked.connection.id, redirect_uri=REDIRECT)
            assert _labels(await logged.rows()) == {(slug, user)}
            await links.remove(user, linked.connection.id)
            await session.commit()
        rows = await logged.rows()
        assert rows
        assert _labels(rows) == {(slug, user)}


async def test_a_plaid_reconnect_completed_carries_the_institution(logged):
    stack = logged.stack
    user = await stack.new_user()
    chase = await stack.link(user, "chase")
    await logged.rows()
    async with (
        stack.sessionmaker() as session,
        httpx.AsyncClient(
            mounts={"http://plaid.sandbox": httpx.ASGITransport(app=stack.plaid_app)}
        ) as browser,
    ):
        links = stack.links(session)
        start = await links.reconnect(user, chase.connection.id, redirect_uri=REDIRECT)
        await log_in_hosted_link(browser, start.url)
        await links.complete_reconnect(user, chase.connection.id)
        await session.commit()
    rows = await logged.rows()
    assert {"/link/token/create", "/item/get"} <= {r.operation for r in rows}
    assert _labels(rows) == {("chase", user)}
