"""Request signing, the timestamp window, client ids and user secrets, as the real gateway."""

from __future__ import annotations

import pytest

from tests.sandbox.snaptrade.conftest import SandboxUser


class TestSignature:
    @pytest.mark.asyncio
    async def test_wrong_consumer_key_is_1076(self, api, user):
        r = await api.get("/accounts", user=user, consumer_key="not-the-key")
        assert r.status_code == 401
        assert r.json() == {
            "detail": "Unable to verify signature sent",
            "status_code": 401,
            "code": "1076",
        }

    @pytest.mark.asyncio
    async def test_missing_signature_is_1076(self, api, user):
        r = await api.get("/accounts", user=user, sign=False)
        assert r.status_code == 401
        assert r.json()["code"] == "1076"

    @pytest.mark.asyncio
    async def test_tampered_body_is_1076(self, api, user):
        r = await api.post(
            "/snapTrade/resetUserSecret",
            json_body={"userId": user.user_id, "userSecret": user.secret},
            tamper={"userId": "mallory", "userSecret": user.secret},
        )
        assert r.status_code == 401
        assert r.json()["code"] == "1076"

    @pytest.mark.asyncio
    async def test_tampered_query_is_1076(self, api, http, user, clock):
        r = await api.get("/accounts", user=user)
        assert r.status_code == 200
        signature = r.request.headers["Signature"]
        query = r.request.url.query.decode().replace("alice", "bob")
        r = await http.get(f"/accounts?{query}", headers={"Signature": signature})
        assert r.status_code == 401
        assert r.json()["code"] == "1076"

    @pytest.mark.asyncio
    async def test_empty_object_body_signs_as_null(self, api, user, schwab):
        # The SDK signs {} as content null; the sandbox must accept that.
        r = await api.post(f"/authorizations/{schwab['id']}/refresh", user=user, json_body={})
        assert r.status_code == 200

    @pytest.mark.asyncio
    async def test_signed_under_api_prefix(self, api, user):
        r = await api.get("/api/v1/accounts", user=user)
        assert r.status_code == 200


class TestTimestamp:
    @pytest.mark.asyncio
    @pytest.mark.parametrize("offset", [-301, 301, -3600])
    async def test_outside_window_is_1077(self, api, user, clock, offset):
        r = await api.get("/accounts", user=user, timestamp=clock() + offset)
        assert r.status_code == 401
        assert r.json()["code"] == "1077"

    @pytest.mark.asyncio
    @pytest.mark.parametrize("offset", [-300, 0, 300])
    async def test_inside_window_is_accepted(self, api, user, clock, offset):
        r = await api.get("/accounts", user=user, timestamp=clock() + offset)
        assert r.status_code == 200

    @pytest.mark.asyncio
    async def test_missing_timestamp_is_1077(self, http):
        r = await http.get("/accounts?clientId=TEST-CLIENT")
        assert r.status_code == 401
        assert r.json()["code"] == "1077"


class TestClientId:
    @pytest.mark.asyncio
    async def test_unknown_client_is_1078(self, api, user):
        r = await api.get("/accounts", user=user, client_id="SOMEONE-ELSE")
        assert r.status_code == 401
        assert r.json()["code"] == "1078"

    @pytest.mark.asyncio
    async def test_missing_client_is_1078(self, http):
        r = await http.get("/accounts")
        assert r.status_code == 401
        assert r.json()["code"] == "1078"


class TestUserSecret:
    @pytest.mark.asyncio
    async def test_wrong_secret_is_1083(self, api, user):
        r = await api.get("/accounts", user=SandboxUser(user.user_id, "wrong"))
        assert r.status_code == 401
        assert r.json()["code"] == "1083"

    @pytest.mark.asyncio
    async def test_expired_secret_is_1083(self, api, user, state):
        state.expire_user_secret(user.user_id)
        r = await api.get("/accounts", user=user)
        assert r.status_code == 401
        assert r.json()["code"] == "1083"

    @pytest.mark.asyncio
    async def test_missing_user_params_is_400(self, api):
        r = await api.get("/accounts")
        assert r.status_code == 400
        assert r.json()["code"] == "1012"


class TestCommonHeaders:
    @pytest.mark.asyncio
    async def test_every_response_has_request_id_and_rate_headers(self, api, user):
        ok = await api.get("/accounts", user=user)
        refused = await api.get("/accounts", user=user, consumer_key="nope")
        for r in (ok, refused):
            assert r.headers["X-Request-ID"]
            assert r.headers["X-RateLimit-Limit"] == "250"
            assert "X-RateLimit-Remaining" in r.headers
            assert "X-RateLimit-Reset" in r.headers
        assert ok.headers["X-Request-ID"] != refused.headers["X-Request-ID"]

    @pytest.mark.asyncio
    async def test_unknown_path_is_404(self, api):
        r = await api.get("/nothing/here")
        assert r.status_code == 404
        assert r.json()["code"] == "1011"
