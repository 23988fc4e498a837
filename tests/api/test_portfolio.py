"""/api/portfolio(s), consolidation, manual positions and the duplicated-account preference."""

from decimal import Decimal

import pytest

from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio


async def _linked(api, *, chase: bool = True):
    user = await api.user()
    await api.connect(user, "Charles Schwab", need_trading=True)
    if chase:
        await api.connect(user, "Chase")
    return user


async def _portfolio_id(user) -> int:
    return int((await user.get("/api/portfolio")).json()["id"])


async def _add(user, **body):
    response = await user.post("/api/manual-positions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


class TestDefaultPortfolio:
    async def test_aapl_is_counted_once_per_source(self, api):
        user = await _linked(api)
        response = await user.get("/api/portfolio")
        assert response.status_code == 200
        portfolio = response.json()
        apple = next(h for h in portfolio["holdings"] if h["ticker"] == "AAPL")
        assert Decimal(apple["quantity"]) == 150
        assert sorted((s["provider"], Decimal(s["quantity"])) for s in apple["sources"]) == [
            ("plaid", 100),
            ("snaptrade", 50),
        ]
        assert portfolio["providers"] == ["plaid", "snaptrade"]

    async def test_cash_per_currency(self, api):
        user = await _linked(api)
        portfolio = (await user.get("/api/portfolio")).json()
        assert set(portfolio["cash"]) == {"USD"}
        assert Decimal(portfolio["cash"]["USD"]) > 0
        accounts = (await user.get("/api/accounts")).json()
        cash = [Decimal(a["balances"]["cash"].get("USD", 0)) for a in accounts]
        # What the credit card owes (its negative balance) is a liability, not portfolio cash.
        assert any(c < 0 for c in cash)
        assert Decimal(portfolio["cash"]["USD"]) == sum(c for c in cash if c > 0)

    async def test_allocations_and_freshness(self, api):
        user = await _linked(api, chase=False)
        portfolio = (await user.get("/api/portfolio")).json()
        assert portfolio["last_updated"] is not None
        assert portfolio["stale_accounts"] == 0
        for slices in (portfolio["by_type"], portfolio["by_account"], portfolio["by_provider"]):
            assert slices
            assert sum(Decimal(s["weight"]) for s in slices) == pytest.approx(
                Decimal(1), abs=Decimal("0.01")
            )

    async def test_a_new_user_has_an_empty_portfolio(self, api):
        user = await api.user()
        portfolio = (await user.get("/api/portfolio")).json()
        assert portfolio["holdings"] == []
        assert portfolio["cash"] == {}
        assert portfolio["providers"] == []


class TestListPortfolios:
    async def test_the_default_portfolio_is_listed(self, api):
        user = await api.user()
        response = await user.get("/api/portfolios")
        assert response.status_code == 200
        (listed,) = response.json()
        assert listed["id"] == await _portfolio_id(user)
        assert listed["base_currency"] == "USD"


class TestGetPortfolio:
    async def test_by_id_is_the_default_portfolio(self, api):
        user = await _linked(api, chase=False)
        default = (await user.get("/api/portfolio")).json()
        response = await user.get(f"/api/portfolios/{default['id']}")
        assert response.status_code == 200
        assert response.json()["holdings"] == default["holdings"]

    async def test_an_unknown_portfolio_is_404(self, api):
        user = await api.user()
        assert_error(await user.get("/api/portfolios/999999"), 404, "not_found")


class TestAnalysis:
    async def test_shares_are_summed_and_cash_sits_on_sgov(self, api):
        user = await _linked(api)
        response = await user.get(f"/api/portfolios/{await _portfolio_id(user)}/analysis")
        assert response.status_code == 200
        lines = {line["ticker"]: line for line in response.json()}
        assert Decimal(lines["AAPL"]["shares"]) == 150
        assert lines["AAPL"]["sources"] == 2
        assert lines["SGOV"]["is_cash_proxy"] is True
        assert lines["SGOV"]["currency"] == "USD"
        cash = (await user.get("/api/portfolio")).json()["cash"]["USD"]
        assert Decimal(lines["SGOV"]["shares"]) == Decimal(cash)
        assert not any(t.startswith("CUR:") for t in lines)

    async def test_an_unknown_portfolio_is_404(self, api):
        user = await api.user()
        assert_error(await user.get("/api/portfolios/999999/analysis"), 404, "not_found")


class TestConsolidate:
    async def test_counts_the_positions_and_providers(self, api):
        user = await _linked(api)
        pid = await _portfolio_id(user)
        response = await user.post(f"/api/portfolios/{pid}/consolidate")
        assert response.status_code == 200, response.text
        summary = response.json()
        assert summary["portfolio_id"] == pid
        assert summary["positions"] > 0
        assert summary["providers"] == ["plaid", "snaptrade"]
        assert Decimal(summary["cash"]["USD"]) > 0

    async def test_makes_no_provider_call(self, api):
        user = await _linked(api, chase=False)
        before = api.provider_calls
        await user.post(f"/api/portfolios/{await _portfolio_id(user)}/consolidate")
        assert api.provider_calls == before

    async def test_an_unknown_portfolio_is_404(self, api):
        user = await api.user()
        assert_error(await user.post("/api/portfolios/999999/consolidate"), 404, "not_found")


class TestConsolidateAll:
    async def test_every_portfolio_of_the_caller(self, api):
        user = await _linked(api)
        response = await user.post(f"/api/users/{user.id}/consolidate-all")
        assert response.status_code == 200, response.text
        (summary,) = response.json()
        assert summary["portfolio_id"] == await _portfolio_id(user)
        assert summary["providers"] == ["plaid", "snaptrade"]

    async def test_another_users_id_is_404(self, api):
        owner = await api.user()
        other = await api.user()
        response = await other.post(f"/api/users/{owner.id}/consolidate-all")
        assert_error(response, 404, "not_found")


class TestListManualPositions:
    async def test_only_manual_entries(self, api):
        user = await api.user()
        await _add(user, ticker="TSLA", quantity="3")
        response = await user.get("/api/manual-positions")
        assert response.status_code == 200
        assert [(p["ticker"], p["provider"]) for p in response.json()] == [("TSLA", "manual")]


class TestAddManualPosition:
    async def test_add_tsla_shows_in_the_portfolio(self, api):
        user = await api.user()
        added = await _add(user, ticker="tsla", quantity="3", price="250", cost_basis="600")
        assert added["ticker"] == "TSLA"
        assert added["provider"] == "manual"
        assert Decimal(added["quantity"]) == 3
        assert Decimal(added["market_value"]) == 750
        holdings = {h["ticker"]: h for h in (await user.get("/api/portfolio")).json()["holdings"]}
        assert Decimal(holdings["TSLA"]["quantity"]) == 3
        assert holdings["TSLA"]["sources"][0]["provider"] == "manual"

    async def test_beside_a_linked_account(self, api):
        user = await _linked(api, chase=False)
        account = next(
            a for a in (await user.get("/api/accounts")).json() if a["provider"] == "snaptrade"
        )
        added = await _add(user, ticker="TSLA", quantity="1", account_id=account["id"])
        assert added["account_id"] == account["id"]
        assert added["provider"] == "manual"

    async def test_a_negative_quantity_names_the_field(self, api):
        user = await api.user()
        response = await user.post(
            "/api/manual-positions", json={"ticker": "TSLA", "quantity": "-1"}
        )
        assert_error(response, 422, "validation_error", field="quantity")

    async def test_a_missing_ticker_names_the_field(self, api):
        user = await api.user()
        response = await user.post("/api/manual-positions", json={"quantity": "1"})
        assert_error(response, 422, "validation_error", field="ticker")

    async def test_a_blank_ticker_names_the_field(self, api):
        user = await api.user()
        response = await user.post("/api/manual-positions", json={"ticker": "   ", "quantity": 1})
        assert_error(response, 422, "validation_error", field="ticker")

    async def test_a_nul_character_in_the_ticker_is_422_not_500(self, api):
        user = await api.user()
        response = await user.post(
            "/api/manual-positions", json={"ticker": "TS\x00LA", "quantity": 1}
        )
        assert_error(response, 422, "validation_error", field="ticker")

    async def test_a_bad_currency_names_the_field(self, api):
        user = await api.user()
        response = await user.post(
            "/api/manual-positions", json={"ticker": "TSLA", "quantity": "1", "currency": "US"}
        )
        assert_error(response, 422, "validation_error", field="currency")

    async def test_an_unknown_account_is_404(self, api):
        user = await api.user()
        response = await user.post(
            "/api/manual-positions", json={"ticker": "TSLA", "quantity": "1", "account_id": 999999}
        )
        assert_error(response, 404, "not_found")

    async def test_a_value_too_big_to_store_is_422_not_500(self, api):
        user = await api.user()
        body = {"ticker": "TSLA", "quantity": "99999999999", "price": "9999999999999999"}
        response = await user.post("/api/manual-positions", json=body)
        assert_error(response, 422, "validation_error")
        assert (await user.get("/api/manual-positions")).json() == []


class TestEditManualPosition:
    async def test_edit_quantity_and_price(self, api):
        user = await api.user()
        added = await _add(user, ticker="TSLA", quantity="3", price="250")
        response = await user.patch(
            f"/api/manual-positions/{added['id']}", json={"quantity": "5", "price": "200"}
        )
        assert response.status_code == 200, response.text
        edited = response.json()
        assert edited["id"] == added["id"]
        assert Decimal(edited["quantity"]) == 5
        assert Decimal(edited["market_value"]) == 1000
        (listed,) = (await user.get("/api/manual-positions")).json()
        assert Decimal(listed["quantity"]) == 5

    async def test_a_negative_quantity_names_the_field(self, api):
        user = await api.user()
        added = await _add(user, ticker="TSLA", quantity="3")
        response = await user.patch(f"/api/manual-positions/{added['id']}", json={"quantity": -1})
        assert_error(response, 422, "validation_error", field="quantity")

    async def test_a_providers_position_cannot_be_edited(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        linked = (await user.get("/api/positions")).json()[0]
        response = await user.patch(f"/api/manual-positions/{linked['id']}", json={"quantity": 1})
        assert 400 <= response.status_code < 500
        assert_error(response, response.status_code)
        after = next(
            p for p in (await user.get("/api/positions")).json() if p["id"] == linked["id"]
        )
        assert after["quantity"] == linked["quantity"]

    async def test_a_value_too_big_to_store_is_422_not_500(self, api):
        user = await api.user()
        added = await _add(user, ticker="TSLA", quantity="2")
        response = await user.patch(
            f"/api/manual-positions/{added['id']}", json={"price": "9999999999999999.99999999"}
        )
        assert_error(response, 422, "validation_error")
        (kept,) = (await user.get("/api/manual-positions")).json()
        assert kept["price"] is None

    async def test_an_unknown_position_is_404(self, api):
        user = await api.user()
        response = await user.patch("/api/manual-positions/999999", json={"quantity": 1})
        assert_error(response, 404, "not_found")


class TestDeleteManualPosition:
    async def test_delete_removes_it_from_the_portfolio(self, api):
        user = await api.user()
        added = await _add(user, ticker="TSLA", quantity="3")
        response = await user.delete(f"/api/manual-positions/{added['id']}")
        assert response.status_code == 204
        assert (await user.get("/api/manual-positions")).json() == []
        holdings = (await user.get("/api/portfolio")).json()["holdings"]
        assert all(h["ticker"] != "TSLA" for h in holdings)

    async def test_a_providers_position_cannot_be_deleted(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        linked = (await user.get("/api/positions")).json()[0]
        response = await user.delete(f"/api/manual-positions/{linked['id']}")
        assert 400 <= response.status_code < 500
        assert_error(response, response.status_code)
        assert any(p["id"] == linked["id"] for p in (await user.get("/api/positions")).json())

    async def test_an_unknown_position_is_404(self, api):
        user = await api.user()
        assert_error(await user.delete("/api/manual-positions/999999"), 404, "not_found")


class TestDuplicatesPreference:
    async def test_an_account_that_is_not_duplicated_is_404(self, api):
        user = await _linked(api, chase=False)
        account = (await user.get("/api/accounts")).json()[0]
        response = await user.put(
            "/api/duplicates/preference", json={"keep_account_id": account["id"]}
        )
        assert_error(response, 404, "not_found")

    async def test_a_missing_id_names_the_field(self, api):
        user = await api.user()
        response = await user.put("/api/duplicates/preference", json={})
        assert_error(response, 422, "validation_error", field="keep_account_id")
