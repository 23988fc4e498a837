"""Credentials, body parsing, rate limits, fault injection and the admin routes."""

from __future__ import annotations

import json

import httpx
import pytest

from brokerlink.sandbox.plaid import RateLimit
from tests.sandbox.plaid.conftest import AUTH

pytestmark = pytest.mark.asyncio

HEADERS = {"PLAID-CLIENT-ID": AUTH["client_id"], "PLAID-SECRET": AUTH["secret"]}


class TestCredentials:
    async def test_headers_instead_of_body(self, http, validator):
        response = await http.post(
            "/institutions/search",
            json={"query": "chase", "country_codes": ["US"]},
            headers={**HEADERS, "Plaid-Version": "2020-09-14"},
        )
        assert response.status_code == 200

    @pytest.mark.parametrize(
        ("body", "headers"),
        [
            ({"client_id": "other", "secret": AUTH["secret"]}, {}),
            ({"client_id": AUTH["client_id"], "secret": "wrong"}, {}),
            ({}, {"PLAID-CLIENT-ID": AUTH["client_id"], "PLAID-SECRET": "wrong"}),
        ],
    )
    async def test_bad_keys(self, http, body, headers):
        response = await http.post(
            "/accounts/get", json={**body, "access_token": "access-sandbox-x"}, headers=headers
        )
        assert response.status_code == 400
        err = response.json()
        assert (err["error_type"], err["error_code"]) == ("INVALID_INPUT", "INVALID_API_KEYS")

    async def test_missing_keys(self, http):
        response = await http.post("/accounts/get", json={"access_token": "access-sandbox-x"})
        err = response.json()
        assert response.status_code == 400
        assert err["error_code"] == "MISSING_FIELDS"
        assert "client_id" in err["error_message"]
        assert "secret" in err["error_message"]


class TestBody:
    async def test_not_json(self, http):
        response = await http.post(
            "/item/get", content=b"{nope", headers={**HEADERS, "content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["error_code"] == "INVALID_BODY"

    async def test_wrong_content_type(self, http):
        response = await http.post("/item/get", data={"access_token": "x"}, headers=HEADERS)
        assert response.json()["error_code"] == "INVALID_BODY"

    async def test_array_body(self, http):
        response = await http.post("/item/get", json=[1], headers=HEADERS)
        assert response.json()["error_code"] == "INVALID_BODY"

    async def test_unknown_field(self, api):
        err = await api.error("/item/get", {"access_token": "x", "acess_token": "y"})
        assert err["error_code"] == "UNKNOWN_FIELDS"
        assert "acess_token" in err["error_message"]


class TestRateLimits:
    async def test_holdings_15_per_minute_per_item(self, api, clock):
        item = await api.link_item()
        other = await api.link_item()
        access = {"access_token": item["access_token"]}
        for _ in range(15):
            await api.ok("/investments/holdings/get", access)
        response = await api.post("/investments/holdings/get", access)
        assert response.status_code == 429
        err = response.json()
        assert err["error_type"] == "RATE_LIMIT_EXCEEDED"
        assert err["error_code"] == "INVESTMENT_HOLDINGS_GET_LIMIT"
        # Plaid documents no Retry-After or X-RateLimit-* headers, so none are sent.
        assert "Retry-After" not in response.headers
        # Another Item is unaffected, and the window rolls over.
        await api.ok("/investments/holdings/get", {"access_token": other["access_token"]})
        clock.advance(60)
        await api.ok("/investments/holdings/get", access)

    async def test_balance_5_per_minute_per_item(self, api):
        item = await api.link_item("ins_56", ["auth"])
        access = {"access_token": item["access_token"]}
        for _ in range(5):
            await api.ok("/accounts/balance/get", access)
        err = await api.error("/accounts/balance/get", access, status=429)
        assert err["error_code"] == "BALANCE_LIMIT"

    async def test_per_client_limit(self, api, state):
        state.rate_limits["/institutions/get_by_id"] = RateLimit(
            None, 2, "INSTITUTIONS_GET_BY_ID_LIMIT"
        )
        body = {"institution_id": "ins_56", "country_codes": ["US"]}
        await api.ok("/institutions/get_by_id", body)
        await api.ok("/institutions/get_by_id", body)
        err = await api.error("/institutions/get_by_id", body, status=429)
        assert "client" in err["error_message"]

    async def test_admin_reset(self, api, http, state):
        state.rate_limits["/institutions/get_by_id"] = RateLimit(
            None, 1, "INSTITUTIONS_GET_BY_ID_LIMIT"
        )
        body = {"institution_id": "ins_56", "country_codes": ["US"]}
        await api.ok("/institutions/get_by_id", body)
        await api.error("/institutions/get_by_id", body, status=429)
        assert (await http.delete("/sandbox-admin/rate-limits")).status_code == 204
        await api.ok("/institutions/get_by_id", body)


class TestFaults:
    @pytest.mark.parametrize(
        ("status", "error_type", "code"),
        [
            (500, "API_ERROR", "INTERNAL_SERVER_ERROR"),
            (503, "API_ERROR", "PLANNED_MAINTENANCE"),
            (502, "INSTITUTION_ERROR", "INSTITUTION_NOT_RESPONDING"),
            (429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT"),
            (400, "INSTITUTION_ERROR", "INSTITUTION_DOWN"),
            (401, "INVALID_INPUT", "INVALID_API_KEYS"),
            (404, "INVALID_REQUEST", "INVALID_FIELD"),
        ],
    )
    async def test_header_status(self, api, status, error_type, code):
        err = await api.error(
            "/institutions/search",
            {"query": "chase", "country_codes": ["US"]},
            status=status,
            headers={"X-Sandbox-Fault": f"status={status}"},
        )
        assert (err["error_type"], err["error_code"]) == (error_type, code)

    async def test_retry_after(self, api):
        response = await api.post(
            "/institutions/search",
            {"query": "chase", "country_codes": ["US"]},
            headers={"X-Sandbox-Fault": "status=429;retry-after=7"},
        )
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"

    async def test_bad_header(self, api):
        err = await api.error(
            "/institutions/search",
            {"query": "chase", "country_codes": ["US"]},
            headers={"X-Sandbox-Fault": "explode"},
        )
        assert err["error_code"] == "INVALID_HEADERS"

    async def test_malformed_bodies(self, app):
        # Deliberately off-spec answers, so this client does not validate them.
        body = {**AUTH, "query": "chase", "country_codes": ["US"]}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://plaid.test") as raw:
            truncated = await raw.post(
                "/institutions/search", json=body, headers={"X-Sandbox-Fault": "malformed"}
            )
            assert truncated.status_code == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(truncated.content)
            shaped = await raw.post(
                "/institutions/search", json=body, headers={"X-Sandbox-Fault": "malformed=shape"}
            )
            assert shaped.status_code == 200
            assert isinstance(shaped.json(), list)

    async def test_admin_faults_round_trip(self, api, http):
        assert (await http.get("/sandbox-admin/faults")).json()["fail_next"] == []
        put = await http.put("/sandbox-admin/faults", json={"fail_next": [503, 429]})
        assert put.status_code == 200
        assert put.json()["fail_next"] == [503, 429]
        body = {"query": "chase", "country_codes": ["US"]}
        assert (await api.error("/institutions/search", body, status=503))["error_code"] == (
            "PLANNED_MAINTENANCE"
        )
        await api.error("/institutions/search", body, status=429)
        await api.ok("/institutions/search", body)
        await http.put("/sandbox-admin/faults", json={"error_rate": 1.0, "error_status": 500})
        await api.error("/institutions/search", body, status=500)
        assert (await http.delete("/sandbox-admin/faults")).status_code == 204
        await api.ok("/institutions/search", body)

    async def test_admin_faults_path_pattern(self, api, http):
        await http.put(
            "/sandbox-admin/faults",
            json={"error_rate": 1.0, "error_status": 502, "path_pattern": "^/investments/"},
        )
        item = await api.link_item()
        await api.ok("/accounts/get", {"access_token": item["access_token"]})
        await api.error(
            "/investments/holdings/get", {"access_token": item["access_token"]}, status=502
        )

    async def test_admin_faults_rejects_bad_config(self, http):
        response = await http.put("/sandbox-admin/faults", json={"error_rate": 3})
        assert response.status_code == 422
        response = await http.put("/sandbox-admin/faults", json={"surprise": True})
        assert response.status_code == 422


async def test_webhook_outbox_admin_route(api, http):
    item = await api.link_item(webhook="https://app.test/hook")
    await api.ok("/investments/refresh", {"access_token": item["access_token"]})
    outbox = (await http.get("/sandbox-admin/webhooks")).json()
    assert outbox[-1]["url"] == "https://app.test/hook"
    assert outbox[-1]["body"]["webhook_code"] == "DEFAULT_UPDATE"


async def test_status_admin_route(api, http):
    await api.link_item()
    body = (await http.get("/sandbox-admin/status")).json()
    assert body["online"] is True
    assert body["items"] == 1
    assert "ins_109508" in body["institutions"]
