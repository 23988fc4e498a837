"""Retry decisions as a table, and the client's loop: backoff, Retry-After, no order retries."""

from __future__ import annotations

import httpx
import pytest

from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.operations import Kind
from brokerlink.providers.snaptrade import (
    SnapTradeConnectionError,
    SnapTradeRateLimited,
    SnapTradeServerError,
)

from .conftest import ACCOUNT_ID, USER_ID, USER_SECRET, json_response

_req = httpx.Request("GET", "https://api.snaptrade.com/accounts")


def _resp(status: int) -> httpx.Response:
    return httpx.Response(status, request=_req)


class TestRetryPolicyTable:
    @pytest.mark.parametrize(
        ("outcome", "attempt", "expected"),
        [
            (_resp(429), 1, True),
            (_resp(500), 1, True),
            (_resp(502), 2, True),
            (_resp(503), 3, True),
            (_resp(504), 1, True),
            (_resp(503), 4, False),  # max_retries=3: the fourth attempt is the last
            (_resp(400), 1, False),
            (_resp(401), 1, False),
            (_resp(403), 1, False),
            (_resp(404), 1, False),
            (_resp(402), 1, False),
            (_resp(200), 1, False),
            (httpx.ConnectError("refused"), 1, True),
            (httpx.ReadTimeout("slow"), 2, True),
            (httpx.RemoteProtocolError("eof"), 1, True),
            (httpx.ConnectError("refused"), 4, False),
            (ValueError("bug"), 1, False),
        ],
    )
    def test_should_retry(self, outcome, attempt, expected):
        assert (
            RetryPolicy(max_retries=3).should_retry(outcome, attempt, Kind.IDEMPOTENT) is expected
        )

    @pytest.mark.parametrize(
        ("attempt", "retry_after", "expected"),
        [
            (1, None, 0.5),
            (2, None, 1.0),
            (3, None, 2.0),
            (10, None, 30.0),
            (1, 2.0, 2.0),
            (1, 99, 30),
        ],
    )
    def test_backoff_without_jitter(self, attempt, retry_after, expected):
        policy = RetryPolicy(base_delay=0.5, max_delay=30.0, jitter=0.0)
        assert policy.backoff(attempt, retry_after=retry_after) == expected

    def test_jitter_is_bounded(self):
        policy = RetryPolicy(base_delay=1.0, jitter=0.25)
        for _ in range(50):
            assert 1.0 <= policy.backoff(1) <= 1.25


@pytest.mark.asyncio
class TestClientRetries:
    async def test_fails_twice_then_succeeds(self, make_client, fake_time):
        calls: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(request)
            if len(calls) <= 2:
                return json_response(500, {"detail": "boom", "status_code": 500, "code": "1000"})
            return json_response(200, [])

        async with make_client(handler) as client:
            assert await client.list_accounts(USER_ID, USER_SECRET) == []
        assert len(calls) == 3
        assert fake_time.sleeps == [0.5, 1.0]
        # each attempt is freshly signed with its own timestamp
        assert calls[0].url.params["timestamp"] != calls[2].url.params["timestamp"]

    async def test_429_retry_after_is_honoured(self, make_client, fake_time):
        calls = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            if calls == 1:
                return json_response(
                    429,
                    {"detail": "Request was throttled.", "status_code": 429, "code": "0000"},
                    {"Retry-After": "2"},
                )
            return json_response(200, [])

        async with make_client(handler, rate_limit_per_minute=0) as client:
            await client.list_accounts(USER_ID, USER_SECRET)
        assert calls == 2
        assert fake_time.sleeps == [2.0]

    async def test_429_reset_header_and_limiter_penalty(self, make_client, fake_time):
        calls = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            if calls == 1:
                return json_response(
                    429,
                    {"detail": "throttled", "status_code": 429, "code": "0000"},
                    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"},
                )
            return json_response(200, [])

        async with make_client(handler) as client:
            await client.list_accounts(USER_ID, USER_SECRET)
        # The backoff waits 7 s; the limiter, told the window is full, waits no extra.
        assert sum(fake_time.sleeps) == pytest.approx(7.0)
        assert calls == 2

    async def test_429_detail_seconds_when_no_header(self, make_client, fake_time):
        calls = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            if calls == 1:
                body = {"detail": "Request was throttled. Expected available in 3 seconds."}
                return json_response(429, {**body, "status_code": 429, "code": "0000"})
            return json_response(200, [])

        async with make_client(handler, rate_limit_per_minute=0) as client:
            await client.list_accounts(USER_ID, USER_SECRET)
        assert fake_time.sleeps == [3.0]

    async def test_gives_up_with_typed_error_carrying_retry_after(self, make_client, fake_time):
        def handler(request: httpx.Request) -> httpx.Response:
            return json_response(
                429,
                {"detail": "slow down", "status_code": 429, "code": "0000"},
                {"Retry-After": "1"},
            )

        async with make_client(handler, rate_limit_per_minute=0) as client:
            with pytest.raises(SnapTradeRateLimited) as info:
                await client.list_accounts(USER_ID, USER_SECRET)
        assert info.value.retry_after == 1.0
        assert info.value.status == 429
        assert len(fake_time.sleeps) == 3

    async def test_connection_errors_retried_then_typed(self, make_client, fake_time):
        calls = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            raise httpx.ConnectError("refused", request=request)

        async with make_client(handler) as client:
            with pytest.raises(SnapTradeConnectionError):
                await client.get_balances(USER_ID, USER_SECRET, ACCOUNT_ID)
        assert calls == 4

    async def test_retry_bounded_by_settings(self, make_client, fake_time):
        calls = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            return json_response(503, {"detail": "busy", "status_code": 503, "code": "3002"})

        async with make_client(handler, retry=RetryPolicy(max_retries=1, jitter=0)) as client:
            with pytest.raises(SnapTradeServerError) as info:
                await client.get_positions(USER_ID, USER_SECRET, ACCOUNT_ID)
        assert calls == 2
        assert info.value.code == "3002"


_FORM = {
    "account_id": ACCOUNT_ID,
    "action": "BUY",
    "order_type": "Market",
    "time_in_force": "Day",
    "symbol": "AAPL",
    "units": 1.0,
}


@pytest.mark.asyncio
class TestOrdersNeverRetried:
    @pytest.mark.parametrize("failure", ["500", "timeout", "429"])
    async def test_place_order_sent_once(self, make_client, fake_time, failure):
        bodies: list[bytes] = []

        def handler(request: httpx.Request) -> httpx.Response:
            bodies.append(request.content)
            if failure == "timeout":
                raise httpx.ReadTimeout("slow", request=request)
            status = int(failure)
            return json_response(status, {"detail": "x", "status_code": status, "code": "1000"})

        async with make_client(handler) as client:
            with pytest.raises(
                (SnapTradeServerError, SnapTradeConnectionError, SnapTradeRateLimited)
            ):
                await client.place_order(USER_ID, USER_SECRET, dict(_FORM))
        assert len(bodies) == 1
        assert fake_time.sleeps == []
        assert b"client_order_id" in bodies[0]

    async def test_place_checked_order_sent_once(self, make_client):
        calls = 0

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            return json_response(502, {"detail": "bad gateway", "status_code": 502, "code": "1000"})

        async with make_client(handler) as client:
            with pytest.raises(SnapTradeServerError):
                await client.place_checked_order(USER_ID, USER_SECRET, "trade-1")
        assert calls == 1

    async def test_client_order_id_kept_when_given(self, make_client):
        seen: list[bytes] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request.content)
            return json_response(200, {"brokerage_order_id": "B1", "status": "EXECUTED"})

        async with make_client(handler) as client:
            await client.place_order(USER_ID, USER_SECRET, {**_FORM, "client_order_id": "mine-1"})
        assert b'"client_order_id":"mine-1"' in seen[0]
