"""Requests counted at the sandbox per operation, and faults that lose a processed answer."""

from __future__ import annotations

import httpx
import pytest
import pytest_asyncio

from tests.sandbox.snaptrade.conftest import SignedClient

LOST = {"X-Sandbox-Fault": "status=502; after"}

pytestmark = pytest.mark.asyncio


async def _counts(http) -> dict:
    r = await http.get("/sandbox/requests")
    assert r.status_code == 200
    return r.json()


async def _users(api) -> list[str]:
    r = await api.get("/snapTrade/listUsers")
    assert r.status_code == 200
    return r.json()


class TestRequestCounts:
    async def test_answers_of_the_rate_limit_are_counted(self, app, api, http, user):
        app.state.sandbox.rate_limit = 3  # the user's registration was the first
        await http.delete("/sandbox/requests")
        statuses = [(await api.get("/accounts", user=user)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert (await _counts(http))["rate_limited"] == 1

    async def test_counted_per_operation_whatever_the_answer(self, api, http, user):
        await http.delete("/sandbox/requests")
        await api.get("/accounts", user=user)
        await api.get("/accounts", user=user, headers={"X-Sandbox-Fault": "status=503"})
        await api.get("/api/v1/accounts", user=user)  # the prefix is the same operation
        await api.get("/accounts", user=user, sign=False)  # refused (401) but it arrived
        await api.post("/snapTrade/registerUser", json_body={"userId": "bob"})
        assert await _counts(http) == {
            "counts": {"GET /accounts": 4, "POST /snapTrade/registerUser": 1},
            "total": 5,
            "rate_limited": 0,
        }

    async def test_control_plane_is_not_counted_and_reset_clears(self, http, api, user):
        await http.get("/sandbox/faults")
        await http.get("/sandbox/requests")
        assert (await _counts(http))["counts"] == {"POST /snapTrade/registerUser": 1}
        r = await http.delete("/sandbox/requests")
        empty = {"counts": {}, "total": 0, "rate_limited": 0}
        assert r.json() == empty
        assert await _counts(http) == empty


@pytest_asyncio.fixture
async def raw(app, clock):
    """Signed, without the spec check: the spec documents neither 502 nor 504 here."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test"
    ) as c:
        yield SignedClient(c, clock)


class TestLostAnswers:
    async def test_status_after_processing_changes_state(self, raw):
        r = await raw.post("/snapTrade/registerUser", json_body={"userId": "carol"}, headers=LOST)
        assert r.status_code == 502
        assert "carol" in await _users(raw)

    async def test_status_before_processing_changes_nothing(self, raw):
        r = await raw.post(
            "/snapTrade/registerUser",
            json_body={"userId": "dave"},
            headers={"X-Sandbox-Fault": "status=502"},
        )
        assert r.status_code == 502
        assert "dave" not in await _users(raw)

    async def test_timeout_before_answers_504_without_processing(self, raw, state):
        state.faults.timeout_seconds = 0.01
        r = await raw.post(
            "/snapTrade/registerUser",
            json_body={"userId": "erin"},
            headers={"X-Sandbox-Fault": "timeout"},
        )
        assert r.status_code == 504
        assert "erin" not in await _users(raw)

    async def test_timeout_after_processing(self, raw, state):
        state.faults.timeout_seconds = 0.01
        r = await raw.post(
            "/snapTrade/registerUser",
            json_body={"userId": "frank"},
            headers={"X-Sandbox-Fault": "timeout; after"},
        )
        assert r.status_code == 504
        assert "frank" in await _users(raw)

    async def test_app_wide_after(self, raw, http, user):
        r = await http.put(
            "/sandbox/faults",
            json={"fail_next": [500], "after": True, "path_pattern": "^/snapTrade/deleteUser$"},
        )
        assert r.status_code == 200
        assert r.json()["after"] is True
        r = await raw.delete("/snapTrade/deleteUser", params={"userId": user.user_id})
        assert r.status_code == 500
        assert user.user_id not in await _users(raw)

    async def test_after_alone_is_400(self, raw, user):
        r = await raw.get("/accounts", user=user, headers={"X-Sandbox-Fault": "after"})
        assert r.status_code == 400
        assert "after needs" in r.json()["detail"]
