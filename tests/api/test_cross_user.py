"""One user trying another's ids on every route: every attempt is refused, nothing changes.

User A links Schwab (trading) and Chase, adds a manual position and places an order. User B,
with a token of their own, tries A's connection, account, position, portfolio, user and order
ids on every route that takes one, found from the app itself, so a route added later is tried
too (or fails the table below until it is given ids to try).
"""

import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.fixtures.api import Route, api_routes, assert_error

pytestmark = pytest.mark.asyncio

BUY = {"side": "buy", "symbol": "AAPL", "order_type": "limit", "quantity": "1", "limit_price": "1"}

# A valid body for each route that takes one, so that a refusal is about the id and not the body.
BODIES: dict[str, Any] = {
    "POST /api/connections/{connection_id}/refresh": {"override": True},
    "POST /api/accounts/{account_id}/orders/preview": BUY,
    "POST /api/accounts/{account_id}/orders": BUY,
    "PATCH /api/manual-positions/{position_id}": {"quantity": "7"},
}
HEADERS: dict[str, dict[str, str]] = {
    "POST /api/accounts/{account_id}/orders": {"Idempotency-Key": "cross-user-attempt-1"},
}


async def _owner(api) -> tuple[Any, dict[str, Any]]:
    """User A with two connections, a manual position and an order; A's ids by kind."""
    a = await api.user()
    schwab = await api.connect(a, "Charles Schwab", need_trading=True)
    chase = await api.connect(a, "Chase")
    accounts = (await a.get("/api/accounts")).json()
    trading = next(x["id"] for x in accounts if x["capabilities"]["trading"])
    manual = await a.post("/api/manual-positions", json={"ticker": "TSLA", "quantity": "3"})
    assert manual.status_code == 201, manual.text
    linked = (await a.get("/api/positions")).json()[0]
    order = await a.post(
        f"/api/accounts/{trading}/orders",
        json=BUY,
        headers={"Idempotency-Key": f"owner-{uuid.uuid4().hex}"},
    )
    assert order.status_code == 201, order.text
    ids = {
        "connection_id": [schwab["id"], chase["id"]],
        "account_id": [a_["id"] for a_ in accounts],
        "position_id": [manual.json()["id"], linked["id"]],
        "portfolio_id": [(await a.get("/api/portfolio")).json()["id"]],
        "user_id": [a.id],
        "order_id": [order.json()["order_id"]],
        "trading_account_id": trading,
    }
    return a, ids


async def _snapshot(user) -> dict[str, Any]:
    connections = (await user.get("/api/connections")).json()
    accounts = (await user.get("/api/accounts")).json()
    trading = next(x["id"] for x in accounts if x["capabilities"]["trading"])
    orders = (await user.get(f"/api/accounts/{trading}/orders")).json()
    return {
        "connections": [
            (c["id"], c["status"], c["last_manual_refresh_at"], len(c["accounts"]))
            for c in connections
        ],
        "accounts": [(x["id"], x["status"], x["positions"], x["balances"]) for x in accounts],
        "positions": (await user.get("/api/positions")).json(),
        "manual": (await user.get("/api/manual-positions")).json(),
        "holdings": (await user.get("/api/portfolio")).json()["holdings"],
        "orders": sorted((o["order_id"], o["status"]) for o in orders),
    }


def _calls(route: Route, ids: dict[str, Any]) -> list[str]:
    """The route's path filled with each of A's ids (orders: A's order on A's account)."""
    params = route.path_params
    unknown = set(params) - set(ids)
    assert not unknown, f"{route}: no ids to try for {unknown}; add them to the test"
    if params == ["account_id", "order_id"]:
        return [
            route.path.replace("{account_id}", str(ids["trading_account_id"])).replace(
                "{order_id}", ids["order_id"][0]
            )
        ]
    (name,) = params
    return [route.path.replace("{" + name + "}", str(value)) for value in ids[name]]


class TestAnotherUsersIds:
    async def test_every_route_with_a_path_id_is_404_and_changes_nothing(self, api):
        a, ids = await _owner(api)
        b = await api.user()
        before = await _snapshot(a)
        routes = [r for r in api_routes(api.app) if r.path_params]
        assert len(routes) >= 14
        wrong = []
        tried = 0
        for route in routes:
            for path in _calls(route, ids):
                response = await b.request(
                    route.method,
                    path,
                    json=BODIES.get(str(route)),
                    headers=HEADERS.get(str(route), {}),
                )
                tried += 1
                try:
                    assert_error(response, 404)
                except AssertionError:
                    wrong.append(f"{route.method} {path}: {response.status_code} {response.text}")
        assert not wrong, "\n".join(wrong)
        assert tried >= 25
        await api.state.syncs.drain()
        assert await _snapshot(a) == before

    async def test_ids_in_bodies_are_refused_and_change_nothing(self, api):
        a, ids = await _owner(api)
        b = await api.user()
        before = await _snapshot(a)
        schwab, chase = ids["connection_id"]
        attempts = [
            ("POST", "/api/manual-positions", {"ticker": "X", "quantity": "1", "account_id": 0}),
            ("PUT", "/api/duplicates/preference", {"keep_account_id": 0}),
            ("POST", "/api/snaptrade/refresh-holdings", {"connection_id": schwab}),
            ("POST", "/api/plaid/refresh-holdings", {"connection_id": chase}),
        ]
        wrong = []
        for method, path, body in attempts:
            targets = ids["account_id"] if 0 in body.values() else [None]
            for target in targets:
                sent = {k: (target if v == 0 else v) for k, v in body.items()}
                response = await b.request(method, path, json=sent)
                if response.status_code not in (404, 422):
                    wrong.append(f"{method} {path} {sent}: {response.status_code} {response.text}")
                else:
                    assert_error(response, response.status_code)
        assert not wrong, "\n".join(wrong)
        # B's own views never show A's data.
        assert (await b.get("/api/accounts")).json() == []
        assert (await b.get("/api/positions")).json() == []
        assert (await b.get("/api/manual-positions")).json() == []
        assert (await b.get("/api/portfolio")).json()["holdings"] == []
        await api.state.syncs.drain()
        assert await _snapshot(a) == before

    async def test_completing_another_users_signed_state_is_404(self, api):
        a = await api.user()
        b = await api.user()
        started = (await a.post("/api/connections", json={"institution": "Chase"})).json()
        snap = (
            await a.post("/api/snaptrade/create-connection-url", json={"broker": "SCHWAB"})
        ).json()
        token = (await a.post("/api/plaid/create-link-token", json={})).json()
        for path, body in (
            ("/api/connections/complete", {"state": started["state"]}),
            (
                "/api/connections/complete",
                {"state": snap["state"], "status": "SUCCESS", "connection_id": "x"},
            ),
            (
                "/api/plaid/exchange-public-token",
                {"state": token["state"], "public_token": await api.plaid_public_token()},
            ),
        ):
            response = await b.post(path, json=body)
            assert_error(response, 404, "not_found")
        assert (await a.get("/api/connections")).json() == []
        assert (await b.get("/api/connections")).json() == []

    async def test_another_users_reconnect_state_cannot_complete_it(self, api):
        a = await api.user()
        b = await api.user()
        chase = await api.connect(a, "Chase")
        flow = (await a.post(f"/api/connections/{chase['id']}/reconnect")).json()
        response = await b.post("/api/connections/complete", json={"state": flow["state"]})
        assert_error(response, 404, "not_found")
        assert (await b.get("/api/connections")).json() == []

    async def test_manual_positions_stay_with_their_owner(self, api):
        a = await api.user()
        b = await api.user()
        added = (
            await a.post("/api/manual-positions", json={"ticker": "TSLA", "quantity": "3"})
        ).json()
        assert_error(
            await b.patch(f"/api/manual-positions/{added['id']}", json={"quantity": "0"}), 404
        )
        assert_error(await b.delete(f"/api/manual-positions/{added['id']}"), 404)
        (kept,) = (await a.get("/api/manual-positions")).json()
        assert Decimal(kept["quantity"]) == 3
