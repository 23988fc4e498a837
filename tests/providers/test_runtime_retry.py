"""The composition root gives each provider its own retry settings, seen at the sandbox."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from brokerlink.composition import provider_connectors
from brokerlink.config import Settings
from brokerlink.domain.errors import TechnicalError
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.secrets import MemorySecretStore
from tests.fixtures.uvicorn_thread import serve_in_thread

PL_ID, PL_SECRET = "runtime-plaid-client", "runtime-plaid-secret-not-a-secret"


@pytest.fixture(scope="module")
def plaid_url():
    app = plaid_sandbox.create_app(
        client_id=PL_ID, secret=PL_SECRET, product_ready_delay=0, deliver_webhooks=False
    )
    with serve_in_thread(app) as url:
        yield url


@pytest.mark.asyncio
@pytest.mark.parametrize(("plaid_retries", "reached"), [(0, 1), (1, 2), (4, 5)])
async def test_plaid_uses_plaid_max_retries_not_snaptrade_s(
    monkeypatch, plaid_url, plaid_retries, reached
):
    monkeypatch.setenv("PLAID_CLIENT_ID", PL_ID)
    monkeypatch.setenv("PLAID_SECRET", PL_SECRET)
    monkeypatch.setenv("PLAID_MAX_RETRIES", str(plaid_retries))
    monkeypatch.setenv("PLAID_MAX_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("SNAPTRADE_MAX_RETRIES", "2")
    settings = Settings()
    async with httpx.AsyncClient(base_url=plaid_url + "/sandbox-admin") as admin:
        await admin.delete("/requests")
        await admin.put("/faults", json={"error_rate": 1.0, "error_status": 503})
        try:
            # Opening a link reads no Item: the store is never reached.
            async with provider_connectors(
                settings,
                MemorySecretStore(),
                sessionmaker=async_sessionmaker(),
                plaid_url=plaid_url,
            ) as found:
                assert found.plaid is not None
                with pytest.raises(TechnicalError):
                    await found.plaid.create_link("user-1")
        finally:
            await admin.delete("/faults")
        counts = (await admin.get("/requests")).json()["counts"]
    assert counts == {"POST /link/token/create": reached}


def test_plaid_retry_settings_are_validated(monkeypatch):
    monkeypatch.setenv("PLAID_MAX_RETRIES", "11")
    with pytest.raises(ValueError, match="PLAID_MAX_RETRIES"):
        Settings()
