"""The per-clientId rolling rate limit and injected faults (header and app-wide)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import pytest_asyncio

from brokerlink.sandbox._faults import FaultConfig
from brokerlink.sandbox.snaptrade import create_app
from tests.fixtures.openapi import SpecCheckingTransport
from tests.sandbox.snaptrade.conftest import CLIENT_ID, CONSUMER_KEY, FakeClock, SignedClient


@pytest.fixture
def small_app(clock):
    return create_app(client_id=CLIENT_ID, consumer_key=CONSUMER_KEY, rate_limit=3, clock=clock)


@pytest_asyncio.fixture
async def small_api(small_app, clock, spec_validator):
    transport = SpecCheckingTransport(httpx.ASGITransport(app=small_app), spec_validator)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as c:
        yield SignedClient(c, clock)


class TestRateLimit:
    @pytest.mark.asyncio
    async def test_headers_count_down_then_429(self, small_api, clock):
        remaining = []
        for _ in range(3):
            r = await small_api.get("/brokerages")
            assert r.status_code == 200
            assert r.headers["X-RateLimit-Limit"] == "3"
            remaining.append(int(r.headers["X-RateLimit-Remaining"]))
            clock.advance(1)
        assert remaining == [2, 1, 0]
        r = await small_api.get("/brokerages")
        assert r.status_code == 429
        assert r.json()["code"] == "0000"
        assert int(r.headers["Retry-After"]) == 57  # the oldest hit leaves the window at +60
        assert r.headers["X-RateLimit-Remaining"] == "0"

    @pytest.mark.asyncio
    async def test_refused_requests_report_the_window_without_counting(self, small_api):
        await small_api.get("/brokerages")
        r = await small_api.get("/brokerages", consumer_key="wrong")
        assert r.status_code == 401
        assert r.headers["X-RateLimit-Remaining"] == "2"
        r = await small_api.get("/brokerages")
        assert r.headers["X-RateLimit-Remaining"] == "1"

    @pytest.mark.asyncio
    async def test_window_rolls(self, small_api, clock):
        for _ in range(3):
            await small_api.get("/brokerages")
        assert (await small_api.get("/brokerages")).status_code == 429
        clock.advance(60)
        assert (await small_api.get("/brokerages")).status_code == 200

    @pytest.mark.asyncio
    async def test_rate_limit_zero_disables(self):
        clock = FakeClock()
        app = create_app(client_id=CLIENT_ID, consumer_key=CONSUMER_KEY, rate_limit=0, clock=clock)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            api = SignedClient(c, clock)
            for _ in range(300):
                r = await api.get("/brokerages")
                assert r.status_code == 200
        assert "X-RateLimit-Limit" not in r.headers


class TestHeaderFaults:
    @pytest.mark.asyncio
    async def test_injected_429_has_code_and_retry_after(self, api, user):
        r = await api.get(
            "/accounts", user=user, headers={"X-Sandbox-Fault": "status=429;retry-after=7"}
        )
        assert r.status_code == 429
        assert r.json()["code"] == "0000"
        assert r.headers["Retry-After"] == "7"

    @pytest.mark.asyncio
    async def test_injected_503(self, api, user):
        r = await api.get("/accounts", user=user, headers={"X-Sandbox-Fault": "status=503"})
        assert r.status_code == 503
        assert r.json()["code"] == "3002"

    @pytest.mark.asyncio
    async def test_probability_zero_never_fires(self, api, user):
        r = await api.get("/accounts", user=user, headers={"X-Sandbox-Fault": "status=500@0"})
        assert r.status_code == 200

    @pytest.mark.asyncio
    async def test_latency(self, api, user):
        r = await api.get("/accounts", user=user, headers={"X-Sandbox-Fault": "latency=0.05"})
        assert r.status_code == 200

    @pytest.mark.asyncio
    async def test_timeout_exceeds_client_timeout(self, state, app, clock, user):
        state.faults.timeout_seconds = 5
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            api = SignedClient(c, clock)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(
                    api.get("/accounts", user=user, headers={"X-Sandbox-Fault": "timeout"}),
                    timeout=0.05,
                )

    @pytest.mark.asyncio
    async def test_malformed_truncates_json(self, state, app, clock, user):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            api = SignedClient(c, clock)
            r = await api.get("/brokerages", headers={"X-Sandbox-Fault": "malformed"})
            assert r.status_code == 200
            with pytest.raises(ValueError, match="Expecting|Unterminated|Extra|Invalid"):
                r.json()
            r = await api.get("/brokerages", headers={"X-Sandbox-Fault": "malformed=shape"})
            assert r.json() == {"sandbox_malformed": True}

    @pytest.mark.asyncio
    async def test_bad_fault_header_is_400(self, api, user):
        r = await api.get("/accounts", user=user, headers={"X-Sandbox-Fault": "explode"})
        assert r.status_code == 400
        assert r.json()["code"] == "1012"

    @pytest.mark.asyncio
    async def test_auth_is_checked_before_faults(self, api, user):
        r = await api.get(
            "/accounts", user=user, consumer_key="bad", headers={"X-Sandbox-Fault": "status=500"}
        )
        assert r.status_code == 401


class TestAppWideFaults:
    @pytest.mark.asyncio
    async def test_fail_next_then_recovers(self, api, http, user):
        r = await http.put("/sandbox/faults", json={"fail_next": [500, 503]})
        assert r.status_code == 200
        assert r.json()["fail_next"] == [500, 503]
        assert (await api.get("/accounts", user=user)).status_code == 500
        assert (await api.get("/accounts", user=user)).status_code == 503
        assert (await api.get("/accounts", user=user)).status_code == 200
        assert (await http.get("/sandbox/faults")).json()["fail_next"] == []

    @pytest.mark.asyncio
    async def test_error_rate_with_path_pattern(self, api, http, user):
        await http.put(
            "/sandbox/faults",
            json={
                "error_rate": 1.0,
                "error_status": 429,
                "retry_after": 3,
                "path_pattern": "^/accounts",
            },
        )
        r = await api.get("/accounts", user=user)
        assert r.status_code == 429
        assert r.json()["code"] == "0000"
        assert r.headers["Retry-After"] == "3"
        assert (await api.get("/brokerages")).status_code == 200

    @pytest.mark.asyncio
    async def test_delete_resets(self, api, http, user):
        await http.put("/sandbox/faults", json={"error_rate": 1.0})
        r = await http.delete("/sandbox/faults")
        assert r.json()["error_rate"] == 0
        assert (await api.get("/accounts", user=user)).status_code == 200

    @pytest.mark.asyncio
    async def test_invalid_config_is_400(self, http):
        r = await http.put("/sandbox/faults", json={"error_rate": 2})
        assert r.status_code == 400
        assert r.json()["code"] == "1012"

    @pytest.mark.asyncio
    async def test_state_hook(self, api, state, user):
        state.faults.configure(FaultConfig(fail_next=[502]))
        assert (await api.get("/accounts", user=user)).status_code == 502
