"""Live reference data reaches the link-time router through the composition root: the app as
`open_state` builds it (the `serve` path) on both sandboxes, asked through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from brokerlink.api import create_app, open_state
from brokerlink.cli.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CONSUMER_KEY
from brokerlink.config import Settings
from brokerlink.db import migrate
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.sandbox import snaptrade as snaptrade_sandbox
from brokerlink.sandbox_ids import PLAID_SANDBOX_CLIENT_ID, PLAID_SANDBOX_SECRET
from tests.fixtures.db import BACKENDS
from tests.fixtures.serve_process import api_token
from tests.fixtures.uvicorn_thread import serve_in_thread

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(params=BACKENDS)
async def served(
    request: pytest.FixtureRequest, new_database: Callable[[str], str], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    url = new_database(request.param)
    await migrate.upgrade_async(url)
    snap = snaptrade_sandbox.create_app(
        client_id=SANDBOX_CLIENT_ID, consumer_key=SANDBOX_CONSUMER_KEY
    )
    plaid = plaid_sandbox.create_app(client_id=PLAID_SANDBOX_CLIENT_ID, secret=PLAID_SANDBOX_SECRET)
    settings = Settings(database_url=url, data_dir=tmp_path / "data", sync_in_app=False)
    token = await api_token(url)
    with serve_in_thread(snap) as snap_url, serve_in_thread(plaid) as plaid_url:
        async with (
            open_state(settings, snaptrade_url=snap_url, plaid_url=plaid_url) as state,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(state)),
                base_url="http://brokerlink.test",
                headers={"Authorization": f"Bearer {token}"},
            ) as http,
        ):
            yield http, snap.state.sandbox


async def test_a_brokerage_in_maintenance_at_snaptrade_falls_back_with_the_reason(served):
    http, sandbox = served
    sandbox.brokerages["SCHWAB"].maintenance_mode = True
    started = await http.post("/api/connections", json={"institution": "Charles Schwab"})
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["provider"] == "plaid"
    assert body["fallback_used"] is True
    assert body["reason"].startswith("SnapTrade reports Schwab as in maintenance")
    assert "opens through Plaid instead" in body["reason"]
    assert "/hosted-link/" in body["url"]


async def test_a_healthy_brokerage_opens_snaptrade(served):
    http, _sandbox = served
    started = await http.post("/api/connections", json={"institution": "Charles Schwab"})
    assert started.status_code == 201, started.text
    assert started.json()["provider"] == "snaptrade"
    assert started.json()["fallback_used"] is False
