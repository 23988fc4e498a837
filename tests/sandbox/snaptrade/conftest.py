"""Fixtures: a sandbox app on a fake clock, and a client that signs like the real SDK.

Every response passing through `api` is validated against the official spec.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import pytest_asyncio

from brokerlink.sandbox.snaptrade import SandboxState, create_app
from brokerlink.sandbox.snaptrade.signing import expected_signature
from tests.fixtures.openapi import SNAPTRADE_SPEC, SpecCheckingTransport, SpecValidator

CLIENT_ID = "TEST-CLIENT"
CONSUMER_KEY = "test-consumer-key"
START = 1_795_500_000.0


class FakeClock:
    """Unix seconds that only move when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SandboxUser:
    user_id: str
    secret: str

    @property
    def params(self) -> dict[str, str]:
        return {"userId": self.user_id, "userSecret": self.secret}


class SignedClient:
    """Builds requests the way snaptrade_client does: own params, then clientId & timestamp."""

    def __init__(self, http: httpx.AsyncClient, clock: FakeClock) -> None:
        self.http = http
        self.clock = clock

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        user: SandboxUser | None = None,
        headers: dict[str, str] | None = None,
        client_id: str = CLIENT_ID,
        consumer_key: str = CONSUMER_KEY,
        timestamp: float | None = None,
        sign: bool = True,
        tamper: Any = None,
    ) -> httpx.Response:
        query: dict[str, str] = {}
        if user is not None:
            query.update(user.params)
        query.update(params or {})
        query["clientId"] = client_id
        query["timestamp"] = str(int(self.clock() if timestamp is None else timestamp))
        raw_query = urlencode(query)
        hdrs = dict(headers or {})
        if sign:
            hdrs["Signature"] = expected_signature(consumer_key, path, raw_query, json_body)
        content = None
        sent = tamper if tamper is not None else json_body
        if sent is not None:
            content = json.dumps(sent).encode()
            hdrs["Content-Type"] = "application/json"
        return await self.http.request(method, f"{path}?{raw_query}", content=content, headers=hdrs)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)


@pytest.fixture(scope="session")
def spec_validator() -> SpecValidator:
    return SpecValidator(SNAPTRADE_SPEC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock):
    return create_app(client_id=CLIENT_ID, consumer_key=CONSUMER_KEY, clock=clock)


@pytest.fixture
def state(app) -> SandboxState:
    return app.state.sandbox


@pytest_asyncio.fixture
async def http(app, spec_validator):
    transport = SpecCheckingTransport(httpx.ASGITransport(app=app), spec_validator)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        yield client


@pytest.fixture
def api(http, clock) -> SignedClient:
    return SignedClient(http, clock)


@pytest_asyncio.fixture
async def user(api) -> SandboxUser:
    r = await api.post("/snapTrade/registerUser", json_body={"userId": "alice"})
    assert r.status_code == 200, r.text
    return SandboxUser(r.json()["userId"], r.json()["userSecret"])


async def connect(api: SignedClient, user: SandboxUser, broker: str, kind: str = "trade") -> dict:
    r = await api.post(
        "/sandbox/connections", user=user, json_body={"broker": broker, "connectionType": kind}
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest_asyncio.fixture
async def schwab(api, user) -> dict:
    """A trading connection to Schwab, with its seeded accounts."""
    return await connect(api, user, "SCHWAB", "trade")


@pytest_asyncio.fixture
async def account_id(api, user, schwab) -> str:
    r = await api.get("/accounts", user=user)
    assert r.status_code == 200
    return next(a["id"] for a in r.json() if a["brokerage_authorization"] == schwab["id"])


# Last: it reads the names above (a sandbox whose webhooks reach an in-process receiver).
from tests.sandbox.snaptrade.hooked import hooked  # noqa: E402, F401
