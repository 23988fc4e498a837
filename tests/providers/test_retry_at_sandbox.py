"""The retry rule per operation, counted at the provider: both sandboxes over a real socket.

For every billed or single-use operation, an injected 502 or timeout, before or after the
sandbox processed the request, reaches the sandbox exactly once and ends in a typed technical
error. Every idempotent operation is retried past a 502 (two requests reached it). A connect
error, which proves nothing was sent, is retried for every kind (one request reached it).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from brokerlink.domain.errors import TechnicalError
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.operations import (
    PLAID_OPERATIONS,
    SNAPTRADE_OPERATIONS,
    Kind,
    Operation,
    UnknownOperation,
)
from brokerlink.providers.plaid import PlaidClient
from brokerlink.providers.snaptrade import SnapTradeClient
from brokerlink.sandbox import plaid as plaid_sandbox
from brokerlink.sandbox import snaptrade as snaptrade_sandbox
from tests.fixtures.uvicorn_thread import serve_in_thread
from tests.providers.retry_scenarios import PLAID, SNAPTRADE, PlaidWorld, SnapTradeWorld

ST_ID, ST_KEY = "RETRY-TEST", "retry-consumer-key-not-a-secret"
PL_ID, PL_SECRET = "retry-plaid-client", "retry-plaid-secret-not-a-secret"
# The client gives up long before the sandbox answers a request it holds.
CLIENT_TIMEOUT, SANDBOX_TIMEOUT = 0.4, 2.0
FAULTS = [("502", False), ("502", True), ("timeout", False), ("timeout", True)]

pytestmark = pytest.mark.asyncio


def _ids(ops: dict[str, Operation], kinds: set[Kind]) -> list[str]:
    return [name for name, op in ops.items() if op.kind in kinds]


def _pattern(op: Operation) -> str:
    return "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(op.path)) + "$"


def _fault(kind: str, after: bool, op: Operation) -> dict[str, Any]:
    config: dict[str, Any] = {"path_pattern": _pattern(op), "after": after}
    if kind == "502":
        config["fail_next"] = [502]
    else:
        config["timeout_rate"] = 1.0
    return config


class _Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


class _RefuseFirst(httpx.AsyncBaseTransport):
    """Refuses the first request to `path` as a closed port would, then forwards."""

    def __init__(self, inner: httpx.AsyncBaseTransport, path: str) -> None:
        self.inner, self.path, self.refused = inner, path, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if re.match(self.path, request.url.path) and not self.refused:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Admin:
    """The sandbox's own admin routes: faults and the per-operation request counts."""

    def __init__(self, url: str, prefix: str) -> None:
        self.http = httpx.AsyncClient(base_url=url + prefix, timeout=10)

    async def counts(self) -> dict[str, int]:
        r = await self.http.get("/requests")
        assert r.status_code == 200
        counts: dict[str, int] = r.json()["counts"]
        return counts

    async def reset(self, faults: dict[str, Any] | None = None) -> None:
        assert (await self.http.delete("/requests")).status_code == 200
        if faults is None:
            assert (await self.http.delete("/faults")).status_code in (200, 204)
        else:
            assert (await self.http.put("/faults", json=faults)).status_code == 200


@pytest.fixture(scope="module")
def snaptrade_url() -> Iterator[str]:
    app = snaptrade_sandbox.create_app(client_id=ST_ID, consumer_key=ST_KEY, rate_limit=0)
    app.state.sandbox.faults.timeout_seconds = SANDBOX_TIMEOUT
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def plaid_url() -> Iterator[str]:
    app = plaid_sandbox.create_app(
        client_id=PL_ID,
        secret=PL_SECRET,
        product_ready_delay=0,
        rate_limits={},
        deliver_webhooks=False,
    )
    app.state.sandbox.faults.timeout_seconds = SANDBOX_TIMEOUT
    with serve_in_thread(app) as url:
        yield url


Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


@asynccontextmanager
async def _snaptrade(
    url: str, *, timeout: float = 10.0, wrap: Wrap | None = None
) -> AsyncIterator[tuple[SnapTradeClient, SnapTradeWorld, _Admin]]:
    transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport()
    if wrap is not None:
        transport = wrap(transport)
    retry = RetryPolicy(max_retries=2, jitter=0.0)
    setup = SnapTradeClient(ST_ID, ST_KEY, base_url=url, rate_limit_per_minute=0)
    client = SnapTradeClient(
        ST_ID,
        ST_KEY,
        base_url=url,
        timeout=timeout,
        retry=retry,
        rate_limit_per_minute=0,
        transport=transport,
        sleep=_Sleeps(),
    )
    admin = _Admin(url, "/sandbox")
    async with setup, client, admin.http:
        await admin.reset()
        world = SnapTradeWorld(setup)
        await world.build()
        await admin.reset()  # count from here: the call under test only
        yield client, world, admin
        await admin.reset()


@asynccontextmanager
async def _plaid(
    url: str, *, timeout: float = 10.0, wrap: Wrap | None = None
) -> AsyncIterator[tuple[PlaidClient, PlaidWorld, _Admin]]:
    transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport()
    if wrap is not None:
        transport = wrap(transport)
    setup = PlaidClient(PL_ID, PL_SECRET, base_url=url, rate_limit_per_minute=0)
    client = PlaidClient(
        PL_ID,
        PL_SECRET,
        base_url=url,
        timeout=timeout,
        retry=RetryPolicy(max_retries=2, jitter=0.0),
        rate_limit_per_minute=0,
        transport=transport,
        sleep=_Sleeps(),
    )
    admin = _Admin(url, "/sandbox-admin")
    async with setup, client, admin.http:
        await admin.reset()
        world = PlaidWorld(setup)
        await world.build()
        await admin.reset()  # count from here: the call under test only
        yield client, world, admin
        await admin.reset()


def _st_key(name: str, world: SnapTradeWorld) -> str:
    op = SNAPTRADE_OPERATIONS[name]
    return f"{op.method} {op.path.format(**world.ids)}"


def _pl_key(path: str) -> str:
    return f"POST {path}"


NOT_IDEMPOTENT = {Kind.BILLED, Kind.SINGLE_USE}


class TestSnapTrade:
    @pytest.mark.parametrize(("fault", "after"), FAULTS)
    @pytest.mark.parametrize("name", _ids(dict(SNAPTRADE_OPERATIONS), NOT_IDEMPOTENT))
    async def test_billed_or_single_use_reaches_the_provider_once(
        self, snaptrade_url, name, fault, after
    ):
        timeout = CLIENT_TIMEOUT if fault == "timeout" else 10.0
        async with _snaptrade(snaptrade_url, timeout=timeout) as (client, world, admin):
            await admin.reset(_fault(fault, after, SNAPTRADE_OPERATIONS[name]))
            with pytest.raises(TechnicalError):
                await SNAPTRADE[name](client, world)
            assert await admin.counts() == {_st_key(name, world): 1}

    @pytest.mark.parametrize("name", _ids(dict(SNAPTRADE_OPERATIONS), {Kind.IDEMPOTENT}))
    async def test_idempotent_is_retried_past_a_502(self, snaptrade_url, name):
        async with _snaptrade(snaptrade_url) as (client, world, admin):
            await admin.reset(_fault("502", False, SNAPTRADE_OPERATIONS[name]))
            await SNAPTRADE[name](client, world)
            assert await admin.counts() == {_st_key(name, world): 2}

    @pytest.mark.parametrize("name", list(SNAPTRADE_OPERATIONS))
    async def test_connect_error_is_retried_for_every_kind(self, snaptrade_url, name):
        pattern = _pattern(SNAPTRADE_OPERATIONS[name])
        refusing: list[_RefuseFirst] = []

        def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
            refusing.append(_RefuseFirst(inner, pattern))
            return refusing[0]

        async with _snaptrade(snaptrade_url, wrap=wrap) as (client, world, admin):
            await SNAPTRADE[name](client, world)
            assert refusing[0].refused == 1
            assert await admin.counts() == {_st_key(name, world): 1}


class TestPlaid:
    @pytest.mark.parametrize(("fault", "after"), FAULTS)
    @pytest.mark.parametrize("path", _ids(dict(PLAID_OPERATIONS), NOT_IDEMPOTENT))
    async def test_billed_or_single_use_reaches_the_provider_once(
        self, plaid_url, path, fault, after
    ):
        timeout = CLIENT_TIMEOUT if fault == "timeout" else 10.0
        async with _plaid(plaid_url, timeout=timeout) as (client, world, admin):
            await admin.reset(_fault(fault, after, PLAID_OPERATIONS[path]))
            with pytest.raises(TechnicalError):
                await PLAID[path](client, world)
            assert await admin.counts() == {_pl_key(path): 1}

    @pytest.mark.parametrize("path", _ids(dict(PLAID_OPERATIONS), {Kind.IDEMPOTENT}))
    async def test_idempotent_is_retried_past_a_502(self, plaid_url, path):
        async with _plaid(plaid_url) as (client, world, admin):
            await admin.reset(_fault("502", False, PLAID_OPERATIONS[path]))
            await PLAID[path](client, world)
            assert await admin.counts() == {_pl_key(path): 2}

    @pytest.mark.parametrize("path", list(PLAID_OPERATIONS))
    async def test_connect_error_is_retried_for_every_kind(self, plaid_url, path):
        refusing: list[_RefuseFirst] = []

        def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
            refusing.append(_RefuseFirst(inner, f"^{re.escape(path)}$"))
            return refusing[0]

        async with _plaid(plaid_url, wrap=wrap) as (client, world, admin):
            await PLAID[path](client, world)
            assert refusing[0].refused == 1
            assert await admin.counts() == {_pl_key(path): 1}

    async def test_an_unclassified_operation_is_never_sent(self, plaid_url):
        async with _plaid(plaid_url) as (client, world, admin):
            with pytest.raises(UnknownOperation):
                await client.request(
                    "/sandbox/item/fire_webhook",
                    {"access_token": world.access_token, "webhook_code": "DEFAULT_UPDATE"},
                )
            assert await admin.counts() == {}
