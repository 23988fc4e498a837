"""`plaid` command: defaults, options, and that it serves the sandbox through uvicorn."""

from __future__ import annotations

import asyncio

import httpx
import typer
import uvicorn
from typer.testing import CliRunner

from brokerlink.cli.sandbox_plaid import PLAID_SANDBOX_CLIENT_ID, PLAID_SANDBOX_SECRET, plaid
from tests.fixtures.openapi import SpecCheckingTransport


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("plaid")(plaid)

    @app.command("other")
    def other() -> None:  # a second command keeps `plaid` a named subcommand
        """Unused."""

    return app


def _capture(monkeypatch) -> dict:
    seen: dict = {}

    def fake_run(application, **kwargs):
        seen["app"] = application
        seen.update(kwargs)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return seen


def test_defaults(monkeypatch):
    seen = _capture(monkeypatch)
    result = CliRunner().invoke(_app(), ["plaid"])
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"], seen["log_level"]) == ("127.0.0.1", 8766, "warning")
    state = seen["app"].state.sandbox
    assert (state.client_id, state.secret) == (PLAID_SANDBOX_CLIENT_ID, PLAID_SANDBOX_SECRET)
    assert state.product_ready_delay == 0.5
    assert "/investments/holdings/get" in state.rate_limits


def test_rate_limits_can_be_switched_off(monkeypatch):
    seen = _capture(monkeypatch)
    result = CliRunner().invoke(_app(), ["plaid", "--no-rate-limits"])
    assert result.exit_code == 0, result.output
    assert seen["app"].state.sandbox.rate_limits == {}


def test_options_reach_the_app(monkeypatch, validator):
    seen = _capture(monkeypatch)
    result = CliRunner().invoke(
        _app(),
        [
            "plaid",
            "--port",
            "9001",
            "--client-id",
            "cid",
            "--secret",
            "sec",
            "--product-ready-delay",
            "0",
            "--log-level",
            "info",
        ],
    )
    assert result.exit_code == 0, result.output
    assert seen["port"] == 9001
    assert seen["log_level"] == "info"
    body = {"institution_id": "ins_109508", "country_codes": ["US"]}

    async def call(client_id: str, secret: str) -> httpx.Response:
        transport = SpecCheckingTransport(httpx.ASGITransport(app=seen["app"]), validator)
        async with httpx.AsyncClient(transport=transport, base_url="http://cli.test") as client:
            return await client.post(
                "/institutions/get_by_id", json={**body, "client_id": client_id, "secret": secret}
            )

    assert asyncio.run(call("cid", "sec")).status_code == 200
    refused = asyncio.run(call(PLAID_SANDBOX_CLIENT_ID, PLAID_SANDBOX_SECRET))
    assert refused.json()["error_code"] == "INVALID_API_KEYS"


def test_help_documents_the_defaults():
    result = CliRunner().invoke(_app(), ["plaid", "--help"])
    assert result.exit_code == 0
    assert "8766" in result.output
    assert "--client-id" in result.output
    assert "--no-rate-limits" in result.output
