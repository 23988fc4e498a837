"""/api/connections and /api/sync: start a provider's flow, complete it, list, reconnect,
remove, refresh (cost-guarded) and sync."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from brokerlink.cli.demo import approve_in_portal, log_in_hosted_link
from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _start(user, institution, **extra):
    response = await user.post("/api/connections", json={"institution": institution, **extra})
    assert response.status_code == 201, response.text
    return response.json()


class TestStartConnection:
    async def test_snaptrade_returns_the_portal_url(self, api):
        user = await api.user()
        start = await _start(user, "Charles Schwab", need_trading=True)
        assert start["provider"] == "snaptrade"
        assert start["url"].startswith("http://snaptrade.sandbox/portal/connect?")
        assert "broker=SCHWAB" in start["url"]
        assert "SnapTrade" in start["reason"]
        assert start["fallback_used"] is False
        assert start["state"]
        assert start["link_token"] is None
        # SnapTrade bills per connected user: the first connection costs the monthly fee.
        assert Decimal(start["monthly_cost"]) > 0

    async def test_plaid_returns_the_hosted_link_url(self, api):
        user = await api.user()
        start = await _start(user, "Chase")
        assert start["provider"] == "plaid"
        assert start["url"].startswith("http://plaid.sandbox/hosted-link/")
        assert start["link_token"].startswith("link-sandbox-")
        assert "Plaid" in start["reason"]
        assert Decimal(start["monthly_cost"]) == Decimal("0.18")
        assert start["state"]

    async def test_starting_calls_the_provider_and_stores_nothing(self, api):
        user = await api.user()
        before = api.stack.plaid_wire.total
        await _start(user, "Chase")
        assert api.stack.plaid_wire.total > before
        assert (await user.get("/api/connections")).json() == []

    async def test_a_provider_failure_is_an_error_with_its_reason(self, api):
        user = await api.user()
        api.faults("plaid", error_rate=1.0, error_status=500)
        response = await user.post("/api/connections", json={"institution": "Chase"})
        error = assert_error(response, 502, "provider_unavailable")
        assert error["provider"] == "plaid"

    async def test_a_missing_institution_names_the_field(self, api):
        user = await api.user()
        response = await user.post("/api/connections", json={"need_trading": True})
        assert_error(response, 422, "validation_error", field="institution")

    async def test_an_unknown_institution_is_answered_without_a_500(self, api):
        user = await api.user()
        response = await user.post("/api/connections", json={"institution": "Nowhere Bank Zzz"})
        assert response.status_code < 500, response.text


class TestCompleteConnection:
    async def test_the_first_sync_runs_in_the_background(self, api):
        user = await api.user()
        done = await api.connect(user, "Charles Schwab", need_trading=True)
        assert done["provider"] == "snaptrade"
        assert done["status"] == "active"
        listed = (await user.get("/api/connections")).json()
        (connection,) = listed
        assert connection["id"] == done["id"]
        assert connection["last_synced_at"] is not None
        assert connection["accounts"]
        for account in connection["accounts"]:
            assert account["status"] == "fresh"
            assert account["stale"] is False
            assert account["last_synced_at"] is not None
        individual = next(a for a in connection["accounts"] if "Individual" in a["name"])
        assert individual["positions"] > 0

    async def test_plaid_completes_from_the_hosted_link_session(self, api):
        user = await api.user()
        done = await api.connect(user, "Chase")
        assert done["provider"] == "plaid"
        assert done["institution"] == "Chase"
        accounts = (await user.get("/api/accounts")).json()
        assert {a["status"] for a in accounts} == {"fresh"}
        assert len(accounts) == 4

    async def test_a_cancelled_flow_is_409_and_connects_nothing(self, api):
        user = await api.user()
        start = await _start(user, "Charles Schwab")
        response = await user.post(
            "/api/connections/complete", json={"state": start["state"], "status": "CANCELLED"}
        )
        error = assert_error(response, 409, "link_cancelled")
        assert "cancelled" in error["message"]
        assert (await user.get("/api/connections")).json() == []

    async def test_a_tampered_state_is_422_naming_state(self, api):
        user = await api.user()
        start = await _start(user, "Charles Schwab")
        body, mac = start["state"].split(".")
        forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
        for state in (forged, "not-a-state", start["state"] + "x", "." * 10):
            response = await user.post(
                "/api/connections/complete",
                json={"state": state, "status": "SUCCESS", "connection_id": "x"},
            )
            assert_error(response, 422, "validation_error", field="state")

    async def test_an_expired_state_is_422_naming_state(self, api):
        user = await api.user()
        start = await _start(user, "Chase")
        await log_in_hosted_link(api.browser(), start["url"])
        api.clock.advance(timedelta(hours=1, seconds=1))
        response = await user.post("/api/connections/complete", json={"state": start["state"]})
        error = assert_error(response, 422, "validation_error", field="state")
        assert "expired" in error["message"]
        assert (await user.get("/api/connections")).json() == []

    async def test_snaptrade_needs_the_connection_id(self, api):
        user = await api.user()
        start = await _start(user, "Charles Schwab")
        response = await user.post(
            "/api/connections/complete", json={"state": start["state"], "status": "SUCCESS"}
        )
        assert_error(response, 422, "validation_error", field="connection_id")

    async def test_an_unfinished_plaid_session_is_refused(self, api):
        user = await api.user()
        start = await _start(user, "Chase")
        response = await user.post("/api/connections/complete", json={"state": start["state"]})
        assert 400 <= response.status_code < 500, response.text
        assert_error(response, response.status_code)
        assert (await user.get("/api/connections")).json() == []


class TestListConnections:
    async def test_a_new_user_has_none(self, api):
        user = await api.user()
        response = await user.get("/api/connections")
        assert response.status_code == 200
        assert response.json() == []

    async def test_lists_each_connection_with_its_accounts_and_freshness(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        await api.connect(user, "Chase")
        listed = {c["provider"]: c for c in (await user.get("/api/connections")).json()}
        assert set(listed) == {"snaptrade", "plaid"}
        assert listed["plaid"]["institution"] == "Chase"
        assert listed["snaptrade"]["institution"] == "Charles Schwab"
        for connection in listed.values():
            assert connection["status"] == "active"
            assert "next_refresh_allowed_at" in connection
            assert all(a["connection_id"] == connection["id"] for a in connection["accounts"])


class TestReconnect:
    async def test_snaptrade_reconnect_opens_the_portal_for_the_same_connection(self, api):
        user = await api.user()
        done = await api.connect(user, "Charles Schwab", need_trading=True)
        response = await user.post(f"/api/connections/{done['id']}/reconnect")
        assert response.status_code == 201, response.text
        flow = response.json()
        assert flow["provider"] == "snaptrade"
        assert flow["url"].startswith("http://snaptrade.sandbox/portal/")
        assert "never a second" in flow["reason"]
        await approve_in_portal(api.browser(), flow["url"], "")
        again = await user.post(
            "/api/connections/complete", json={"state": flow["state"], "status": "SUCCESS"}
        )
        assert again.status_code == 200, again.text
        assert again.json()["id"] == done["id"]
        assert len((await user.get("/api/connections")).json()) == 1

    async def test_plaid_reconnect_opens_link_in_update_mode_for_the_same_item(self, api):
        user = await api.user()
        done = await api.connect(user, "Chase")
        response = await user.post(f"/api/connections/{done['id']}/reconnect")
        assert response.status_code == 201, response.text
        flow = response.json()
        assert flow["provider"] == "plaid"
        assert flow["url"].startswith("http://plaid.sandbox/hosted-link/")
        await log_in_hosted_link(api.browser(), flow["url"])
        again = await user.post("/api/connections/complete", json={"state": flow["state"]})
        assert again.status_code == 200, again.text
        assert again.json()["id"] == done["id"]
        assert len((await user.get("/api/connections")).json()) == 1

    async def test_an_unknown_connection_is_404(self, api):
        user = await api.user()
        response = await user.post("/api/connections/999999/reconnect")
        assert_error(response, 404, "not_found")


class TestRemoveConnection:
    async def test_remove_deletes_the_connection_and_its_accounts(self, api):
        user = await api.user()
        schwab = await api.connect(user, "Charles Schwab", need_trading=True)
        chase = await api.connect(user, "Chase")
        chase_accounts = [
            a["id"] for a in (await user.get("/api/accounts")).json() if a["provider"] == "plaid"
        ]
        response = await user.delete(f"/api/connections/{chase['id']}")
        assert response.status_code == 204
        assert [c["id"] for c in (await user.get("/api/connections")).json()] == [schwab["id"]]
        assert {a["provider"] for a in (await user.get("/api/accounts")).json()} == {"snaptrade"}
        for account_id in chase_accounts:
            assert_error(await user.get(f"/api/accounts/{account_id}"), 404, "not_found")
        positions = (await user.get("/api/positions")).json()
        assert all(p["account_id"] not in chase_accounts for p in positions)
        portfolio = (await user.get("/api/portfolio")).json()
        assert portfolio["providers"] == ["snaptrade"]

    async def test_remove_ends_the_connection_at_the_provider(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        await user.delete(f"/api/connections/{chase['id']}")
        assert api.stack.plaid_wire.paths["/item/remove"] == 1

    async def test_removing_twice_is_404(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        assert (await user.delete(f"/api/connections/{chase['id']}")).status_code == 204
        assert_error(await user.delete(f"/api/connections/{chase['id']}"), 404, "not_found")

    async def test_a_provider_failure_keeps_everything(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        api.faults("plaid", error_rate=1.0, error_status=500)
        response = await user.delete(f"/api/connections/{chase['id']}")
        assert_error(response, 502, "provider_unavailable")
        api.faults("plaid")
        assert [c["id"] for c in (await user.get("/api/connections")).json()] == [chase["id"]]


class TestRefreshConnection:
    async def test_a_second_plaid_refresh_is_429_with_the_reason_and_next_time(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        first = await user.post(f"/api/connections/{chase['id']}/refresh")
        assert first.status_code == 200, first.text
        assert first.json()["provider"] == "plaid"
        assert first.json()["sync"] == "started"
        second = await user.post(f"/api/connections/{chase['id']}/refresh")
        error = assert_error(second, 429, "refresh_too_soon")
        assert "24 h" in error["reason"]
        assert error["can_override"] is True
        next_at = _when(error["next_allowed_at"])
        assert timedelta(hours=23) < next_at - api.clock() <= timedelta(hours=24)
        assert int(second.headers["retry-after"]) > 0

    async def test_the_refusal_makes_no_provider_call(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        await user.post(f"/api/connections/{chase['id']}/refresh")
        await api.state.syncs.drain()
        before = api.stack.plaid_wire.total
        await user.post(f"/api/connections/{chase['id']}/refresh")
        assert api.stack.plaid_wire.total == before

    async def test_override_refreshes_inside_the_window(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        await user.post(f"/api/connections/{chase['id']}/refresh")
        response = await user.post(
            f"/api/connections/{chase['id']}/refresh", json={"override": True}
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] is True

    async def test_allowed_again_after_24_hours(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        await user.post(f"/api/connections/{chase['id']}/refresh")
        api.clock.advance(timedelta(hours=24))
        response = await user.post(f"/api/connections/{chase['id']}/refresh")
        assert response.status_code == 200, response.text

    async def test_the_next_allowed_time_shows_on_the_connection(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        await user.post(f"/api/connections/{chase['id']}/refresh")
        (listed,) = (await user.get("/api/connections")).json()
        assert listed["last_manual_refresh_at"] is not None
        assert _when(listed["next_refresh_allowed_at"]) > api.clock()

    async def test_snaptrade_refreshes(self, api):
        user = await api.user()
        schwab = await api.connect(user, "Charles Schwab", need_trading=True)
        response = await user.post(f"/api/connections/{schwab['id']}/refresh")
        assert response.status_code == 200, response.text
        assert response.json()["provider"] == "snaptrade"
        assert response.json()["accepted"] is True

    async def test_snaptrades_own_throttle_is_the_same_refusal(self, api):
        user = await api.user()
        schwab = await api.connect(user, "Charles Schwab", need_trading=True)
        await user.post(f"/api/connections/{schwab['id']}/refresh")
        again = await user.post(f"/api/connections/{schwab['id']}/refresh")
        error = assert_error(again, 429, "refresh_too_soon")
        # Plain words with the next time, and no override: SnapTrade would refuse it too.
        assert "SnapTrade refreshed Charles Schwab a short while ago" in error["reason"]
        assert "Try again after" in error["message"]
        assert error["can_override"] is False
        assert _when(error["next_allowed_at"]) > api.clock()
        forced = await user.post(
            f"/api/connections/{schwab['id']}/refresh", json={"override": True}
        )
        assert assert_error(forced, 429, "refresh_too_soon")["can_override"] is False

    async def test_an_unknown_connection_is_404(self, api):
        user = await api.user()
        assert_error(await user.post("/api/connections/999999/refresh"), 404, "not_found")


class TestRefreshAll:
    async def test_reports_a_result_per_connection(self, api):
        user = await api.user()
        schwab = await api.connect(user, "Charles Schwab", need_trading=True)
        chase = await api.connect(user, "Chase")
        first = await user.post("/api/connections/refresh-all")
        assert first.status_code == 200, first.text
        results = {item["connection_id"]: item for item in first.json()}
        assert set(results) == {schwab["id"], chase["id"]}
        assert {item["result"] for item in results.values()} == {"refreshed"}
        again = await user.post("/api/connections/refresh-all")
        second = {item["connection_id"]: item for item in again.json()}
        assert second[schwab["id"]]["result"] == "refused"
        assert "SnapTrade refreshed Charles Schwab" in second[schwab["id"]]["reason"]
        refused = second[chase["id"]]
        assert refused["result"] == "refused"
        assert refused["provider"] == "plaid"
        assert refused["institution"] == "Chase"
        assert "24 h" in refused["reason"]
        assert _when(refused["next_allowed_at"]) > api.clock()

    async def test_a_provider_failure_is_reported_not_hidden(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        api.faults("plaid", error_rate=1.0, error_status=500)
        response = await user.post("/api/connections/refresh-all")
        assert response.status_code == 200, response.text
        (item,) = response.json()
        assert item["connection_id"] == chase["id"]
        assert item["result"] == "failed"
        assert item["reason"]

    async def test_no_connections_is_an_empty_list(self, api):
        user = await api.user()
        response = await user.post("/api/connections/refresh-all")
        assert response.status_code == 200
        assert response.json() == []


class TestSync:
    async def test_sync_all_is_accepted_and_runs_in_the_background(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        await api.connect(user, "Chase")
        response = await user.post("/api/sync")
        assert response.status_code == 202, response.text
        assert response.json() == {"status": "started", "connections": 2}
        await api.state.syncs.drain()
        assert (await user.get("/api/sync")).json() == {"status": "idle", "connections": 2}

    async def test_sync_requests_no_billed_refresh(self, api):
        user = await api.user()
        await api.connect(user, "Chase")
        await user.post("/api/sync")
        await api.state.syncs.drain()
        assert api.stack.plaid_wire.paths["/investments/refresh"] == 0
        (listed,) = (await user.get("/api/connections")).json()
        assert listed["last_manual_refresh_at"] is None

    async def test_nothing_to_sync_is_an_error_not_a_silent_success(self, api):
        user = await api.user()
        response = await user.post("/api/sync")
        assert_error(response, 404)

    async def test_status_of_a_new_user(self, api):
        user = await api.user()
        response = await user.get("/api/sync")
        assert response.status_code == 200
        assert response.json() == {"status": "idle", "connections": 0}
