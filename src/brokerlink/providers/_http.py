"""What every provider client shares: the retry decision, backoff, and a client-side rate limiter.

The decision is pure (`RetryPolicy.should_retry`, given the operation's `Kind` from
`providers/operations.py`) and the sleep is computed separately (`RetryPolicy.backoff`), so tests
pin both without sleeping. Both clients' request loops call them for every operation.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC

import httpx

from brokerlink.providers.operations import Kind

__all__ = [
    "NOT_SENT_ERRORS",
    "RETRYABLE_ERRORS",
    "RETRYABLE_STATUSES",
    "RateLimiter",
    "Stamp",
    "RetryPolicy",
    "parse_retry_after",
]

# 408 and 425 are the server saying "try again"; 429 is the limiter; 5xx are the server's trouble.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

# Failures that prove the request never left: no connection was made, or none was free. Safe to
# send again whatever the operation costs.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)

# Network failures where the request may have reached the server and its answer was lost.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def parse_retry_after(
    headers: Mapping[str, str], *, now: float | None = None, reset_headers: tuple[str, ...] = ()
) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date), else from a reset header.

    Reset headers carry either seconds-until-reset or an epoch timestamp; a value larger than a
    day is read as an epoch.
    """
    current = time.time() if now is None else now
    raw = headers.get("retry-after")
    if raw:
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, when.timestamp() - current)
    for name in reset_headers:
        value = headers.get(name)
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if number > 86400:
            return max(0.0, number - current)
        return max(0.0, number)
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry and how long to wait. `max_retries` counts retries, not attempts."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.25  # fraction of the delay added at random
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES

    def should_retry(
        self,
        outcome: httpx.Response | BaseException,
        attempt: int,
        kind: Kind,
        *,
        transient_answer: bool = False,
    ) -> bool:
        """Whether attempt number `attempt` (1-based) of a `kind` operation that ended in
        `outcome` deserves another.

        A request that never left is sent again whatever its kind. Otherwise only idempotent
        operations are: on a retryable status, on `transient_answer` (the provider's error body
        says "try again", e.g. Plaid's PRODUCT_NOT_READY), and on a timeout or network error.
        A billed or single-use request that may have reached the provider is never repeated.
        """
        if attempt > self.max_retries:
            return False
        if isinstance(outcome, NOT_SENT_ERRORS):
            return True
        if kind is not Kind.IDEMPOTENT:
            return False
        if isinstance(outcome, httpx.Response):
            return outcome.status_code in self.retry_statuses or transient_answer
        return isinstance(outcome, RETRYABLE_ERRORS)

    def backoff(self, attempt: int, *, retry_after: float | None = None) -> float:
        """Seconds to sleep before the retry that follows attempt `attempt`.

        A server's `Retry-After` wins (capped at `max_delay`); otherwise exponential from
        `base_delay`, capped, plus jitter.
        """
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        delay = min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)
        return delay + self.add_jitter(delay)

    def add_jitter(self, delay: float) -> float:
        return float(random.uniform(0, delay * self.jitter)) if self.jitter else 0.0


class Stamp:
    """One request's place in a limiter's window: when it counts from."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


@dataclass
class RateLimiter:
    """A rolling-window limiter: at most `limit` requests in any `window` seconds.

    `limit <= 0` turns it off. Waiters queue fairly behind one lock, so a burst of coroutines
    spreads out instead of all discovering the limit through 429s.

    A server counts a request when it arrives, which is after we acquired its slot and may be
    well after when a burst queues behind it. `settle(stamp)` once the answer is in moves the
    request's stamp to that moment, which is never earlier than the server's own count, so our
    window always holds at least what the server's holds.
    """

    limit: int
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], object] = asyncio.sleep
    _stamps: deque[Stamp] = field(default_factory=deque, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def delay_needed(self) -> float:
        """Seconds until one more request fits (0 when it fits now).

        Stamps expire from the oldest acquired. A settled stamp may now be later than one
        acquired after it; that one then waits behind it, which only ever over-counts.
        """
        now = self.clock()
        stamps = self._stamps
        while stamps and now - stamps[0].at >= self.window:
            stamps.popleft()
        if len(stamps) < self.limit:
            return 0.0
        return stamps[0].at + self.window - now

    async def acquire(self) -> Stamp | None:
        """Wait for room; returns the request's stamp (None when the limiter is off)."""
        if not self.enabled:
            return None
        async with self._lock:
            while (wait := self.delay_needed()) > 0:
                result = self.sleep(wait)
                if asyncio.iscoroutine(result):
                    await result
            stamp = Stamp(self.clock())
            self._stamps.append(stamp)
            return stamp

    def settle(self, stamp: Stamp | None) -> None:
        """The request is answered: it counts from now, the latest the server could count it."""
        if stamp is not None:
            stamp.at = max(stamp.at, self.clock())

    def penalise(self, seconds: float) -> None:
        """The server said we are over its limit: hold the window full for `seconds`."""
        if not self.enabled or seconds <= 0:
            return
        # Placeholders, oldest of all, that fill the window until `now + seconds`; the real
        # stamps stay behind them, so the requests already made still count afterwards.
        until = self.clock() + seconds - self.window
        self._stamps.extendleft(Stamp(until) for _ in range(self.limit))
