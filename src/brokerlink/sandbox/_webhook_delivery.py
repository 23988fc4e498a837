"""Webhook delivery shared by both sandboxes: every webhook is POSTed by a task of its own, and
retried on the real service's schedule until it is delivered or the schedule runs out.

The schedules, as the services document them:

- SnapTrade (research notes §1.5): any status other than 200, 201, 202 or 204 leaves the webhook
  undelivered; it is retried "with an exponential backoff (starting at 30 minutes) until it is
  either delivered successfully, or 3 retry attempts have been made": after 30, 60, 120 minutes.
- Plaid (plaid.com/docs/api/webhooks, "Webhook retries"): a non-200 answer, or none within
  10 seconds, is retried "for up to 24 hours", each delay 4 times the previous, starting with
  30 seconds: after 30 s, 2, 8, 32 minutes, 2 h 8 min and 8 h 32 min (the next would fall past
  24 hours). Plaid's rule of not retrying a receiver that refused over 90% of a day's webhooks
  is not modelled.

`retry_scale` multiplies every delay (0.001 turns 30 minutes into 1.8 s) so tests and benchmarks
see the schedule in seconds; the receiver's timeout is not scaled. A request that changes
sandbox state only starts a task, so it never waits for a receiver. `aclose()` (the apps'
lifespans call it) cancels what is still in flight and closes the HTTP client.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

__all__ = [
    "PLAID_RETRIES",
    "SNAPTRADE_RETRIES",
    "Attempt",
    "Delivery",
    "RetrySchedule",
    "WebhookDispatcher",
]

HeadersFor = Callable[[float], Mapping[str, str]]
DeliveryState = Literal["pending", "delivered", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Which answers deliver a webhook, and the waits (seconds) before each retry."""

    name: str
    accepted: frozenset[int]
    delays: tuple[float, ...]

    def delivered(self, status: int | None) -> bool:
        return status in self.accepted


def _growing(first: float, factor: float, within: float) -> tuple[float, ...]:
    delays: list[float] = []
    delay = first
    while sum(delays) + delay <= within:
        delays.append(delay)
        delay *= factor
    return tuple(delays)


SNAPTRADE_RETRIES = RetrySchedule(
    "snaptrade", frozenset({200, 201, 202, 204}), (1800.0, 3600.0, 7200.0)
)
PLAID_RETRIES = RetrySchedule("plaid", frozenset({200}), _growing(30.0, 4.0, 86400.0))


@dataclass(slots=True)
class Attempt:
    """One POST: when (sandbox clock), after how long a wait (scaled seconds), what came back."""

    number: int
    at: float
    waited: float
    status: int | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "waited": self.waited,
            "status": self.status,
            "error": self.error,
        }


@dataclass(slots=True)
class Delivery:
    """One webhook on its way to `url`, and every attempt made so far."""

    id: str
    url: str
    event: str
    body: bytes
    headers_for: HeadersFor
    state: DeliveryState = "pending"
    attempts: list[Attempt] = field(default_factory=list)
    started: float | None = None  # the event loop's time of the first attempt
    offsets: list[float] = field(default_factory=list)  # loop time of each attempt after it

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "event": self.event,
            "state": self.state,
            "body": json.loads(self.body),
            "attempts": [a.as_json() for a in self.attempts],
            "offsets": list(self.offsets),
        }


class WebhookDispatcher:
    """Sends webhooks in the background on one `RetrySchedule`.

    `clock` is the sandbox's (attempt times, and what a signature's timestamp says); waits run
    on the event loop, scaled by `retry_scale`. `transport` lets tests receive in-process. With
    `enabled` false nothing is sent or recorded. Only the latest `keep` deliveries are listed.
    """

    def __init__(
        self,
        schedule: RetrySchedule,
        *,
        clock: Callable[[], float],
        transport: httpx.AsyncBaseTransport | None = None,
        retry_scale: float = 1.0,
        timeout: float = 10.0,
        enabled: bool = True,
        keep: int = 10_000,
    ) -> None:
        if retry_scale < 0:
            raise ValueError("retry_scale must not be negative")
        self.schedule = schedule
        self.clock = clock
        self.transport = transport
        self.retry_scale = retry_scale
        self.timeout = timeout
        self.enabled = enabled
        self.deliveries: deque[Delivery] = deque(maxlen=keep)
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: list[Delivery] = []
        self._client: httpx.AsyncClient | None = None

    def send(self, url: str, event: str, body: bytes, headers_for: HeadersFor) -> Delivery | None:
        """Record a webhook and start delivering it; `headers_for(now)` signs each attempt."""
        if not self.enabled:
            return None
        delivery = Delivery(str(uuid.uuid4()), url, event, body, headers_for)
        self.deliveries.append(delivery)
        self._waiting.append(delivery)
        self._start_waiting()
        return delivery

    def _start_waiting(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # state changed outside an event loop: sent once one runs (next send, join)
        waiting, self._waiting = self._waiting, []
        for delivery in waiting:
            task = loop.create_task(self._deliver(delivery), name=f"webhook {delivery.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        loop = asyncio.get_running_loop()
        waits = (0.0, *(d * self.retry_scale for d in self.schedule.delays))
        try:
            for number, wait in enumerate(waits, start=1):
                if wait:
                    await asyncio.sleep(wait)
                attempt = Attempt(number, self.clock(), wait)
                if delivery.started is None:
                    delivery.started = loop.time()
                delivery.offsets.append(loop.time() - delivery.started)
                delivery.attempts.append(attempt)
                await self._post(delivery, attempt)
                if self.schedule.delivered(attempt.status):
                    delivery.state = "delivered"
                    return
            delivery.state = "failed"
        except asyncio.CancelledError:
            delivery.state = "cancelled"
            raise

    async def _post(self, delivery: Delivery, attempt: Attempt) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self.transport, timeout=self.timeout)
        headers = dict(delivery.headers_for(attempt.at))
        try:
            # In-process transports ignore httpx's timeouts; the receiver's deadline holds anyway.
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(
                    delivery.url, content=delivery.body, headers=headers
                )
        except TimeoutError:
            attempt.error = "timeout"
            return
        except Exception as e:  # a dead or crashing receiver is an undelivered attempt
            attempt.error = type(e).__name__
            return
        attempt.status = response.status_code

    async def join(self) -> None:
        """Wait until every delivery started so far has finished (delivered or given up)."""
        self._start_waiting()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel the deliveries in flight and close the HTTP client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for delivery in self._waiting:
            delivery.state = "cancelled"
        self._waiting.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def in_flight(self) -> int:
        return len(self._tasks) + len(self._waiting)

    def as_json(self) -> list[dict[str, Any]]:
        return [d.as_json() for d in self.deliveries]

    def forget(self) -> None:
        """Drop the finished deliveries from the list (those in flight stay)."""
        kept = [d for d in self.deliveries if d.state == "pending"]
        self.deliveries.clear()
        self.deliveries.extend(kept)
