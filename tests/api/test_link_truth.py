"""Linking tells the truth: trading intent where no SnapTrade brokerage trades is explained, not
obeyed; the institution comes from the provider; the same login reuses its connection; the
picker says what is connected; Plaid's own search opens for an institution not listed."""

from urllib.parse import urlsplit

import pytest

from brokerlink.cli.demo import log_in_hosted_link
from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio


def _plaid_items(api) -> int:
    return len(api.stack.plaid_app.state.sandbox.items)


def _snaptrade_authorizations(api) -> int:
    return len(api.stack.snaptrade_app.state.sandbox.authorizations)


class TestTradingIntent:
    async def test_chase_with_trading_opens_plaid_for_chase_and_says_why(self, api):
        user = await api.user()
        started = await user.post(
            "/api/connections", json={"institution": "chase", "need_trading": True}
        )
        assert started.status_code == 201, started.text
        start = started.json()
        assert start["provider"] == "plaid"
        assert "Chase accounts can't place trades here" in start["reason"]
        page = await api.browser().get(start["url"])
        assert "Chase" in page.text
        assert "Charles Schwab" not in page.text

    async def test_the_picker_says_it_too(self, api):
        user = await api.user()
        cards = (await user.get("/api/institutions", params={"need_trading": True})).json()
        chase = next(c for c in cards if c["slug"] == "chase")
        assert chase["provider"] == "plaid"
        assert not chase["trading_possible"]
        assert "can't place trades here" in chase["reason"]
        schwab = next(c for c in cards if c["slug"] == "schwab")
        assert schwab["provider"] == "snaptrade"
        assert schwab["trading_possible"]


class TestWhatIsConnected:
    async def test_the_picker_shows_the_connection_to_reconnect(self, api):
        user = await api.user()
        before = (await user.get("/api/institutions", params={"scope": "popular"})).json()
        assert not any(c["connected"] for c in before)
        linked = await api.connect(user, "Chase")
        cards = (await user.get("/api/institutions", params={"scope": "popular"})).json()
        chase = next(c for c in cards if c["slug"] == "chase")
        assert chase["connected"]
        assert chase["connection_id"] == linked["id"]
        assert chase["connection_status"] == "active"
        assert [c["slug"] for c in cards if c["connected"]] == ["chase"]

    async def test_another_users_connection_is_not_shown(self, api):
        alice, bob = await api.user(), await api.user()
        await api.connect(alice, "Chase")
        cards = (await bob.get("/api/institutions", params={"q": "chase"})).json()
        assert not any(c["connected"] for c in cards)


class TestSameLogin:
    async def test_plaid_same_institution_and_masks_reuses_the_connection(self, api):
        user = await api.user()
        first = await api.connect(user, "Chase")
        assert _plaid_items(api) == 1
        second = await api.connect(user, "Chase")
        assert second["id"] == first["id"]
        listed = (await user.get("/api/connections")).json()
        assert [c["id"] for c in listed] == [first["id"]]
        assert len(listed[0]["accounts"]) == len(first["accounts"])
        # The replaced Item was removed at Plaid: nothing is billed twice.
        assert _plaid_items(api) == 1

    async def test_snaptrade_same_brokerage_and_masks_reuses_the_connection(self, api):
        user = await api.user()
        first = await api.connect(user, "Charles Schwab")
        assert _snaptrade_authorizations(api) == 1
        second = await api.connect(user, "Charles Schwab")
        assert second["id"] == first["id"]
        listed = (await user.get("/api/connections")).json()
        assert [c["id"] for c in listed] == [first["id"]]
        assert _snaptrade_authorizations(api) == 1

    async def test_another_institution_stays_its_own_connection(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        schwab = await api.connect(user, "Charles Schwab")
        assert chase["id"] != schwab["id"]
        assert len((await user.get("/api/connections")).json()) == 2


class TestProviderSearch:
    async def test_plaid_search_opens_and_the_institution_is_plaids_answer(self, api):
        user = await api.user()
        started = await user.post("/api/connections", json={"provider_search": True})
        assert started.status_code == 201, started.text
        start = started.json()
        assert start["provider"] == "plaid"
        assert "Plaid's own search" in start["reason"]
        browser = api.browser()
        page = await browser.get(start["url"])
        # Hosted Link with no institution offers its own choice of several.
        assert page.text.count("<option") > 1
        answer = await browser.post(
            start["url"],
            data={"institution_id": "ins_115616", "username": "user_good", "password": "pass_good"},
        )
        assert answer.status_code in (200, 303), answer.text
        done = await user.post("/api/connections/complete", json={"state": start["state"]})
        assert done.status_code == 200, done.text
        assert done.json()["institution"] == "Vanguard"
        await api.state.syncs.drain()
        cards = (await user.get("/api/institutions", params={"q": "vanguard"})).json()
        assert cards[0]["connected"]

    async def test_leaving_plaid_without_linking_is_a_clear_refusal(self, api):
        user = await api.user()
        start = (await user.post("/api/connections", json={"provider_search": True})).json()
        answer = await api.browser().post(start["url"], data={"action": "exit"})
        assert answer.status_code == 303
        assert urlsplit(answer.headers["location"]).query == "status=CANCELLED"
        done = await user.post("/api/connections/complete", json={"state": start["state"]})
        assert_error(done, 409, "link_not_finished")
        assert (await user.get("/api/connections")).json() == []

    async def test_neither_institution_nor_search_names_the_field(self, api):
        user = await api.user()
        response = await user.post("/api/connections", json={})
        assert_error(response, 422, "validation_error", field="institution")


async def test_hosted_link_helper_still_logs_in(api):
    """The demo's Hosted Link client fills in the first form, never the Cancel form."""
    user = await api.user()
    start = (await user.post("/api/connections", json={"institution": "Chase"})).json()
    await log_in_hosted_link(api.browser(), start["url"])
    done = await user.post("/api/connections/complete", json={"state": start["state"]})
    assert done.status_code == 200, done.text
