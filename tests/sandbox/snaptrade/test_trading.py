"""Order impact, checked and force orders, idempotent client_order_id, cancel, read-only."""

from __future__ import annotations

import pytest

from tests.sandbox.snaptrade.conftest import connect


def _aapl_id(state) -> str:
    symbol = state.find_symbol("AAPL")
    assert symbol is not None
    return symbol.id


def _order(account_id: str, symbol_id: str, **extra) -> dict:
    body = {
        "account_id": account_id,
        "action": "BUY",
        "universal_symbol_id": symbol_id,
        "order_type": "Market",
        "time_in_force": "Day",
        "units": 1.0,
    }
    body.update(extra)
    return body


class TestImpactAndPlace:
    @pytest.mark.asyncio
    async def test_impact_then_place(self, api, user, account_id, state):
        r = await api.post(
            "/trade/impact", user=user, json_body=_order(account_id, _aapl_id(state))
        )
        assert r.status_code == 200
        trade_id = r.json()["trade"]["id"]
        assert r.json()["trade_impacts"][0]["account"] == account_id
        r = await api.post(f"/trade/{trade_id}", user=user)
        assert r.status_code == 200
        assert r.json()["status"] == "EXECUTED"
        again = await api.post(f"/trade/{trade_id}", user=user)
        assert again.status_code == 400

    @pytest.mark.asyncio
    async def test_unknown_trade_is_404(self, api, user, account_id):
        r = await api.post("/trade/00000000-0000-0000-0000-000000000000", user=user)
        assert r.status_code == 400
        assert r.json()["code"] == "1012"

    @pytest.mark.asyncio
    async def test_force_market_order_fills_and_moves_position(self, api, user, account_id, state):
        before = {
            p["symbol"]["symbol"]["symbol"]: p["units"]
            for p in (await api.get(f"/accounts/{account_id}/positions", user=user)).json()
        }
        r = await api.post("/trade/place", user=user, json_body=_order(account_id, _aapl_id(state)))
        assert r.status_code == 200
        assert r.json()["status"] == "EXECUTED"
        after = {
            p["symbol"]["symbol"]["symbol"]: p["units"]
            for p in (await api.get(f"/accounts/{account_id}/positions", user=user)).json()
        }
        assert after["AAPL"] == before.get("AAPL", 0) + 1

    @pytest.mark.asyncio
    async def test_place_by_ticker(self, api, user, account_id):
        body = _order(account_id, "", symbol="MSFT")
        del body["universal_symbol_id"]
        r = await api.post("/trade/place", user=user, json_body=body)
        assert r.status_code == 200
        assert r.json()["universal_symbol"]["symbol"] == "MSFT"

    @pytest.mark.asyncio
    async def test_client_order_id_is_idempotent(self, api, user, account_id, state):
        body = _order(account_id, _aapl_id(state), client_order_id="retry-me-1")
        first = await api.post("/trade/place", user=user, json_body=body)
        second = await api.post("/trade/place", user=user, json_body=body)
        assert first.status_code == second.status_code == 200
        assert first.json()["brokerage_order_id"] == second.json()["brokerage_order_id"]
        placed = [o for o in state.orders.values() if o.client_order_id == "retry-me-1"]
        assert len(placed) == 1

    @pytest.mark.asyncio
    async def test_validation_errors_are_400(self, api, user, account_id, state):
        r = await api.post(
            "/trade/place",
            user=user,
            json_body=_order(account_id, _aapl_id(state), order_type="Limit"),
        )
        assert r.status_code == 400
        assert r.json()["code"] == "1012"
        r = await api.post(
            "/trade/place", user=user, json_body=_order(account_id, _aapl_id(state), units=10**9)
        )
        assert r.status_code == 400


class TestCancel:
    @pytest.mark.asyncio
    async def test_cancel_open_limit_order(self, api, user, account_id, state):
        r = await api.post(
            "/trade/place",
            user=user,
            json_body=_order(
                account_id, _aapl_id(state), order_type="Limit", time_in_force="GTC", price=1.0
            ),
        )
        order_id = r.json()["brokerage_order_id"]
        assert r.json()["status"] == "ACCEPTED"
        r = await api.post(
            f"/accounts/{account_id}/trading/cancel",
            user=user,
            json_body={"brokerage_order_id": order_id},
        )
        assert r.status_code == 200
        assert r.json()["brokerage_order_id"] == order_id
        r = await api.post(
            f"/accounts/{account_id}/trading/cancel",
            user=user,
            json_body={"brokerage_order_id": order_id},
        )
        assert r.status_code == 400


class TestReadOnly:
    @pytest.mark.asyncio
    @pytest.mark.parametrize("broker", ["FIDELITY", "VANGUARD", "ROBINHOOD"])
    async def test_read_only_brokerage_refuses_trading(self, api, user, state, broker):
        auth = await connect(api, user, broker, "trade")
        accounts = [
            a
            for a in (await api.get("/accounts", user=user)).json()
            if a["brokerage_authorization"] == auth["id"]
        ]
        r = await api.post(
            "/trade/place", user=user, json_body=_order(accounts[0]["id"], _aapl_id(state))
        )
        assert r.status_code == 403
        assert r.json()["code"] == "1066"

    @pytest.mark.asyncio
    async def test_read_connection_refuses_trading(self, api, user, state):
        auth = await connect(api, user, "ALPACA", "read")
        account = next(
            a
            for a in (await api.get("/accounts", user=user)).json()
            if a["brokerage_authorization"] == auth["id"]
        )
        r = await api.post(
            "/trade/impact", user=user, json_body=_order(account["id"], _aapl_id(state))
        )
        assert r.status_code == 403

    @pytest.mark.asyncio
    async def test_maintenance_flag_is_exposed(self, api, user, account_id, state):
        state.brokerages["SCHWAB"].maintenance_mode = True
        r = await api.get("/brokerages")
        assert {b["slug"]: b for b in r.json()}["SCHWAB"]["maintenance_mode"] is True
        state.brokerages["SCHWAB"].maintenance_mode = False
