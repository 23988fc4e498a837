"""Client-side rate limits: the windows a provider counts requests in, and where they are held.

A `Limiter` is one rolling window ("at most `limit` requests in any `window` seconds"): the
request pipeline (`providers/_http.py`) acquires a slot before each attempt, settles it once the
answer is in, and penalises the window when the provider says it is used up. `Limits` hands out
windows by name (`snaptrade:{clientId}`, `snaptrade:{clientId}:account:{id}`, `plaid:{clientId}`):

- `LocalLimits`: in this process (`RateLimiter`), the embedded default;
- `brokerlink.providers.redis_limits.RedisLimits`: in Redis, one window per name across every
  process that shares the server (web processes and workers against one clientId).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Limiter", "LimiterUnavailable", "Limits", "LocalLimits", "RateLimiter", "Stamp"]


class LimiterUnavailable(Exception):
    """The store holding a shared window could not be asked: the request was not sent."""


class Stamp:
    """One request's place in a window: when it counts from (`at`, the limiter's clock) and,
    for a shared window, the member that stands for it there (`token`)."""

    __slots__ = ("at", "token")

    def __init__(self, at: float, token: str | None = None) -> None:
        self.at = at
        self.token = token


class Limiter(Protocol):
    """One rolling window of requests."""

    @property
    def enabled(self) -> bool: ...

    async def acquire(self) -> Stamp | None:
        """Wait for room; the request's stamp (None when the window is off). Raises
        `LimiterUnavailable` when the window cannot be consulted."""
        ...

    async def settle(self, stamp: Stamp | None) -> None:
        """The request is answered: it counts from now, the latest the server could count it.
        Never raises: the answer is in, whatever happens to the bookkeeping."""
        ...

    async def penalise(self, seconds: float) -> None:
        """The server said the window is used up: let nothing through for `seconds`. Never
        raises, like `settle`."""
        ...


class Limits(Protocol):
    """Windows by name: the same name is the same window for everyone holding these limits."""

    def window(self, name: str, limit: int, seconds: float = 60.0) -> Limiter: ...

    async def aclose(self) -> None: ...


@dataclass
class RateLimiter:
    """A rolling-window limiter in this process: at most `limit` requests in any `window` seconds.

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
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
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
        if not self.enabled:
            return None
        async with self._lock:
            while (wait := self.delay_needed()) > 0:
                await self.sleep(wait)
            stamp = Stamp(self.clock())
            self._stamps.append(stamp)
            return stamp

    async def settle(self, stamp: Stamp | None) -> None:
        if stamp is not None:
            stamp.at = max(stamp.at, self.clock())

    async def penalise(self, seconds: float) -> None:
        if not self.enabled or seconds <= 0:
            return
        # Placeholders, oldest of all, that fill the window until `now + seconds`; the real
        # stamps stay behind them, so the requests already made still count afterwards.
        until = self.clock() + seconds - self.window
        self._stamps.extendleft(Stamp(until) for _ in range(self.limit))


class LocalLimits:
    """Windows held in this process: what one client (or several sharing this) has sent."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._windows: dict[str, RateLimiter] = {}

    def window(self, name: str, limit: int, seconds: float = 60.0) -> Limiter:
        found = self._windows.get(name)
        if found is None:
            found = RateLimiter(limit, seconds, clock=self._clock, sleep=self._sleep)
            self._windows[name] = found
        return found

    async def aclose(self) -> None:
        self._windows.clear()
