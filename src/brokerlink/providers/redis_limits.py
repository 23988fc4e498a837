"""Rate-limit windows held in Redis, so every process sending with one clientId shares them.

Each window is a sorted set of the requests it holds (member: a random token, score: when the
request counts from, in Redis's own clock, milliseconds) plus a hold key (until when nothing may
be sent). Three Lua scripts change them atomically: `acquire` (drop expired members; take a slot
if one is free, else answer how long to wait), `settle` (move a request's score to the time it
was answered) and `penalise` (extend the hold). Every script reads `TIME` on the Redis server,
so the processes' own clocks never have to agree.

Why scripts and not the `limits` library's moving window: the pipeline needs two things that
library does not offer. A request must be re-stamped when its answer arrives (`settle`: the
provider counts a request when it arrives, which can trail our acquisition by a queue's length),
and a 429's `Retry-After` must hold the window closed for everyone (`penalise`), while the
requests already made keep counting after the hold.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from brokerlink.log import get_logger
from brokerlink.providers.limits import Limiter, LimiterUnavailable, Stamp

__all__ = ["RedisLimits", "RedisWindow"]

_log = get_logger("brokerlink.providers.limits")

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: window, hold. ARGV: limit, window ms, token. -> {1, now} granted, {0, wait ms} not.
_ACQUIRE = (
    _NOW
    + """
local limit, span = tonumber(ARGV[1]), tonumber(ARGV[2])
local hold = tonumber(redis.call('GET', KEYS[2]) or '0')
if hold > now then return {0, hold - now} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], span)
  return {1, now}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(tonumber(oldest[2]) + span - now, 1)}
"""
)

# KEYS: window. ARGV: window ms, token. Never moves a stamp back; a dropped one stays dropped.
_SETTLE = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], 'XX', 'GT', now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return now
"""
)

# KEYS: hold. ARGV: hold ms. The later of the current hold and now + ms wins.
_PENALISE = (
    _NOW
    + """
local ms = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + ms > current then redis.call('SET', KEYS[1], now + ms, 'PX', ms) end
return now + ms
"""
)


class RedisLimits:
    """Windows by name in one Redis database (`BROKERLINK_QUEUE_URL`); `aclose` when done."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "brokerlink:limit:",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url)
        self._prefix = prefix
        self._sleep = sleep
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._settle = self._redis.register_script(_SETTLE)
        self._penalise = self._redis.register_script(_PENALISE)
        self._windows: dict[str, RedisWindow] = {}

    def __repr__(self) -> str:
        return f"RedisLimits(prefix={self._prefix!r})"  # the URL may carry a password

    def window(self, name: str, limit: int, seconds: float = 60.0) -> Limiter:
        found = self._windows.get(name)
        if found is None:
            # The braces are a Redis Cluster hash tag: a window and its hold share a slot.
            key = f"{self._prefix}{{{name}}}"
            found = RedisWindow(self, key, limit, seconds)
            self._windows[name] = found
        return found

    async def aclose(self) -> None:
        await self._redis.aclose()


class RedisWindow:
    """One shared window. Coroutines of this process queue behind one lock, so only one of them
    asks Redis at a time; processes compete in Redis, each script being atomic."""

    def __init__(self, limits: RedisLimits, key: str, limit: int, seconds: float) -> None:
        self._limits = limits
        self.key = key
        self.hold_key = key + ":hold"
        self.limit = limit
        self.span_ms = max(1, round(seconds * 1000))
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    async def acquire(self) -> Stamp | None:
        if not self.enabled:
            return None
        token = secrets.token_hex(8)
        async with self._lock:
            while True:
                try:
                    granted, value = await self._run(
                        self._limits._acquire,
                        [self.key, self.hold_key],
                        [self.limit, self.span_ms, token],
                    )
                except RedisError as exc:
                    # Fail closed: without the shared count, N processes could send N x limit.
                    raise LimiterUnavailable(f"rate-limit window unavailable: {exc}") from exc
                if granted:
                    return Stamp(value / 1000, token)
                await self._limits._sleep(value / 1000)

    async def settle(self, stamp: Stamp | None) -> None:
        if stamp is None or stamp.token is None:
            return
        try:
            now = await self._run(self._limits._settle, [self.key], [self.span_ms, stamp.token])
        except RedisError as exc:
            _log.warning("providers.limit.settle_failed", window=self.key, error=type(exc).__name__)
            return
        stamp.at = max(stamp.at, now / 1000)

    async def penalise(self, seconds: float) -> None:
        if not self.enabled or seconds <= 0:
            return
        try:
            await self._run(
                self._limits._penalise, [self.hold_key], [max(1, round(seconds * 1000))]
            )
        except RedisError as exc:
            _log.warning("providers.limit.hold_failed", window=self.key, error=type(exc).__name__)

    async def hold_remaining(self) -> float:
        """Seconds until the hold a 429 set ends (0 when none is set)."""
        remaining = await self._limits._redis.pttl(self.hold_key)
        return max(0, int(remaining)) / 1000

    @staticmethod
    async def _run(script: Any, keys: list[str], args: list[Any]) -> Any:
        result = await script(keys=keys, args=args)
        if isinstance(result, list):
            return [int(v) for v in result]
        return int(result)
