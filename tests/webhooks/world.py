"""Both sandboxes sending their signed webhooks to the real app, in process.

world   a `World`: the `api` fixture's app and helpers (tests/fixtures/api.py) on sandboxes
        built with a `webhook_transport` into that app, retries scaled to a fraction of a
        second; `receiver` records every delivery (body and headers), can hold them and can
        lose the app's answers, `gate` can hold the app's own calls to the sandboxes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from brokerlink.api import AppState, create_app
from brokerlink.composition import Connectors
from brokerlink.connections.items import ConnectionItems
from brokerlink.db.session import create_sessionmaker
from brokerlink.models import Account, Connection, OrderRecord, Position, WebhookEvent
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.plaid import PlaidClient, PlaidConnector
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeConnector
from brokerlink.routing.coverage import CoverageRegistry, load_coverage
from brokerlink.routing.router import LinkRouter
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.sandbox import snaptrade as snaptrade_sandbox
from brokerlink.secrets import MemorySecretStore
from brokerlink.sync import SyncEngine
from brokerlink.sync.tasks import BackgroundSyncs
from tests.fixtures.api import BASE, Api, Clock
from tests.fixtures.openapi import PLAID_SPEC, SNAPTRADE_SPEC, SpecCheckingTransport, SpecValidator
from tests.fixtures.stack import (
    PLAID_ID,
    PLAID_SECRET,
    SNAPTRADE_ID,
    SNAPTRADE_KEY,
    CountingTransport,
    Stack,
)

# 30 minutes (SnapTrade's first retry) and 30 s (Plaid's) become 0.18 s and 3 ms.
RETRY_SCALE = 0.0001


@dataclass
class Delivery:
    path: str
    body: bytes
    headers: dict[str, str]
    status: int
    lost: bool = False  # the app answered `status`; the sender never got it


class Receiver:
    """The app as the sandboxes reach it: every delivery kept, and held while `open` is clear.

    `lose`: the app's answers to that many next deliveries never reach the sender (the
    connection drops after the app answered), so the sender delivers again. `after` runs once
    each delivery is answered.
    """

    def __init__(self) -> None:
        self.app: Any = None
        self.open = asyncio.Event()
        self.open.set()
        self.deliveries: list[Delivery] = []
        self.lose = 0
        self.after: Callable[[Delivery], None] | None = None

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=self)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.open.wait()
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        status: list[int] = []
        lost = self.lose > 0
        if lost:
            self.lose -= 1

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            if not lost:
                await send(message)

        await self.app(scope, replay, capture)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        delivery = Delivery(scope["path"], body, headers, status[0], lost)
        self.deliveries.append(delivery)
        if self.after is not None:
            self.after(delivery)
        if lost:
            raise ConnectionResetError("the connection dropped before the answer was sent")

    def of(self, provider: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.path == f"/webhooks/{provider}"]


class Gate(httpx.AsyncBaseTransport):
    """The app's calls to a sandbox, held while the gate is closed."""

    def __init__(self, inner: httpx.AsyncBaseTransport, opened: asyncio.Event) -> None:
        self.inner = inner
        self.opened = opened

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.opened.wait()
        return await self.inner.handle_async_request(request)


@dataclass
class World:
    api: Api
    receiver: Receiver
    gate: asyncio.Event
    snap_client: SnapTradeClient
    secrets: MemorySecretStore
    sandbox_http: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    @property
    def state(self) -> AppState:
        return self.api.state

    @property
    def snap_app(self) -> Any:
        return self.api.stack.snaptrade_app

    @property
    def plaid_app(self) -> Any:
        return self.api.stack.plaid_app

    async def settled(self) -> None:
        """Every webhook delivered (retries included) and every job it started finished."""
        for _ in range(3):
            await self.snap_app.state.webhooks.dispatcher.join()
            await self.plaid_app.state.webhook_delivery.dispatcher.join()
            await self.state.syncs.drain()

    def plaid_signs_on_the_app_clock(self, wait: timedelta = timedelta(seconds=30)) -> None:
        """The Plaid sandbox's clock (what its signatures' `iat` says) becomes the app's, which
        moves on by `wait` after each Plaid delivery: a retry is signed later than the attempt
        before it, as at Plaid (its waits, scaled here to milliseconds, would otherwise fall
        within one of `iat`'s whole seconds)."""
        self.plaid_app.state.sandbox.clock = lambda: self.api.clock.now.timestamp()

        def after(delivery: Delivery) -> None:
            if delivery.path == "/webhooks/plaid":
                self.api.clock.advance(wait)

        self.receiver.after = after

    def sandbox(self, provider: str) -> httpx.AsyncClient:
        """Unsigned sandbox-only routes of a sandbox."""
        if provider not in self.sandbox_http:
            app = self.snap_app if provider == "snaptrade" else self.plaid_app
            self.sandbox_http[provider] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{provider}.sandbox"
            )
        return self.sandbox_http[provider]

    async def events(self, **where: Any) -> list[WebhookEvent]:
        async with self.state.sessionmaker() as session:
            query = select(WebhookEvent).order_by(WebhookEvent.id)
            for name, value in where.items():
                query = query.where(getattr(WebhookEvent, name) == value)
            return list(await session.scalars(query))

    async def connection(self, connection_id: int) -> Connection:
        async with self.state.sessionmaker() as session:
            found = await session.get(Connection, connection_id)
            assert found is not None
            return found

    async def accounts(self, connection_id: int) -> list[Account]:
        async with self.state.sessionmaker() as session:
            query = select(Account).where(Account.connection_id == connection_id)
            return list(await session.scalars(query.order_by(Account.id)))

    async def store(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row a webhook may change (all but the webhook events themselves)."""
        tables = {
            "connections": Connection,
            "accounts": Account,
            "positions": Position,
            "orders": OrderRecord,
        }
        found: dict[str, list[tuple[Any, ...]]] = {}
        async with self.state.sessionmaker() as session:
            for name, model in tables.items():
                rows = await session.scalars(select(model).order_by(model.id))
                columns = [c.key for c in model.__table__.columns]
                found[name] = [tuple(getattr(r, c) for c in columns) for r in rows]
        return found


@pytest_asyncio.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    receiver = Receiver()
    snap_app = snaptrade_sandbox.create_app(
        client_id=SNAPTRADE_ID,
        consumer_key=SNAPTRADE_KEY,
        rate_limit=0,
        webhook_url=f"{BASE}/webhooks/snaptrade",
        webhook_transport=receiver.transport(),
        webhook_retry_scale=RETRY_SCALE,
    )
    plaid_app = plaid_sandbox.create_app(
        client_id=PLAID_ID,
        secret=PLAID_SECRET,
        product_ready_delay=0,
        rate_limits={},
        webhook_transport=receiver.transport(),
        webhook_retry_scale=RETRY_SCALE,
    )
    gate = asyncio.Event()
    gate.set()
    snap_wire = CountingTransport(
        Gate(
            SpecCheckingTransport(httpx.ASGITransport(app=snap_app), SpecValidator(SNAPTRADE_SPEC)),
            gate,
        )
    )
    plaid_wire = CountingTransport(
        Gate(
            SpecCheckingTransport(
                httpx.ASGITransport(app=plaid_app), SpecValidator(PLAID_SPEC, strip_prefixes=())
            ),
            gate,
        )
    )
    sessionmaker = create_sessionmaker(engine)
    secrets = MemorySecretStore()
    retry = RetryPolicy(max_retries=2, base_delay=0.01, jitter=0.0)
    async with (
        SnapTradeClient(
            SNAPTRADE_ID,
            SNAPTRADE_KEY,
            base_url="http://snaptrade.sandbox",
            transport=snap_wire,
            retry=retry,
        ) as snap_client,
        PlaidClient(
            PLAID_ID,
            PLAID_SECRET,
            base_url="http://plaid.sandbox",
            transport=plaid_wire,
            retry=retry,
        ) as plaid_client,
    ):
        stack = Stack(
            sessionmaker=sessionmaker,
            router=LinkRouter(load_coverage()),
            snaptrade=SnapTradeConnector(snap_client, secrets),
            plaid=PlaidConnector(
                plaid_client,
                secrets,
                items=ConnectionItems(sessionmaker),
                webhook=f"{BASE}/webhooks/plaid",
            ),
            snaptrade_app=snap_app,
            plaid_app=plaid_app,
            snaptrade_wire=snap_wire,
            plaid_wire=plaid_wire,
            plaid_client=plaid_client,
        )
        clock = Clock()
        connectors = Connectors(snaptrade=stack.snaptrade, plaid=stack.plaid)
        state = AppState(
            sessionmaker=sessionmaker,
            coverage=CoverageRegistry(load_coverage()),
            flags=stack.router.flags,
            connectors=connectors,
            syncs=BackgroundSyncs(
                SyncEngine(sessionmaker, connectors.by_provider()), busy_retry_seconds=0.01
            ),
            policy=stack.policy,
            clock=clock,
            public_url=BASE,
        )
        app = create_app(state)
        receiver.app = app
        world = World(Api(stack, state, app, clock), receiver, gate, snap_client, secrets)
        try:
            yield world
            gate.set()
            receiver.open.set()
            await asyncio.wait_for(world.settled(), timeout=60)
        finally:
            await snap_app.state.webhooks.dispatcher.aclose()
            await plaid_app.state.webhook_delivery.dispatcher.aclose()
            await state.syncs.close()
            await world.api.close()
            for client in world.sandbox_http.values():
                await client.aclose()
