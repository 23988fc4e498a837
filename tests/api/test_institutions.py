"""GET /api/institutions: the picker's cards, each with the provider it opens and why."""

import pytest

from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio


def _by_name(cards):
    return {c["name"]: c for c in cards}


class TestListInstitutions:
    async def test_every_card_has_a_provider_and_a_reason(self, api):
        user = await api.user()
        response = await user.get("/api/institutions")
        assert response.status_code == 200
        cards = response.json()
        assert cards
        for card in cards:
            assert card["provider"] in ("snaptrade", "plaid"), card
            assert card["reason"], card
            assert card["slug"]
            assert card["logo_text"]

    async def test_popular_is_a_subset_of_all(self, api):
        user = await api.user()
        popular = (await user.get("/api/institutions", params={"scope": "popular"})).json()
        everything = (await user.get("/api/institutions", params={"scope": "all"})).json()
        assert all(c["popular"] for c in popular)
        assert {c["slug"] for c in popular} < {c["slug"] for c in everything}
        assert any(not c["popular"] for c in everything)

    async def test_popular_come_first_in_all(self, api):
        user = await api.user()
        cards = (await user.get("/api/institutions")).json()
        flags = [c["popular"] for c in cards]
        assert flags == sorted(flags, reverse=True)

    async def test_search_matches_names_and_aliases(self, api):
        user = await api.user()
        by_name = (await user.get("/api/institutions", params={"q": "fidel"})).json()
        assert [c["slug"] for c in by_name] == ["fidelity"]
        by_alias = (await user.get("/api/institutions", params={"q": "IBKR"})).json()
        assert [c["slug"] for c in by_alias] == ["interactive-brokers"]

    async def test_search_finds_unpopular_institutions(self, api):
        user = await api.user()
        cards = (
            await user.get("/api/institutions", params={"q": "platypus", "scope": "popular"})
        ).json()
        assert [c["slug"] for c in cards] == ["first-platypus-bank"]

    async def test_a_search_with_no_match_is_an_empty_list(self, api):
        user = await api.user()
        response = await user.get("/api/institutions", params={"q": "no such bank zzz"})
        assert response.status_code == 200
        assert response.json() == []

    async def test_fidelity_routes_to_snaptrade(self, api):
        user = await api.user()
        card = _by_name((await user.get("/api/institutions")).json())["Fidelity Investments"]
        assert card["provider"] == "snaptrade"
        assert "SnapTrade" in card["reason"]
        assert card["trading_possible"] is False

    async def test_chase_routes_to_plaid(self, api):
        user = await api.user()
        card = _by_name((await user.get("/api/institutions")).json())["Chase"]
        assert card["provider"] == "plaid"
        assert "Plaid" in card["reason"]
        assert card["trading_possible"] is False

    async def test_schwab_can_trade(self, api):
        user = await api.user()
        params = {"need_trading": "true"}
        card = _by_name((await user.get("/api/institutions", params=params)).json())[
            "Charles Schwab"
        ]
        assert card["provider"] == "snaptrade"
        assert card["trading_possible"] is True

    async def test_an_unknown_scope_names_the_field(self, api):
        user = await api.user()
        response = await user.get("/api/institutions", params={"scope": "some"})
        assert_error(response, 422, "validation_error", field="scope")

    async def test_a_long_search_names_the_field(self, api):
        user = await api.user()
        response = await user.get("/api/institutions", params={"q": "x" * 10_000})
        assert_error(response, 422, "validation_error", field="q")
