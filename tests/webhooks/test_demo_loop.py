"""`brokerlink demo` wires both sandboxes to its own webhook routes: a refresh in the web app
comes back as a holdings webhook, verified and synced from, all offline."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from brokerlink.api import AppState
from brokerlink.cli.demo import DemoResult, run_demo
from brokerlink.config import Settings
from brokerlink.models import WebhookEvent

pytestmark = pytest.mark.asyncio

HOLDINGS = {"snaptrade": "ACCOUNT_HOLDINGS_UPDATED", "plaid": "HOLDINGS:DEFAULT_UPDATE"}


async def _handled(state: AppState, event_type: str) -> list[WebhookEvent]:
    async with state.sessionmaker() as session:
        query = select(WebhookEvent).where(
            WebhookEvent.event_type == event_type, WebhookEvent.result == "handled"
        )
        return list(await session.scalars(query))


async def test_a_refresh_comes_back_as_a_verified_holdings_webhook():
    found: dict[str, list[WebhookEvent]] = {}

    async def visit(result: DemoResult, state: AppState) -> None:
        assert result.url is not None
        async with httpx.AsyncClient(base_url=result.url, timeout=30) as browser:
            login = await browser.post(
                "/api/auth/login", json={"email": result.email, "password": result.password}
            )
            assert login.status_code == 200, login.text
            browser.headers["X-Brokerlink-CSRF"] = "1"
            connections = (await browser.get("/api/connections")).json()
            for connection in connections:
                refreshed = await browser.post(f"/api/connections/{connection['id']}/refresh")
                assert refreshed.status_code in (200, 202), refreshed.text
        for provider, event_type in HOLDINGS.items():
            # The webhook arrives over loopback in the background; the test waits for it.
            async with asyncio.timeout(60):
                found[provider] = await _handled(state, event_type)
                while not found[provider]:
                    await asyncio.sleep(0.05)
                    found[provider] = await _handled(state, event_type)
        await state.syncs.drain()

    await run_demo(Settings(demo_port=0), serve=visit)

    assert found["snaptrade"]
    assert found["plaid"]
    assert all(e.connection_id is not None for events in found.values() for e in events)
