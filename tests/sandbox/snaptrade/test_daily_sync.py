"""SnapTrade's daily sync in the sandbox: every account of a working connection is re-dated and
announced by its own ACCOUNT_HOLDINGS_UPDATED, on `POST /sandbox/daily-sync` or every day at a
set time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

import httpx
import pytest

from brokerlink.sandbox.snaptrade import create_app
from brokerlink.sandbox.snaptrade.daily_sync import next_run
from tests.sandbox.snaptrade.conftest import CLIENT_ID, CONSUMER_KEY, SandboxUser, connect
from tests.sandbox.snaptrade.hooked import Hooked
from tests.sandbox.webhook_receiver import Receiver, running

pytestmark = pytest.mark.asyncio


async def _listing(hooked: Hooked, user: SandboxUser) -> dict[str, str]:
    """Each account's `sync_status.holdings.last_successful_sync`."""
    answer = await hooked.api.get("/accounts", user=user)
    assert answer.status_code == 200, answer.text
    return {a["id"]: a["sync_status"]["holdings"]["last_successful_sync"] for a in answer.json()}


async def test_every_account_is_redated_and_announced(hooked, clock):
    alice, bob = await hooked.user("alice"), await hooked.user("bob")
    schwab = await connect(hooked.api, alice, "SCHWAB")
    await connect(hooked.api, bob, "ALPACA")
    await hooked.events()
    before = {**await _listing(hooked, alice), **await _listing(hooked, bob)}
    positions = {
        account: (await hooked.api.get(f"/accounts/{account}/positions", user=alice)).json()
        for account in await _listing(hooked, alice)
    }
    clock.advance(3600)

    answer = await hooked.api.http.post("/sandbox/daily-sync", json={})

    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["accounts"]) == sorted(before)
    after = {**await _listing(hooked, alice), **await _listing(hooked, bob)}
    assert all(after[a] > before[a] for a in before)
    events = await hooked.events()
    assert sorted(e["accountId"] for e in events) == sorted(before)
    assert {e["eventType"] for e in events} == {"ACCOUNT_HOLDINGS_UPDATED"}
    for event in events:
        for part in ("total_value", "positions", "balances", "orders"):
            assert event["details"][part] == {"success": True, "error": None}
    alices = {e["accountId"] for e in events if e["brokerageAuthorizationId"] == schwab["id"]}
    assert alices == set(await _listing(hooked, alice))
    # Prices are fixed: a daily sync re-dates the holdings without moving them.
    for account, held in positions.items():
        again = await hooked.api.get(f"/accounts/{account}/positions", user=alice)
        assert [p["units"] for p in again.json()] == [p["units"] for p in held]


async def test_one_users_accounts_only(hooked, clock):
    alice, bob = await hooked.user("alice"), await hooked.user("bob")
    await connect(hooked.api, alice, "SCHWAB")
    await connect(hooked.api, bob, "ALPACA")
    await hooked.events()
    bobs = await _listing(hooked, bob)
    clock.advance(60)
    answer = await hooked.api.http.post("/sandbox/daily-sync", json={"userId": alice.user_id})
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["accounts"]) == sorted(await _listing(hooked, alice))
    assert await _listing(hooked, bob) == bobs
    assert {e["userId"] for e in await hooked.events()} == {alice.user_id}


async def test_a_broken_connection_is_not_synced(hooked, clock):
    alice = await hooked.user("alice")
    broken = await connect(hooked.api, alice, "SCHWAB")
    working = await connect(hooked.api, alice, "ALPACA")
    (await hooked.api.http.post(f"/sandbox/connections/{broken['id']}/break")).raise_for_status()
    await hooked.events()
    clock.advance(60)
    answer = await hooked.api.http.post("/sandbox/daily-sync")
    assert answer.status_code == 200, answer.text
    events = await hooked.events()
    assert events
    assert {e["brokerageAuthorizationId"] for e in events} == {working["id"]}
    assert len(answer.json()["accounts"]) == len(events)


async def test_an_unknown_user_or_a_bad_body_is_refused(hooked):
    http = hooked.api.http
    assert (await http.post("/sandbox/daily-sync", json={"userId": "nobody"})).status_code == 404
    assert (await http.post("/sandbox/daily-sync", json={"userId": 7})).status_code == 400
    assert (await http.post("/sandbox/daily-sync", json=[1])).status_code == 400


async def test_the_next_run_is_the_next_time_of_day():
    at = time(4, 30)
    assert next_run(datetime(2026, 12, 2, 3, 0, tzinfo=UTC), at) == datetime(
        2026, 12, 2, 4, 30, tzinfo=UTC
    )
    assert next_run(datetime(2026, 12, 2, 4, 30, tzinfo=UTC), at) == datetime(
        2026, 12, 3, 4, 30, tzinfo=UTC
    )


async def test_the_timer_runs_the_daily_sync_at_its_time():
    # A wall clock a fraction of a second before the set time: the timer fires once.
    soon = datetime.now(UTC).replace(microsecond=0)
    target = (soon.timestamp() + 1.0) // 1 * 1
    at = datetime.fromtimestamp(target, UTC).time()
    receiver = Receiver()
    app = create_app(
        client_id=CLIENT_ID,
        consumer_key=CONSUMER_KEY,
        webhook_url="https://receiver.test/snaptrade",
        webhook_transport=receiver.transport,
        daily_sync_at=at,
    )
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb") as http,
    ):
        state = app.state.sandbox
        user = state.register_user("alice")
        state.create_connection(user.user_id, "SCHWAB", "read")
        for _ in range(100):
            if app.state.daily_sync.runs:
                break
            await asyncio.sleep(0.05)
        assert app.state.daily_sync.runs == 1
        await app.state.webhooks.dispatcher.join()
        assert (await http.get("/sandbox/webhooks")).status_code == 200
    events = [r for r in receiver.requests if b"ACCOUNT_HOLDINGS_UPDATED" in r.content]
    assert len(events) == len([a for a in state.accounts.values() if a.user_id == user.user_id])
