"""Rate-limit windows in Redis (providers/redis_limits.py), on a real redis-server."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from brokerlink.domain.errors import TechnicalError
from brokerlink.providers.redis_limits import RedisLimits, RedisWindow
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeConnectionError
from tests.fixtures.redis_server import _free_port, start_redis

pytestmark = pytest.mark.asyncio


class Sleeps(list[float]):
    """Records what a window asked to sleep, and sleeps it (the window is Redis's, in real time)."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest_asyncio.fixture
async def limits(redis_url, sleeps):
    found = RedisLimits(redis_url, sleep=sleeps)
    yield found
    await found.aclose()


@pytest_asyncio.fixture
async def raw(redis_url):
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


class TestWindow:
    async def test_admits_the_limit_then_waits_for_the_oldest_to_expire(self, limits, raw, sleeps):
        window = limits.window("snaptrade:W", 3, seconds=0.5)
        stamps = [await window.acquire() for _ in range(3)]
        assert sleeps == []
        assert await raw.zcard(window.key) == 3
        fourth = await window.acquire()
        assert len(sleeps) >= 1
        assert 0 < sleeps[0] <= 0.5
        assert fourth.at >= stamps[0].at + 0.5
        assert await raw.zcard(window.key) <= 3
        assert fourth.token in await raw.zrange(window.key, 0, -1)

    async def test_one_name_is_one_window_across_connections(self, redis_url, raw):
        first_sleeps, second_sleeps = Sleeps(), Sleeps()
        first = RedisLimits(redis_url, sleep=first_sleeps)
        second = RedisLimits(redis_url, sleep=second_sleeps)
        try:
            a, b = first.window("plaid:P", 3, 0.5), second.window("plaid:P", 3, 0.5)
            other = second.window("plaid:Q", 3, 0.5)
            await a.acquire()
            await a.acquire()
            await b.acquire()
            await other.acquire()  # another name: a window of its own
            assert first_sleeps == second_sleeps == []
            await b.acquire()
            assert len(second_sleeps) >= 1
            assert await raw.zcard(a.key) <= 3
        finally:
            await first.aclose()
            await second.aclose()

    async def test_concurrent_waiters_never_overfill_it(self, limits):
        window = limits.window("snaptrade:C", 4, seconds=0.4)
        stamps = await asyncio.gather(*(window.acquire() for _ in range(12)))
        granted = sorted(s.at for s in stamps)
        # In Redis's clock: no five grants within one window.
        assert all(later - first >= 0.4 for first, later in zip(granted, granted[4:], strict=False))

    async def test_off_never_touches_redis(self, limits, raw):
        window = limits.window("snaptrade:OFF", 0)
        assert not window.enabled
        assert await window.acquire() is None
        await window.settle(None)
        await window.penalise(5.0)
        assert await raw.keys("*") == []

    async def test_keys_expire_and_share_a_hash_tag(self, limits, raw):
        window = limits.window("snaptrade:T", 2, seconds=30)
        await window.acquire()
        await window.penalise(3)
        assert window.key == "brokerlink:limit:{snaptrade:T}"
        assert window.hold_key == window.key + ":hold"
        assert 0 < await raw.pttl(window.key) <= 30_000
        assert 0 < await raw.pttl(window.hold_key) <= 3_000


class TestSettle:
    async def test_moves_the_stamp_to_the_answer_and_never_back(self, limits, raw):
        window = limits.window("snaptrade:S", 2, seconds=5)
        stamp = await window.acquire()
        acquired = await raw.zscore(window.key, stamp.token)
        await asyncio.sleep(0.05)
        await window.settle(stamp)
        settled = await raw.zscore(window.key, stamp.token)
        assert settled > acquired
        assert stamp.at == pytest.approx(settled / 1000)
        # Moving it back (here: forcing a later score) is never undone by a settle.
        await raw.zadd(window.key, {stamp.token: settled + 60_000})
        await window.settle(stamp)
        assert await raw.zscore(window.key, stamp.token) == settled + 60_000

    async def test_an_expired_stamp_stays_expired(self, limits, raw):
        window = limits.window("snaptrade:E", 2, seconds=5)
        stamp = await window.acquire()
        await raw.zrem(window.key, stamp.token)
        await window.settle(stamp)
        assert await raw.zcard(window.key) == 0

    async def test_a_settled_stamp_holds_its_slot_from_the_answer(self, limits):
        window = limits.window("snaptrade:L", 1, seconds=0.3)
        stamp = await window.acquire()
        await asyncio.sleep(0.2)  # the answer comes late
        await window.settle(stamp)
        following = await window.acquire()
        # Counted from the answer: the slot frees a window after it, not after the acquisition.
        assert following.at >= stamp.at + 0.3


class TestPenalise:
    async def test_holds_the_window_closed_then_keeps_what_was_sent(self, limits, raw, sleeps):
        window = limits.window("snaptrade:H", 3, seconds=30)
        await window.acquire()
        await window.acquire()
        await window.penalise(0.3)
        assert 0 < await window.hold_remaining() <= 0.3
        await window.acquire()  # waits out the hold, then takes the last slot
        assert len(sleeps) >= 1
        assert 0 < sleeps[0] <= 0.3
        assert await window.hold_remaining() == 0
        assert await raw.zcard(window.key) == 3  # the two sent before the hold still count

    async def test_a_shorter_hold_never_shortens_a_longer_one(self, limits):
        window = limits.window("snaptrade:HH", 3, seconds=30)
        await window.penalise(20)
        await window.penalise(1)
        assert await window.hold_remaining() > 19

    async def test_the_hold_is_shared_by_every_holder_of_the_name(self, redis_url, limits):
        other_sleeps = Sleeps()
        other = RedisLimits(redis_url, sleep=other_sleeps)
        try:
            await limits.window("plaid:X", 5, 30).penalise(0.2)
            held = other.window("plaid:X", 5, 30)
            assert isinstance(held, RedisWindow)
            assert await held.hold_remaining() > 0
            await held.acquire()
            assert len(other_sleeps) >= 1
        finally:
            await other.aclose()


class TestRedisDown:
    async def test_a_call_is_refused_typed_and_unsent_when_redis_cannot_be_asked(self):
        sent: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(200, json=[])

        limits = RedisLimits(f"redis://127.0.0.1:{_free_port()}/0")
        try:
            async with SnapTradeClient(
                "C", "K", transport=httpx.MockTransport(answer), limits=limits
            ) as client:
                with pytest.raises(SnapTradeConnectionError) as info:
                    await client.list_brokerages()
        finally:
            await limits.aclose()
        assert isinstance(info.value, TechnicalError)
        assert sent == []

    async def test_an_answer_is_kept_when_redis_goes_away_before_it_is_settled(self):
        server = start_redis()
        limits = RedisLimits(server.url())

        def answer(request: httpx.Request) -> httpx.Response:
            server.stop()  # after the slot was taken, before the answer is settled
            # A used-up window too: holding it fails as well, and must not lose the answer.
            return httpx.Response(
                200, json=[], headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"}
            )

        try:
            async with SnapTradeClient(
                "C", "K", transport=httpx.MockTransport(answer), limits=limits
            ) as client:
                assert await client.list_brokerages() == []
        finally:
            await limits.aclose()
            server.stop()
