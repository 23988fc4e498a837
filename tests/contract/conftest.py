"""Each `InvestmentsConnector` adapter wired to its offline sandbox, in process.

`harness` is parametrised over both providers. Every request goes through
`httpx.ASGITransport(app=sandbox)` wrapped in a `SpecCheckingTransport`, so each JSON response is
validated against the provider's official spec; every test gets a fresh sandbox and a fresh
application user with one linked connection. Retries sleep on a fake clock (`Harness.sleeps`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from brokerlink.domain.connectors import InvestmentsConnector
from brokerlink.domain.enums import Provider
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.plaid import PlaidClient, PlaidConnector
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeConnector
from brokerlink.sandbox._faults import FaultConfig, FaultInjector
from brokerlink.sandbox.plaid import create_app as create_plaid_app
from brokerlink.sandbox.snaptrade import create_app as create_snaptrade_app
from brokerlink.secrets import MemorySecretStore
from tests.fixtures.openapi import SNAPTRADE_SPEC, SpecCheckingTransport, SpecValidator
from tests.fixtures.plaid_items import MemoryItems

PLAID_SPEC = Path(__file__).resolve().parents[2].parent / "shared/specs/plaid/2020-09-14.yml"

SNAPTRADE_CLIENT_ID, SNAPTRADE_CONSUMER_KEY = "CONTRACTTEST", "contract-consumer-key-0123456789"
PLAID_CLIENT_ID, PLAID_SECRET = "contract-plaid-client", "contract-plaid-secret"

# A brokerage with trading accounts, and First Platypus Bank (investment and bank accounts).
SNAPTRADE_BROKER, SNAPTRADE_SLUG = "SCHWAB", "schwab"
PLAID_INSTITUTION, PLAID_SLUG = "ins_109508", "first-platypus"

PROVIDERS = (Provider.SNAPTRADE, Provider.PLAID)


class Sleeps(list[float]):
    """A fake `sleep`: records the waits, never waits."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


class ContractTransport(SpecCheckingTransport):
    """`SpecCheckingTransport` that, only while the test has injected faults, lets through
    statuses the spec leaves undocumented and deliberately truncated bodies (the specs list few
    5xx codes; error bodies are still checked wherever the spec documents them)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, validator: SpecValidator) -> None:
        super().__init__(inner, validator)
        self.faults_injected = False
        self.undocumented: list[tuple[str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        raw = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        await response.aclose()
        path, status = request.url.path, response.status_code
        ctype = response.headers.get("content-type", "")
        if "json" in ctype and self.validator.has_operation(request.method, path):
            try:
                self.validator.validate(request.method, path, status, json.loads(raw or b"null"))
            except ValueError:
                if not self.faults_injected:
                    raise
                self.undocumented.append((path, status))  # an injected truncated body
            except AssertionError as exc:
                if not (self.faults_injected and "is not documented" in str(exc)):
                    raise
                self.undocumented.append((path, status))
            else:
                self.checked += 1
        return httpx.Response(
            status,
            headers=response.headers,
            stream=httpx.ByteStream(raw),
            extensions=response.extensions,
            request=request,
        )


@dataclass
class Harness:
    """One adapter, its sandbox, and an application user with one linked connection."""

    provider: Provider
    connector: InvestmentsConnector
    user_id: str
    connection_id: str
    transport: ContractTransport
    faults: FaultInjector
    sleeps: Sleeps
    # A new application user, known to the provider where it has users, with nothing linked.
    _new_user: Callable[[], Awaitable[str]] = field(repr=False)
    # Links the user to the sandbox institution; returns the connection id.
    _link: Callable[[str], Awaitable[str]] = field(repr=False)

    async def unlinked_user(self) -> str:
        return await self._new_user()

    async def linked_user(self) -> tuple[str, str]:
        """Another user with a connection of their own: (user_id, connection_id)."""
        user_id = await self._new_user()
        return user_id, await self._link(user_id)

    def fail_every_call(self, status: int = 500) -> None:
        """The sandbox answers `status` to every request from now on."""
        self.transport.faults_injected = True
        self.faults.configure(FaultConfig(error_rate=1.0, error_status=status))

    def truncate_every_body(self) -> None:
        """The sandbox answers 200 with a truncated JSON body to every request from now on."""
        self.transport.faults_injected = True
        self.faults.configure(FaultConfig(malformed_rate=1.0))


def _user_id() -> str:
    return f"contract-user-{uuid.uuid4().hex[:12]}"


def _retry() -> RetryPolicy:
    return RetryPolicy(max_retries=2, base_delay=0.5, jitter=0.0)


async def snaptrade_harness(stack: AsyncExitStack) -> Harness:
    """SnapTradeConnector against the SnapTrade sandbox; the user linked to Schwab (trade)."""
    app = create_snaptrade_app(
        client_id=SNAPTRADE_CLIENT_ID, consumer_key=SNAPTRADE_CONSUMER_KEY, rate_limit=10_000
    )
    transport = ContractTransport(httpx.ASGITransport(app=app), SpecValidator(SNAPTRADE_SPEC))
    sleeps = Sleeps()
    client = await stack.enter_async_context(
        SnapTradeClient(
            SNAPTRADE_CLIENT_ID,
            SNAPTRADE_CONSUMER_KEY,
            base_url="http://snaptrade.sandbox",
            transport=transport,
            retry=_retry(),
            rate_limit_per_minute=0,
            sleep=sleeps,
        )
    )
    connector = SnapTradeConnector(client, MemorySecretStore())

    async def new_user() -> str:
        user_id = _user_id()
        await connector.register_user(user_id)
        return user_id

    async def link(user_id: str) -> str:
        creds = await connector._credentials(user_id)
        auth = await client.sandbox_create_connection(
            creds.snaptrade_user_id, creds.secret, SNAPTRADE_BROKER, "trade"
        )
        await connector.record_connection(user_id, SNAPTRADE_SLUG, auth["id"])
        return auth["id"]

    user_id = await new_user()
    return Harness(
        Provider.SNAPTRADE,
        connector,
        user_id,
        await link(user_id),
        transport,
        app.state.sandbox.faults,
        sleeps,
        new_user,
        link,
    )


async def plaid_harness(stack: AsyncExitStack) -> Harness:
    """PlaidConnector against the Plaid sandbox; the user linked to First Platypus Bank."""
    app = create_plaid_app(
        client_id=PLAID_CLIENT_ID,
        secret=PLAID_SECRET,
        product_ready_delay=0,
        rate_limits={},
        deliver_webhooks=False,
    )
    transport = ContractTransport(
        httpx.ASGITransport(app=app), SpecValidator(PLAID_SPEC, strip_prefixes=())
    )
    sleeps = Sleeps()
    client = await stack.enter_async_context(
        PlaidClient(
            PLAID_CLIENT_ID,
            PLAID_SECRET,
            base_url="http://plaid.sandbox",
            transport=transport,
            retry=_retry(),
            rate_limit_per_minute=0,
            sleep=sleeps,
        )
    )
    items = MemoryItems()
    connector = PlaidConnector(client, MemorySecretStore(), items=items)

    async def new_user() -> str:
        return _user_id()  # Plaid has no users: an app user is known once an Item is linked

    async def link(user_id: str) -> str:
        created = await client.sandbox_public_token_create(PLAID_INSTITUTION, ["investments"])
        connection = await connector.complete_link(user_id, created["public_token"], PLAID_SLUG)
        items.record(user_id, connection)  # what the application records from the answer
        return connection.connection_id

    user_id = await new_user()
    return Harness(
        Provider.PLAID,
        connector,
        user_id,
        await link(user_id),
        transport,
        app.state.sandbox.faults,
        sleeps,
        new_user,
        link,
    )


BUILDERS: dict[Provider, Callable[[AsyncExitStack], Awaitable[Harness]]] = {
    Provider.SNAPTRADE: snaptrade_harness,
    Provider.PLAID: plaid_harness,
}


def _needs_spec(provider: Provider) -> Any:
    spec = SNAPTRADE_SPEC if provider is Provider.SNAPTRADE else PLAID_SPEC
    return pytest.param(
        provider,
        id=provider.value,
        marks=pytest.mark.skipif(not spec.exists(), reason=f"{spec} not found"),
    )


@pytest_asyncio.fixture(params=[_needs_spec(p) for p in PROVIDERS])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with AsyncExitStack() as stack:
        yield await BUILDERS[request.param](stack)
