"""The main job: `brokerlink demo` on the embedded defaults (both sandboxes, the SQLite store)."""

import httpx
import pytest
from typer.testing import CliRunner

from brokerlink.cli import app
from brokerlink.cli.demo import run_demo
from brokerlink.config import Settings, get_settings
from brokerlink.domain import Provider
from brokerlink.models import AccountSyncStatus


@pytest.mark.asyncio
async def test_demo_links_routes_syncs_and_consolidates():
    result = await run_demo(Settings())

    by_name = {link.institution: link for link in result.links}
    assert by_name["Charles Schwab"].provider is Provider.SNAPTRADE
    assert by_name["Fidelity"].provider is Provider.SNAPTRADE
    assert by_name["Chase"].provider is Provider.PLAID
    assert all(a.capabilities.trading for a in by_name["Charles Schwab"].accounts)
    assert not any(a.capabilities.trading for a in by_name["Fidelity"].accounts)
    assert not any(a.capabilities.trading for a in by_name["Chase"].accounts)
    for link in result.links:
        assert link.accounts
        assert all(a.sync_status is AccountSyncStatus.FRESH for a in link.accounts)

    assert result.sync is not None
    assert result.sync.connections_failed == 0
    assert result.sync.positions_written == sum(result.positions_per_account.values())
    assert result.consolidation is not None
    assert result.consolidation.providers == ["plaid", "snaptrade"]
    assert result.analysis["SGOV"].is_cash_proxy
    assert result.analysis["SGOV"].shares == result.consolidation.cash["USD"]


@pytest.mark.asyncio
async def test_running_the_demo_again_replaces_the_demo_user():
    first = await run_demo(Settings())
    second = await run_demo(Settings())
    old = {link.connection.provider_connection_id for link in first.links}
    new = {link.connection.provider_connection_id for link in second.links}
    assert not old & new
    # Only the new run's connections are synced: the previous ones went with the old user.
    assert second.sync is not None
    assert len(second.sync.connections) == len(second.links)
    assert second.sync.connections_failed == 0


def test_demo_command_prints_connections_accounts_and_portfolio():
    get_settings.cache_clear()
    try:
        outcome = CliRunner().invoke(app, ["demo", "--no-serve"], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()

    assert outcome.exit_code == 0, outcome.output
    assert "Connections (offline sandboxes)" in outcome.output
    assert "Consolidated portfolio" in outcome.output
    assert "Chase connects through Plaid" in outcome.output
    assert "SGOV (cash)" in outcome.output


@pytest.mark.asyncio
async def test_demo_serves_the_web_app_with_a_demo_login():
    seen: dict[str, object] = {}

    async def visit(result, state):
        async with httpx.AsyncClient(base_url=result.url) as browser:
            seen["health"] = (await browser.get("/health")).json()
            refused = await browser.get("/api/portfolio")
            seen["anonymous"] = refused.status_code
            login = await browser.post(
                "/api/auth/login", json={"email": result.email, "password": result.password}
            )
            seen["login"] = login.status_code
            seen["portfolio"] = (await browser.get("/api/portfolio")).json()

    result = await run_demo(Settings(demo_port=0), serve=visit)

    assert result.url is not None
    assert result.url.startswith("http://127.0.0.1:")
    assert seen["health"] == {"status": "ok", "providers": ["snaptrade", "plaid"]}
    assert seen["anonymous"] == 401
    assert seen["login"] == 200
    holdings = {h["ticker"]: h for h in seen["portfolio"]["holdings"]}
    assert holdings["AAPL"]["quantity"] == "150.00000000"
    assert {s["provider"] for s in holdings["AAPL"]["sources"]} == {"snaptrade", "plaid"}
