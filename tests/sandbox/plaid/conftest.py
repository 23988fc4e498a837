"""Fixtures: a Plaid sandbox app on a fake clock and a client whose every JSON response is
validated against the official Plaid spec (2020-09-14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from brokerlink.sandbox.plaid import PlaidSandboxState, create_app
from tests.fixtures.openapi import SpecCheckingTransport, SpecValidator

PLAID_SPEC = Path(__file__).resolve().parents[3].parent / "shared/specs/plaid/2020-09-14.yml"
CLIENT_ID = "test-plaid-client"
SECRET = "test-plaid-secret"
AUTH = {"client_id": CLIENT_ID, "secret": SECRET}
START = 1_795_500_000.0  # 2026-11-23T...Z


class FakeClock:
    """Unix seconds that only move when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class PlaidClient:
    """POSTs JSON with the credentials in the body, as plaid.com expects."""

    def __init__(self, http: httpx.AsyncClient, transport: SpecCheckingTransport) -> None:
        self.http = http
        self.transport = transport

    async def post(
        self, path: str, body: dict[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        return await self.http.post(path, json={**AUTH, **(body or {})}, **kw)

    async def ok(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.post(path, body)
        assert response.status_code == 200, response.text
        return response.json()

    async def error(
        self, path: str, body: dict[str, Any] | None = None, *, status: int = 400, **kw: Any
    ) -> dict[str, Any]:
        response = await self.post(path, body, **kw)
        assert response.status_code == status, response.text
        err = response.json()
        assert err["request_id"]
        return err

    async def link_item(
        self, institution_id: str = "ins_109508", products: list[str] | None = None, **opts: Any
    ) -> dict[str, Any]:
        """Create, exchange; returns {access_token, item_id}."""
        body: dict[str, Any] = {
            "institution_id": institution_id,
            "initial_products": products or ["investments"],
        }
        if opts:
            body["options"] = opts
        public = await self.ok("/sandbox/public_token/create", body)
        return await self.ok(
            "/item/public_token/exchange", {"public_token": public["public_token"]}
        )


@pytest.fixture(scope="session")
def validator() -> SpecValidator:
    return SpecValidator(PLAID_SPEC, strip_prefixes=())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock):
    return create_app(
        client_id=CLIENT_ID,
        secret=SECRET,
        clock=clock,
        product_ready_delay=0,
        deliver_webhooks=False,
    )


@pytest.fixture
def state(app) -> PlaidSandboxState:
    return app.state.sandbox


@pytest_asyncio.fixture
async def transport(app, validator):
    return SpecCheckingTransport(httpx.ASGITransport(app=app), validator)


@pytest_asyncio.fixture
async def http(transport):
    async with httpx.AsyncClient(transport=transport, base_url="http://plaid.test") as client:
        yield client


@pytest_asyncio.fixture
async def api(http, transport) -> PlaidClient:
    return PlaidClient(http, transport)


WEBHOOK_SCHEMAS = {
    ("HOLDINGS", "DEFAULT_UPDATE"): "HoldingsDefaultUpdateWebhook",
    ("INVESTMENTS_TRANSACTIONS", "DEFAULT_UPDATE"): "InvestmentsDefaultUpdateWebhook",
    ("INVESTMENTS_TRANSACTIONS", "HISTORICAL_UPDATE"): "InvestmentsHistoricalUpdateWebhook",
    ("ITEM", "ERROR"): "ItemErrorWebhook",
    ("ITEM", "LOGIN_REPAIRED"): "ItemLoginRepairedWebhook",
    ("ITEM", "NEW_ACCOUNTS_AVAILABLE"): "NewAccountsAvailableWebhook",
    ("ITEM", "PENDING_DISCONNECT"): "PendingDisconnectWebhook",
    ("ITEM", "PENDING_EXPIRATION"): "PendingExpirationWebhook",
    ("ITEM", "USER_PERMISSION_REVOKED"): "UserPermissionRevokedWebhook",
    ("ITEM", "WEBHOOK_UPDATE_ACKNOWLEDGED"): "WebhookUpdateAcknowledgedWebhook",
    ("LINK", "SESSION_FINISHED"): "LinkSessionFinishedWebhook",
    ("LINK", "ITEM_ADD_RESULT"): "ItemAddResultWebhook",
}


def validate_webhook(validator: SpecValidator, body: dict[str, Any]) -> None:
    """Check a webhook body against the spec's component schema for its type and code."""
    from jsonschema.exceptions import best_match
    from openapi_schema_validator import OAS30Validator

    name = WEBHOOK_SCHEMAS[(body["webhook_type"], body["webhook_code"])]
    root = {
        "allOf": [{"$ref": f"#/components/schemas/{name}"}],
        "components": validator.spec["components"],
    }
    error = best_match(OAS30Validator(root).iter_errors(body))
    assert error is None, f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message}"


@pytest.fixture
def check_webhooks(state, validator):
    """After the test, every queued webhook body must match its spec schema."""
    yield
    for _, body in state.webhooks:
        validate_webhook(validator, body)
