"""Happy paths of every endpoint; each response is checked against the spec by the transport."""

from __future__ import annotations

import pytest

from tests.sandbox.snaptrade.conftest import SandboxUser, connect


class TestStatus:
    @pytest.mark.asyncio
    async def test_status_is_unsigned(self, http):
        r = await http.get("/")
        assert r.status_code == 200
        assert r.json()["online"] is True
        assert r.headers["X-Request-ID"]

    @pytest.mark.asyncio
    async def test_status_under_api_prefix(self, http):
        r = await http.get("/api/v1/")
        assert r.status_code == 200
        assert r.json()["online"] is True


class TestUsers:
    @pytest.mark.asyncio
    async def test_register_list_delete(self, api, user):
        r = await api.get("/snapTrade/listUsers")
        assert r.json() == ["alice"]
        r = await api.delete("/snapTrade/deleteUser", params={"userId": "alice"})
        assert r.status_code == 200
        assert r.json()["status"] == "deleted"
        assert (await api.get("/snapTrade/listUsers")).json() == []

    @pytest.mark.asyncio
    async def test_register_twice_is_400(self, api, user):
        r = await api.post("/snapTrade/registerUser", json_body={"userId": "alice"})
        assert r.status_code == 400
        assert r.json()["code"] == "1012"

    @pytest.mark.asyncio
    async def test_delete_unknown_is_404(self, api):
        r = await api.delete("/snapTrade/deleteUser", params={"userId": "nobody"})
        assert r.status_code == 404
        assert r.json() == {
            "detail": "User nobody not found",
            "status_code": 404,
            "code": "1011",
        }

    @pytest.mark.asyncio
    async def test_reset_secret_rotates(self, api, user):
        r = await api.post(
            "/snapTrade/resetUserSecret",
            json_body={"userId": user.user_id, "userSecret": user.secret},
        )
        assert r.status_code == 200
        new = r.json()["userSecret"]
        assert new != user.secret
        assert (await api.get("/accounts", user=user)).status_code == 401
        fresh = SandboxUser(user.user_id, new)
        assert (await api.get("/accounts", user=fresh)).status_code == 200

    @pytest.mark.asyncio
    async def test_login_returns_portal_link(self, api, user):
        r = await api.post(
            "/snapTrade/login",
            user=user,
            json_body={"broker": "SCHWAB", "connectionType": "trade", "immediateRedirect": True},
        )
        assert r.status_code == 200
        body = r.json()
        assert body["redirectURI"].startswith("http://sandbox.test/portal/connect?token=")
        assert f"sessionId={body['sessionId']}" in body["redirectURI"]
        assert "broker=SCHWAB" in body["redirectURI"]

    @pytest.mark.asyncio
    async def test_login_rejects_bad_connection_type(self, api, user):
        r = await api.post("/snapTrade/login", user=user, json_body={"connectionType": "admin"})
        assert r.status_code == 400
        assert r.json()["code"] == "1012"


class TestConnections:
    @pytest.mark.asyncio
    async def test_list_and_detail(self, api, user, schwab):
        r = await api.get("/authorizations", user=user)
        assert [a["id"] for a in r.json()] == [schwab["id"]]
        r = await api.get(f"/authorizations/{schwab['id']}", user=user)
        assert r.json()["brokerage"]["slug"] == "SCHWAB"
        assert r.json()["type"] == "trade"

    @pytest.mark.asyncio
    async def test_unknown_is_404(self, api, user):
        r = await api.get("/authorizations/00000000-0000-0000-0000-000000000000", user=user)
        assert r.status_code == 404
        assert r.json()["code"] == "1011"

    @pytest.mark.asyncio
    async def test_refresh_then_too_soon(self, api, user, schwab, clock):
        path = f"/authorizations/{schwab['id']}/refresh"
        assert (await api.post(path, user=user)).status_code == 200
        r = await api.post(path, user=user)
        assert r.status_code == 429
        assert "Retry-After" in r.headers
        clock.advance(61)
        assert (await api.post(path, user=user)).status_code == 200

    @pytest.mark.asyncio
    async def test_disabled_connection_is_402(self, api, user, schwab, account_id, state):
        state.disable_authorization(schwab["id"])
        r = await api.post(f"/authorizations/{schwab['id']}/refresh", user=user)
        assert r.status_code == 402
        assert r.json()["code"] == "3003"
        r = await api.get(f"/accounts/{account_id}/balances", user=user)
        assert r.status_code == 402

    @pytest.mark.asyncio
    async def test_transactions_sync(self, api, user, schwab):
        r = await api.post(f"/authorizations/{schwab['id']}/transactions/sync", user=user)
        assert r.status_code == 200
        assert r.json()["detail"]

    @pytest.mark.asyncio
    async def test_disable_endpoint(self, api, user, schwab):
        r = await api.post(f"/authorizations/{schwab['id']}/disable", user=user)
        assert r.status_code == 200
        detail = (await api.get(f"/authorizations/{schwab['id']}", user=user)).json()
        assert detail["disabled"] is True

    @pytest.mark.asyncio
    async def test_authorization_accounts(self, api, user, schwab):
        r = await api.get(f"/authorizations/{schwab['id']}/accounts", user=user)
        assert r.status_code == 200
        assert r.json()
        assert {a["brokerage_authorization"] for a in r.json()} == {schwab["id"]}

    @pytest.mark.asyncio
    async def test_delete_authorization_removes_accounts(self, api, user, schwab):
        r = await api.delete(f"/authorizations/{schwab['id']}", user=user)
        assert r.status_code == 204
        assert (await api.get("/accounts", user=user)).json() == []

    @pytest.mark.asyncio
    async def test_delete_connection(self, api, user, schwab):
        r = await api.delete(f"/connection/{schwab['id']}", user=user)
        assert r.status_code == 200
        assert r.json()["connection_id"] == schwab["id"]
        assert (await api.get("/authorizations", user=user)).json() == []


class TestAccounts:
    @pytest.mark.asyncio
    async def test_list_and_detail(self, api, user, account_id):
        r = await api.get(f"/accounts/{account_id}", user=user)
        assert r.status_code == 200
        assert r.json()["id"] == account_id

    @pytest.mark.asyncio
    async def test_balances(self, api, user, account_id):
        r = await api.get(f"/accounts/{account_id}/balances", user=user)
        assert r.status_code == 200
        assert r.json()[0]["currency"]["code"] == "USD"

    @pytest.mark.asyncio
    async def test_positions(self, api, user, account_id):
        r = await api.get(f"/accounts/{account_id}/positions", user=user)
        assert r.status_code == 200
        assert all(p["symbol"]["symbol"]["symbol"] for p in r.json())

    @pytest.mark.asyncio
    async def test_all_positions(self, api, user, account_id):
        r = await api.get(f"/accounts/{account_id}/positions/all", user=user)
        assert r.status_code == 200
        assert r.json()["results"]

    @pytest.mark.asyncio
    async def test_holdings(self, api, user, account_id):
        r = await api.get(f"/accounts/{account_id}/holdings", user=user)
        assert r.status_code == 200
        assert r.json()["account"]["id"] == account_id

    @pytest.mark.asyncio
    async def test_orders_and_v2(self, api, user, account_id):
        r = await api.get(f"/accounts/{account_id}/orders", user=user, params={"days": "90"})
        assert r.status_code == 200
        assert r.json()
        r = await api.get(f"/accounts/{account_id}/orders", user=user, params={"state": "open"})
        assert {o["status"] for o in r.json()} <= {"ACCEPTED", "PENDING"}
        r = await api.get(f"/accounts/{account_id}/orders/v2", user=user, params={"days": "90"})
        assert r.status_code == 200
        assert r.json()["orders"]

    @pytest.mark.asyncio
    async def test_order_details(self, api, user, account_id):
        orders = (await api.get(f"/accounts/{account_id}/orders", user=user)).json()
        order_id = orders[0]["brokerage_order_id"]
        r = await api.post(
            f"/accounts/{account_id}/orders/details",
            user=user,
            json_body={"brokerage_order_id": order_id},
        )
        assert r.json()["brokerage_order_id"] == order_id
        r = await api.get(f"/accounts/{account_id}/orders/details/v2/{order_id}", user=user)
        assert r.json()["brokerage_order_id"] == order_id

    @pytest.mark.asyncio
    async def test_activities_paginate(self, api, user, account_id):
        r = await api.get(f"/accounts/{account_id}/activities", user=user)
        total = r.json()["pagination"]["total"]
        assert total >= 2
        r = await api.get(
            f"/accounts/{account_id}/activities", user=user, params={"limit": "1", "offset": "1"}
        )
        assert len(r.json()["data"]) == 1
        r = await api.get(
            f"/accounts/{account_id}/activities", user=user, params={"type": "DIVIDEND"}
        )
        assert {a["type"] for a in r.json()["data"]} == {"DIVIDEND"}

    @pytest.mark.asyncio
    @pytest.mark.parametrize("suffix", ["recentOrders", "recentOrders/v2"])
    async def test_recent_orders(self, api, user, account_id, state, suffix):
        aapl = state.find_symbol("AAPL")
        body = {
            "account_id": account_id,
            "action": "BUY",
            "universal_symbol_id": aapl.id,
            "order_type": "Market",
            "time_in_force": "Day",
            "units": 1.0,
        }
        placed = (await api.post("/trade/place", user=user, json_body=body)).json()
        r = await api.get(f"/accounts/{account_id}/{suffix}", user=user)
        assert r.status_code == 200
        ids = [o["brokerage_order_id"] for o in r.json()["orders"]]
        assert ids == [placed["brokerage_order_id"]]

    @pytest.mark.asyncio
    async def test_other_users_account_is_404(self, api, user, account_id):
        r = await api.post("/snapTrade/registerUser", json_body={"userId": "bob"})
        bob = SandboxUser("bob", r.json()["userSecret"])
        r = await api.get(f"/accounts/{account_id}", user=bob)
        assert r.status_code == 404


class TestReferenceData:
    @pytest.mark.asyncio
    async def test_brokerages_flags(self, api):
        r = await api.get("/brokerages")
        by_slug = {b["slug"]: b for b in r.json()}
        for slug in ("SCHWAB", "ETRADE", "INTERACTIVE-BROKERS-FLEX", "ALPACA"):
            assert by_slug[slug]["allows_trading"] is True
        for slug in ("FIDELITY", "VANGUARD", "ROBINHOOD"):
            assert by_slug[slug]["allows_trading"] is False
        assert all("maintenance_mode" in b and "is_degraded" in b for b in r.json())

    @pytest.mark.asyncio
    async def test_brokerage_flags_are_mutable(self, api, state):
        state.brokerages["SCHWAB"].is_degraded = True
        by_slug = {b["slug"]: b for b in (await api.get("/brokerages")).json()}
        assert by_slug["SCHWAB"]["is_degraded"] is True

    @pytest.mark.asyncio
    async def test_authorization_types(self, api):
        r = await api.get("/brokerageAuthorizationTypes", params={"brokerage": "SCHWAB,FIDELITY"})
        kinds = {(t["brokerage"]["slug"], t["type"]) for t in r.json()}
        assert kinds == {("SCHWAB", "read"), ("SCHWAB", "trade"), ("FIDELITY", "read")}

    @pytest.mark.asyncio
    async def test_partner_info(self, api):
        r = await api.get("/snapTrade/partners")
        assert r.status_code == 200
        assert r.json()["slug"] == "TEST-CLIENT"

    @pytest.mark.asyncio
    async def test_exchanges(self, api):
        r = await api.get("/exchanges")
        assert {e["mic_code"] for e in r.json()} >= {"XNAS", "XNYS"}

    @pytest.mark.asyncio
    async def test_symbols(self, api):
        r = await api.get("/symbols/AAPL")
        assert r.status_code == 200
        assert r.json()["symbol"] == "AAPL"
        r = await api.post("/symbols", json_body={"substring": "AAP"})
        assert any(s["symbol"] == "AAPL" for s in r.json())


class TestSandboxConnections:
    @pytest.mark.asyncio
    async def test_trade_if_available_on_read_only_brokerage(self, api, user):
        auth = await connect(api, user, "FIDELITY", "trade-if-available")
        assert auth["type"] == "read"

    @pytest.mark.asyncio
    async def test_unknown_broker_is_404(self, api, user):
        r = await api.post("/sandbox/connections", user=user, json_body={"broker": "NOPE"})
        assert r.status_code == 404

    @pytest.mark.asyncio
    async def test_expire_secret_hook(self, api, http, user):
        r = await http.post(f"/sandbox/users/{user.user_id}/expire-secret")
        assert r.status_code == 200
        r = await api.get("/accounts", user=user)
        assert r.status_code == 401
        assert r.json()["code"] == "1083"


class TestCreateApp:
    def test_given_state_is_used(self):
        from brokerlink.sandbox.snaptrade import SandboxState, create_app

        state = SandboxState("C", "K")
        app = create_app(client_id="C", consumer_key="K", rate_limit=5, state=state)
        assert app.state.sandbox is state
        assert state.rate_limit == 5

    def test_state_for_other_credentials_is_refused(self):
        from brokerlink.sandbox.snaptrade import SandboxState, create_app

        with pytest.raises(ValueError, match="another client id"):
            create_app(client_id="C", consumer_key="K", state=SandboxState("X", "K"))
