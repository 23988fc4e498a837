"""The SnapTrade sandbox sends a signed webhook for each state change, to the client's URL.

Each delivery is checked against the HMAC of research notes §1.5, computed here.
"""

from __future__ import annotations

import httpx
import pytest

from brokerlink.sandbox.snaptrade import create_app
from tests.fixtures.openapi import SpecCheckingTransport
from tests.sandbox.snaptrade.conftest import (
    CLIENT_ID,
    CONSUMER_KEY,
    SandboxUser,
    SignedClient,
    connect,
)
from tests.sandbox.snaptrade.hooked import HOOK, Hooked
from tests.sandbox.webhook_receiver import Receiver, running

pytestmark = pytest.mark.asyncio


async def _accounts(hooked: Hooked, user: SandboxUser, auth_id: str) -> list[str]:
    r = await hooked.api.get("/accounts", user=user)
    return [a["id"] for a in r.json() if a["brokerage_authorization"] == auth_id]


async def test_registering_a_user(hooked):
    user = await hooked.user()
    [event] = await hooked.events()
    assert (event["eventType"], event["userId"]) == ("USER_REGISTERED", user.user_id)


async def test_a_new_connection_then_its_accounts(hooked):
    user = await hooked.user()
    await hooked.events()
    auth = await connect(hooked.api, user, "SCHWAB")
    added, *accounts = await hooked.events()
    assert added["eventType"] == "CONNECTION_ADDED"
    assert added["brokerageAuthorizationId"] == auth["id"]
    assert added["brokerageId"] == auth["brokerage"]["id"]
    assert added["userId"] == user.user_id
    assert {a["eventType"] for a in accounts} == {"NEW_ACCOUNT_AVAILABLE"}
    assert [a["accountId"] for a in accounts] == await _accounts(hooked, user, auth["id"])
    assert {a["brokerageAuthorizationId"] for a in accounts} == {auth["id"]}
    ids = [e["webhookId"] for e in (added, *accounts)]
    assert len(set(ids)) == len(ids)


async def test_a_refresh_updates_every_account_of_the_connection(hooked):
    user = await hooked.user()
    auth = await connect(hooked.api, user, "SCHWAB")
    await hooked.events()
    r = await hooked.api.post(f"/authorizations/{auth['id']}/refresh", user=user)
    assert r.status_code == 200
    events = await hooked.events()
    assert {e["eventType"] for e in events} == {"ACCOUNT_HOLDINGS_UPDATED"}
    assert [e["accountId"] for e in events] == await _accounts(hooked, user, auth["id"])
    for event in events:
        assert event["brokerageId"] == auth["brokerage"]["id"]
        assert event["brokerageAuthorizationId"] == auth["id"]
        for part in ("total_value", "positions", "balances", "orders"):
            assert event["details"][part] == {"success": True, "error": None}


async def test_moving_an_accounts_holdings(hooked, clock):
    user = await hooked.user()
    auth = await connect(hooked.api, user, "SCHWAB")
    account_id, *_ = await _accounts(hooked, user, auth["id"])
    await hooked.events()
    path = f"/accounts/{account_id}/positions"
    before = {
        p["symbol"]["symbol"]["symbol"]: p["units"]
        for p in (await hooked.api.get(path, user=user)).json()
    }

    async def holdings_synced():
        [listed] = [
            a
            for a in (await hooked.api.get("/accounts", user=user)).json()
            if a["id"] == account_id
        ]
        return listed["sync_status"]["holdings"]["last_successful_sync"]

    linked = await holdings_synced()
    clock.advance(60)
    moved = await hooked.api.http.post(
        f"/sandbox/accounts/{account_id}/move-holdings", json={"units": "2"}
    )
    assert moved.status_code == 200, moved.text
    assert await holdings_synced() > linked  # dated, so a Daily-plan client reads them again
    after = {
        p["symbol"]["symbol"]["symbol"]: p["units"]
        for p in (await hooked.api.get(path, user=user)).json()
    }
    assert after == {ticker: units + 2 for ticker, units in before.items()}
    [event] = await hooked.events()
    assert (event["eventType"], event["accountId"]) == ("ACCOUNT_HOLDINGS_UPDATED", account_id)


async def test_moving_needs_a_known_account_and_a_number(hooked):
    http = hooked.api.http
    assert (await http.post("/sandbox/accounts/nope/move-holdings", json={})).status_code == 404
    user = await hooked.user()
    auth = await connect(hooked.api, user, "SCHWAB")
    account_id, *_ = await _accounts(hooked, user, auth["id"])
    bad = await http.post(f"/sandbox/accounts/{account_id}/move-holdings", json={"units": "x"})
    assert bad.status_code == 400


async def test_a_connection_breaks_and_is_fixed(hooked):
    user = await hooked.user()
    auth = await connect(hooked.api, user, "SCHWAB")
    await hooked.events()
    r = await hooked.api.post(f"/authorizations/{auth['id']}/disable", user=user)
    assert r.status_code == 200
    [broken] = await hooked.events()
    assert (broken["eventType"], broken["brokerageAuthorizationId"]) == (
        "CONNECTION_BROKEN",
        auth["id"],
    )
    r = await hooked.api.http.post(f"/sandbox/connections/{auth['id']}/repair")
    assert r.status_code == 200
    assert r.json()["disabled"] is False
    [fixed] = await hooked.events()
    assert (fixed["eventType"], fixed["brokerageAuthorizationId"]) == (
        "CONNECTION_FIXED",
        auth["id"],
    )
    # The sandbox's own break control announces the same.
    assert (
        await hooked.api.http.post(f"/sandbox/connections/{auth['id']}/break")
    ).status_code == 200
    assert [e["eventType"] for e in await hooked.events()] == ["CONNECTION_BROKEN"]


async def test_deleting_a_connection_removes_its_accounts(hooked):
    user = await hooked.user()
    auth = await connect(hooked.api, user, "SCHWAB")
    account_ids = await _accounts(hooked, user, auth["id"])
    await hooked.events()
    r = await hooked.api.delete(f"/connection/{auth['id']}", user=user)
    assert r.status_code == 200
    *removed, deleted = await hooked.events()
    assert [(e["eventType"], e["accountId"]) for e in removed] == [
        ("ACCOUNT_REMOVED", a) for a in account_ids
    ]
    assert (deleted["eventType"], deleted["brokerageAuthorizationId"]) == (
        "CONNECTION_DELETED",
        auth["id"],
    )
    assert deleted["brokerageId"] == auth["brokerage"]["id"]


async def test_deleting_a_user(hooked):
    user = await hooked.user()
    await connect(hooked.api, user, "SCHWAB")
    await hooked.events()
    r = await hooked.api.delete("/snapTrade/deleteUser", params={"userId": user.user_id})
    assert r.status_code == 200
    [event] = await hooked.events()
    assert (event["eventType"], event["userId"]) == ("USER_DELETED", user.user_id)


def _order(account_id: str, symbol_id: str, **extra) -> dict:
    return {
        "account_id": account_id,
        "action": "BUY",
        "universal_symbol_id": symbol_id,
        "order_type": "Market",
        "time_in_force": "Day",
        "units": 1.0,
        **extra,
    }


async def test_trades_filled_and_cancelled(hooked):
    user = await hooked.user()
    auth = await connect(hooked.api, user, "SCHWAB", "trade")
    account_id, *_ = await _accounts(hooked, user, auth["id"])
    symbol = hooked.app.state.sandbox.find_symbol("AAPL")
    await hooked.events()
    filled = await hooked.api.post(
        "/trade/place", user=user, json_body=_order(account_id, symbol.id)
    )
    assert filled.json()["status"] == "EXECUTED"
    [trade] = await hooked.events()
    assert trade["eventType"] == "TRADE_UPDATE"
    assert trade["webookId"] == trade["webhookId"]
    assert trade["accountId"] == account_id
    [order] = trade["details"]["orders"]
    assert (order["brokerage_order_id"], order["status"]) == (
        filled.json()["brokerage_order_id"],
        "EXECUTED",
    )
    assert isinstance(order["execution_price"], str)
    assert order["legs"][0]["instrument"]["symbol"] == "AAPL"

    resting = await hooked.api.post(
        "/trade/place",
        user=user,
        json_body=_order(account_id, symbol.id, order_type="Limit", time_in_force="GTC", price=1.0),
    )
    assert await hooked.events() == []  # an order resting open changes nothing yet
    order_id = resting.json()["brokerage_order_id"]
    r = await hooked.api.post(
        f"/accounts/{account_id}/trading/cancel",
        user=user,
        json_body={"brokerage_order_id": order_id},
    )
    assert r.status_code == 200
    [cancelled] = await hooked.events()
    assert cancelled["details"]["orders"][0]["brokerage_order_id"] == order_id
    assert cancelled["details"]["orders"][0]["status"] == "CANCELED"


async def test_nothing_is_sent_without_a_url(clock, spec_validator):
    receiver = Receiver()
    app = create_app(
        client_id=CLIENT_ID,
        consumer_key=CONSUMER_KEY,
        clock=clock,
        webhook_transport=receiver.transport,
    )
    transport = SpecCheckingTransport(httpx.ASGITransport(app=app), spec_validator)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http,
    ):
        hooked = Hooked(app, SignedClient(http, clock), receiver)
        user = await hooked.user()
        await connect(hooked.api, user, "SCHWAB")
        assert await hooked.events() == []
        assert (await http.get("/sandbox/webhooks")).json() == []
        assert (await http.get("/sandbox/webhook")).json() == {"url": None}

        set_url = await http.put("/sandbox/webhook", json={"url": HOOK})
        assert set_url.json() == {"url": HOOK}
        await hooked.user("bob")
        [event] = await hooked.events()
        assert event["eventType"] == "USER_REGISTERED"

        assert (await http.delete("/sandbox/webhook")).json() == {"url": None}
        await hooked.user("carol")
        assert await hooked.events() == []


@pytest.mark.parametrize("url", ["ftp://receiver.test/x", "not a url", 7])
async def test_the_url_must_be_http(hooked, url):
    r = await hooked.api.http.put("/sandbox/webhook", json={"url": url})
    assert r.status_code == 400
    assert (await hooked.api.http.get("/sandbox/webhook")).json() == {"url": HOOK}
