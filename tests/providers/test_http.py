"""The shared retry decision and backoff (providers/_http.py), and the in-process limiter
(providers/limits.py)."""

import httpx
import pytest

from brokerlink.providers._http import RetryPolicy, parse_retry_after
from brokerlink.providers.limits import RateLimiter
from brokerlink.providers.operations import Kind

POLICY = RetryPolicy(max_retries=3, base_delay=0.5, max_delay=30.0, jitter=0.0)


def _response(status: int) -> httpx.Response:
    return httpx.Response(status)


IDEM, BILLED, SINGLE = Kind.IDEMPOTENT, Kind.BILLED, Kind.SINGLE_USE
_req = httpx.Request("POST", "https://provider.test/op")

# outcome -> retried for (idempotent, billed, single-use), on a first attempt.
DECISIONS = [
    (_response(429), (True, False, False)),
    (_response(408), (True, False, False)),
    (_response(500), (True, False, False)),
    (_response(502), (True, False, False)),
    (_response(503), (True, False, False)),
    (_response(504), (True, False, False)),
    (_response(400), (False, False, False)),
    (_response(401), (False, False, False)),
    (_response(404), (False, False, False)),
    (_response(200), (False, False, False)),
    # The request may have arrived: only an idempotent one is sent again.
    (httpx.ReadTimeout("slow", request=_req), (True, False, False)),
    (httpx.WriteTimeout("slow", request=_req), (True, False, False)),
    (httpx.ReadError("reset", request=_req), (True, False, False)),
    (httpx.RemoteProtocolError("cut", request=_req), (True, False, False)),
    # Proof that it never left: safe for every kind.
    (httpx.ConnectError("refused", request=_req), (True, True, True)),
    (httpx.ConnectTimeout("slow", request=_req), (True, True, True)),
    (httpx.PoolTimeout("full", request=_req), (True, True, True)),
    (ValueError("a bug"), (False, False, False)),
]


@pytest.mark.parametrize(("outcome", "expected"), DECISIONS, ids=lambda v: repr(v)[:40])
@pytest.mark.parametrize("kind", [IDEM, BILLED, SINGLE])
def test_should_retry_by_kind(outcome, expected, kind):
    retried = dict(zip((IDEM, BILLED, SINGLE), expected, strict=True))[kind]
    assert POLICY.should_retry(outcome, 1, kind) is retried


@pytest.mark.parametrize("kind", [IDEM, BILLED, SINGLE])
def test_retries_are_bounded_for_every_kind(kind):
    refused = httpx.ConnectError("refused", request=_req)
    assert POLICY.should_retry(refused, 3, kind) is True
    assert POLICY.should_retry(refused, 4, kind) is False  # max_retries=3: the 4th is the last
    assert RetryPolicy(max_retries=0).should_retry(refused, 1, kind) is False


@pytest.mark.parametrize(("kind", "expected"), [(IDEM, True), (BILLED, False), (SINGLE, False)])
def test_a_transient_answer_is_retried_only_when_idempotent(kind, expected):
    assert POLICY.should_retry(_response(400), 1, kind, transient_answer=True) is expected


def test_backoff_is_exponential_and_capped():
    assert [POLICY.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert POLICY.backoff(20) == 30.0


def test_retry_after_wins_but_is_capped():
    assert POLICY.backoff(1, retry_after=2.0) == 2.0
    assert POLICY.backoff(1, retry_after=600.0) == 30.0


def test_jitter_stays_within_its_share():
    policy = RetryPolicy(base_delay=1.0, jitter=0.25)
    delays = {policy.backoff(1) for _ in range(50)}
    assert all(1.0 <= d <= 1.25 for d in delays)
    assert len(delays) > 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "Thu, 01 Jan 1970 00:00:10 GMT"}, 10.0),
        ({"x-ratelimit-reset": "7"}, 7.0),
        ({"x-ratelimit-reset": "1000060"}, 60.0),  # an epoch, relative to now=1_000_000
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers, expected):
    value = parse_retry_after(
        httpx.Headers(headers),
        now=0.0 if "GMT" in str(headers) else 1_000_000.0,
        reset_headers=("x-ratelimit-reset",),
    )
    assert value == expected


class _FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.asyncio
async def test_limiter_spreads_a_burst_over_the_window():
    fake = _FakeTime()
    limiter = RateLimiter(limit=3, window=60.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(7):
        await limiter.acquire()
    assert fake.sleeps == [60.0, 60.0]
    assert fake.now == 120.0


@pytest.mark.asyncio
async def test_limiter_off_never_waits():
    fake = _FakeTime()
    limiter = RateLimiter(limit=0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(1000):
        await limiter.acquire()
    assert fake.sleeps == []


@pytest.mark.asyncio
async def test_penalise_holds_the_window_for_the_servers_delay():
    fake = _FakeTime()
    limiter = RateLimiter(limit=5, window=60.0, clock=fake.clock, sleep=fake.sleep)
    await limiter.penalise(10.0)
    await limiter.acquire()
    assert fake.sleeps == [10.0]


@pytest.mark.asyncio
async def test_settle_counts_a_request_from_when_it_was_answered():
    # The server counts a request when it arrives; a burst's arrivals trail the acquisitions.
    fake = _FakeTime()
    limiter = RateLimiter(limit=2, window=10.0, clock=fake.clock, sleep=fake.sleep)
    first = await limiter.acquire()
    second = await limiter.acquire()
    fake.now = 3.0  # both answered three seconds later
    await limiter.settle(first)
    await limiter.settle(second)
    await limiter.acquire()
    assert fake.sleeps == [10.0]  # until 3 + 10, not 0 + 10
    assert fake.now == 13.0


@pytest.mark.asyncio
async def test_settle_never_moves_a_stamp_back_and_ignores_an_off_limiter():
    fake = _FakeTime()
    fake.now = 5.0
    limiter = RateLimiter(limit=1, window=10.0, clock=fake.clock, sleep=fake.sleep)
    stamp = await limiter.acquire()
    fake.now = 1.0
    await limiter.settle(stamp)
    assert stamp.at == 5.0
    off = RateLimiter(limit=0)
    assert await off.acquire() is None
    await off.settle(None)


@pytest.mark.asyncio
async def test_penalise_keeps_the_requests_already_made():
    fake = _FakeTime()
    limiter = RateLimiter(limit=2, window=10.0, clock=fake.clock, sleep=fake.sleep)
    await limiter.acquire()
    await limiter.acquire()
    await limiter.penalise(1.0)  # a short hold must not forget the two requests of this window
    await limiter.acquire()
    assert fake.now == 10.0
