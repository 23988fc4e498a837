"""What each OS process of tests/providers/test_shared_limits.py runs: a SnapTrade client whose
windows live in one Redis, sending signed reads to one sandbox process.

Top-level functions, so a `spawn`ed process can import them by name.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.redis_limits import RedisLimits
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeRateLimited

CLIENT_ID = "SHARED-LIMITS-CLIENT"
CONSUMER_KEY = "shared-limits-consumer-key-not-a-secret"
LIMIT = 20
WINDOW = 2.0


@dataclass
class Target:
    base_url: str
    redis_url: str
    user_id: str
    user_secret: str
    account_id: str


@dataclass
class Report:
    """What one process saw: statuses, the server's remaining count per answer, when each
    request left (time.time()), and the typed 429s it raised."""

    statuses: Counter[int] = field(default_factory=Counter)
    remaining: list[int] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    rate_limited: int = 0
    started: float = 0.0


class Recording(httpx.AsyncBaseTransport):
    """httpx's transport, noting each request's departure and the answer's limit headers."""

    def __init__(self, report: Report) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.report = report

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.report.sent.append(time.time())
        response = await self.inner.handle_async_request(request)
        self.report.statuses[response.status_code] += 1
        if (value := response.headers.get("x-ratelimit-remaining")) is not None:
            self.report.remaining.append(int(value))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def client(target: Target, limits: RedisLimits, transport: httpx.AsyncBaseTransport | None = None):
    # No retries: a 429 would surface as SnapTradeRateLimited instead of being sent again.
    return SnapTradeClient(
        CLIENT_ID,
        CONSUMER_KEY,
        base_url=target.base_url,
        transport=transport,
        retry=RetryPolicy(max_retries=0),
        rate_limiter=limits.window(f"snaptrade:{CLIENT_ID}", LIMIT, WINDOW),
        limits=limits,
    )


async def _send(
    target: Target, count: int, fan_out: int, start: Any, before: Any, after: Any
) -> Report:
    report = Report()
    limits = RedisLimits(target.redis_url)
    try:
        async with client(target, limits, Recording(report)) as snaptrade:
            if start is not None:
                await asyncio.to_thread(start.wait)  # every process is ready: begin together
            if before is not None:
                await asyncio.to_thread(before.wait)  # another process's signal
            report.started = time.time()
            gate = asyncio.Semaphore(fan_out)

            async def one() -> None:
                async with gate:
                    try:
                        await snaptrade.get_balances(
                            target.user_id, target.user_secret, target.account_id
                        )
                    except SnapTradeRateLimited:
                        report.rate_limited += 1

            await asyncio.gather(*(one() for _ in range(count)))
            if after is not None:
                after.set()
    finally:
        await limits.aclose()
    return report


def send_balances(
    target: Target,
    count: int,
    fan_out: int,
    start: Any = None,
    before: Any = None,
    after: Any = None,
) -> Report:
    """In a process of its own: `count` balance reads, `fan_out` in flight; once every process
    reached the `start` barrier and `before` is set (when given); sets `after` when done."""
    return asyncio.run(_send(target, count, fan_out, start, before, after))
