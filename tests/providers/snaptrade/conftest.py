"""Shared doubles for the SnapTrade client tests: a fake clock/sleep and MockTransport clients."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import structlog

from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.snaptrade import SnapTradeClient

CLIENT_ID = "TESTCLIENT"
CONSUMER_KEY = "test-consumer-key-0123456789"
USER_ID = "snap-user-1"
USER_SECRET = "secret-abc-123"
ACCOUNT_ID = "917c8734-8470-4a3e-a18f-57c3f2ee6631"


class FakeTime:
    """A clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@pytest.fixture(autouse=True)
def _logs_in_memory():
    # Another test may have configured structlog (a level filter, a captured stream that is
    # closed by now); start from the defaults, keep logs in memory, and put theirs back after.
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        with structlog.testing.capture_logs():
            yield
    finally:
        structlog.configure(**saved)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake_time: FakeTime) -> Callable[..., SnapTradeClient]:
    def build(handler: Callable[[httpx.Request], Any], **kw: Any) -> SnapTradeClient:
        kw.setdefault("retry", RetryPolicy(max_retries=3, base_delay=0.5, jitter=0.0))
        kw.setdefault("clock", fake_time)
        kw.setdefault("sleep", fake_time.sleep)
        return SnapTradeClient(
            CLIENT_ID, CONSUMER_KEY, transport=httpx.MockTransport(handler), **kw
        )

    return build
