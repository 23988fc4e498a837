"""The whole product on real loopback ports, for a real browser.

running_site(tmp_path)   both sandboxes and the brokerlink app under uvicorn (tasks in the
                         test's own event loop), an SQLite store migrated to head, and a
                         user with a password. Yields a `Site`.
link_via_api(client, i)  connect an institution over HTTP only (tests not about the popup)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.pool import NullPool

from brokerlink.api import AppState, create_app
from brokerlink.auth import AuthService
from brokerlink.cli._serve import serve_in_background
from brokerlink.cli.demo import approve_in_portal, log_in_hosted_link
from brokerlink.composition import Connectors
from brokerlink.connections.items import ConnectionItems
from brokerlink.db.migrate import upgrade_async
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.policies.cost_guard import CostPolicy
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.plaid import PlaidClient, PlaidConnector
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeConnector
from brokerlink.repositories import PortfolioRepository
from brokerlink.routing.coverage import CoverageRegistry, load_coverage
from brokerlink.routing.router import ProviderFlags
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.sandbox import snaptrade as snaptrade_sandbox
from brokerlink.sandbox_ids import (
    PLAID_SANDBOX_CLIENT_ID,
    PLAID_SANDBOX_SECRET,
    SANDBOX_CLIENT_ID,
    SANDBOX_CONSUMER_KEY,
)
from brokerlink.secrets import MemorySecretStore
from brokerlink.sync import SyncEngine
from brokerlink.sync.tasks import BackgroundSyncs
from tests.fixtures.stack import CountingTransport

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    url: str
    snaptrade_url: str
    plaid_url: str
    state: AppState
    app: Any
    # The requests the app made to each provider's sandbox, by path.
    snaptrade_wire: CountingTransport
    plaid_wire: CountingTransport
    email: str = EMAIL
    password: str = PASSWORD

    @property
    def provider_calls(self) -> int:
        return self.snaptrade_wire.total + self.plaid_wire.total


@asynccontextmanager
async def running_site(tmp_path: Path, database_url: str | None = None) -> AsyncIterator[Site]:
    """Serve both sandboxes and the app on an empty store (SQLite under `tmp_path` unless
    `database_url` names another, e.g. a new PostgreSQL database); the user `EMAIL`/`PASSWORD`
    exists, with nothing linked yet."""
    url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"
    await upgrade_async(url)
    engine = create_engine(url, poolclass=NullPool)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        user = await AuthService(session).create_user(EMAIL, password=PASSWORD, name="Ada")
        await PortfolioRepository.from_session(session).get_or_create_default(user.id)
        await session.commit()
    snap_app = snaptrade_sandbox.create_app(
        client_id=SANDBOX_CLIENT_ID, consumer_key=SANDBOX_CONSUMER_KEY, rate_limit=0
    )
    plaid_app = plaid_sandbox.create_app(
        client_id=PLAID_SANDBOX_CLIENT_ID,
        secret=PLAID_SANDBOX_SECRET,
        product_ready_delay=0,
        rate_limits={},
        deliver_webhooks=False,
    )
    retry = RetryPolicy(max_retries=2, base_delay=0.01, jitter=0.0)
    snap_wire = CountingTransport(httpx.AsyncHTTPTransport())
    plaid_wire = CountingTransport(httpx.AsyncHTTPTransport())
    secrets = MemorySecretStore()
    coverage = load_coverage()
    try:
        async with AsyncExitStack() as stack:
            snap_url = await stack.enter_async_context(serve_in_background(snap_app))
            plaid_url = await stack.enter_async_context(serve_in_background(plaid_app))
            snap_client = await stack.enter_async_context(
                SnapTradeClient(
                    SANDBOX_CLIENT_ID,
                    SANDBOX_CONSUMER_KEY,
                    base_url=snap_url,
                    retry=retry,
                    transport=snap_wire,
                )
            )
            plaid_client = await stack.enter_async_context(
                PlaidClient(
                    PLAID_SANDBOX_CLIENT_ID,
                    PLAID_SANDBOX_SECRET,
                    base_url=plaid_url,
                    retry=retry,
                    transport=plaid_wire,
                )
            )
            connectors = Connectors(
                snaptrade=SnapTradeConnector(
                    snap_client, secrets, institution_lookup=coverage.slug_for_snaptrade
                ),
                plaid=PlaidConnector(plaid_client, secrets, items=ConnectionItems(sessionmaker)),
            )
            syncs = BackgroundSyncs(SyncEngine(sessionmaker, connectors.by_provider()))
            state = AppState(
                sessionmaker=sessionmaker,
                coverage=CoverageRegistry(coverage),
                flags=ProviderFlags(enable_snaptrade=True),
                connectors=connectors,
                syncs=syncs,
                policy=CostPolicy(),
            )
            app = create_app(state)
            try:
                site_url = await stack.enter_async_context(serve_in_background(app))
                # Providers send the browser back to the app's own address.
                state.public_url = site_url
                yield Site(site_url, snap_url, plaid_url, state, app, snap_wire, plaid_wire)
            finally:
                await syncs.close()
    finally:
        await engine.dispose()


async def link_via_api(
    client: httpx.AsyncClient, institution: str, *, need_trading: bool = False
) -> dict[str, Any]:
    """Connect `institution` for the signed-in `client` without a browser: start, submit the
    provider's page over HTTP (as the popup would), complete. The first sync runs in the
    background; `await site.state.syncs.drain()` waits for it."""
    started = await client.post(
        "/api/connections", json={"institution": institution, "need_trading": need_trading}
    )
    assert started.status_code == 201, started.text
    start = started.json()
    body: dict[str, Any] = {"state": start["state"]}
    async with httpx.AsyncClient(timeout=20) as popup:
        if start["provider"] == "snaptrade":
            body["connection_id"] = await approve_in_portal(popup, start["url"], "")
            body["status"] = "SUCCESS"
        else:
            await log_in_hosted_link(popup, start["url"])
    done = await client.post("/api/connections/complete", json=body)
    assert done.status_code == 200, done.text
    return dict(done.json())
