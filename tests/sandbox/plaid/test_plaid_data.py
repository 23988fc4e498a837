"""Accounts, balances, holdings, refresh, investment transactions, institutions."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("check_webhooks")]

ALL_INSTITUTIONS = {
    "ins_109508": "First Platypus Bank",
    "ins_56": "Chase",
    "ins_127989": "Bank of America",
    "ins_127991": "Wells Fargo",
    "ins_5": "Citi",
    "ins_128026": "Capital One",
    "ins_115616": "Vanguard",
    "ins_11": "Charles Schwab",
    "ins_12": "Fidelity",
    "ins_116912": "Empower Retirement",
}


class TestAccounts:
    async def test_bank_accounts_have_balances(self, api):
        item = await api.link_item("ins_127989", ["auth"])
        body = await api.ok("/accounts/get", {"access_token": item["access_token"]})
        checking = next(a for a in body["accounts"] if a["subtype"] == "checking")
        assert checking["type"] == "depository"
        assert checking["balances"]["current"] == 3120.44
        credit = next(a for a in body["accounts"] if a["type"] == "credit")
        assert credit["balances"]["limit"] == 5000.0
        assert body["item"]["item_id"] == item["item_id"]

    async def test_filter_by_account_ids(self, api):
        item = await api.link_item()
        access = {"access_token": item["access_token"]}
        all_accounts = (await api.ok("/accounts/get", access))["accounts"]
        first = all_accounts[0]["account_id"]
        body = await api.ok("/accounts/get", {**access, "options": {"account_ids": [first]}})
        assert [a["account_id"] for a in body["accounts"]] == [first]
        err = await api.error("/accounts/get", {**access, "options": {"account_ids": ["nope"]}})
        assert err["error_code"] == "INVALID_ACCOUNT_ID"

    async def test_balance_get_is_fresh(self, api):
        item = await api.link_item("ins_128026", ["auth"])
        body = await api.ok("/accounts/balance/get", {"access_token": item["access_token"]})
        assert all(a["balances"]["last_updated_datetime"] for a in body["accounts"])

    async def test_access_token_must_be_a_string(self, api):
        err = await api.error("/accounts/balance/get", {"access_token": 12})
        assert err["error_code"] == "INVALID_FIELD"


class TestHoldings:
    async def test_platypus_ira_has_every_kind_of_security(self, api):
        item = await api.link_item()
        body = await api.ok("/investments/holdings/get", {"access_token": item["access_token"]})
        assert {a["subtype"] for a in body["accounts"]} == {"ira", "401k"}
        securities = {s["security_id"]: s for s in body["securities"]}
        by_type = {s["type"] for s in securities.values()}
        assert {"cash", "equity", "etf", "mutual fund", "derivative", "fixed income"} <= by_type
        cash = next(s for s in securities.values() if s["ticker_symbol"] == "CUR:USD")
        assert cash["is_cash_equivalent"] is True
        assert cash["type"] == "cash"
        nulls = [s for s in securities.values() if s["ticker_symbol"] is None]
        assert nulls
        assert all(s["cusip"] and s["isin"] and s["name"] for s in nulls)
        option = next(s for s in securities.values() if s["type"] == "derivative")
        assert option["option_contract"]["underlying_security_ticker"] == "AAPL"
        bond = next(s for s in securities.values() if s["type"] == "fixed income")
        assert bond["fixed_income"]["yield_rate"]["type"] == "coupon"
        for h in body["holdings"]:
            assert h["security_id"] in securities
            assert h["institution_value"] == pytest.approx(
                h["quantity"] * h["institution_price"], abs=0.01
            )
            assert h["institution_price_as_of"]
        apple = next(
            h for h in body["holdings"] if securities[h["security_id"]]["ticker_symbol"] == "AAPL"
        )
        # cost_basis is the total for the holding, not per share.
        assert apple["cost_basis"] == 3620.50
        assert apple["quantity"] == 25

    async def test_empower_401k_target_date_funds(self, api):
        item = await api.link_item("ins_116912", ["investments"])
        body = await api.ok("/investments/holdings/get", {"access_token": item["access_token"]})
        [account] = body["accounts"]
        assert account["subtype"] == "401k"
        names = {s["name"] for s in body["securities"]}
        assert "Empower Lifetime 2055 Trust Class N" in names
        assert any(h["vested_quantity"] for h in body["holdings"])
        assert account["balances"]["current"] == pytest.approx(
            sum(h["institution_value"] for h in body["holdings"]), abs=0.05
        )

    async def test_bank_only_institution(self, api):
        item = await api.link_item("ins_127991", ["auth"])
        err = await api.error("/investments/holdings/get", {"access_token": item["access_token"]})
        assert err["error_code"] == "PRODUCTS_NOT_SUPPORTED"

    async def test_filter_to_one_account(self, api):
        item = await api.link_item("ins_115616")
        access = {"access_token": item["access_token"]}
        accounts = (await api.ok("/accounts/get", access))["accounts"]
        roth = next(a["account_id"] for a in accounts if a["subtype"] == "roth")
        body = await api.ok(
            "/investments/holdings/get", {**access, "options": {"account_ids": [roth]}}
        )
        assert {h["account_id"] for h in body["holdings"]} == {roth}


class TestProductNotReady:
    async def test_not_ready_then_ready(self, api, state, clock):
        state.product_ready_delay = 0.5
        item = await api.link_item()
        access = {"access_token": item["access_token"]}
        err = await api.error("/investments/holdings/get", access)
        assert (err["error_type"], err["error_code"]) == ("ITEM_ERROR", "PRODUCT_NOT_READY")
        # Accounts are available at once.
        await api.ok("/accounts/get", access)
        clock.advance(0.6)
        await api.ok("/investments/holdings/get", access)

    async def test_schwab_is_slower(self, api, state, clock):
        state.product_ready_delay = 0.5
        item = await api.link_item("ins_11")
        access = {"access_token": item["access_token"]}
        clock.advance(1.0)
        assert (await api.error("/investments/holdings/get", access))["error_code"] == (
            "PRODUCT_NOT_READY"
        )
        clock.advance(1.1)
        await api.ok("/investments/holdings/get", access)

    async def test_investments_added_on_first_use(self, api, state, clock):
        state.product_ready_delay = 0.5
        item = await api.link_item("ins_56", ["auth"])
        access = {"access_token": item["access_token"]}
        assert (await api.error("/investments/holdings/get", access))["error_code"] == (
            "PRODUCT_NOT_READY"
        )
        clock.advance(1)
        await api.ok("/investments/holdings/get", access)
        assert "investments" in (await api.ok("/item/get", access))["item"]["billed_products"]


class TestRefresh:
    async def test_prices_move_after_refresh(self, api):
        item = await api.link_item()
        access = {"access_token": item["access_token"]}
        before = await api.ok("/investments/holdings/get", access)
        again = await api.ok("/investments/holdings/get", access)
        assert before["holdings"] == again["holdings"]
        await api.ok("/investments/refresh", access)
        after = await api.ok("/investments/holdings/get", access)
        securities = {s["security_id"]: s for s in after["securities"]}
        for old, new in zip(before["holdings"], after["holdings"], strict=True):
            sec = securities[new["security_id"]]
            if sec["type"] == "cash":
                assert new["institution_price"] == old["institution_price"]
            else:
                assert new["institution_price"] != old["institution_price"]
                assert abs(new["institution_price"] / old["institution_price"] - 1) <= 0.021
            assert new["quantity"] == old["quantity"]

    async def test_refresh_unsupported(self, api):
        item = await api.link_item("ins_116912")
        err = await api.error("/investments/refresh", {"access_token": item["access_token"]})
        assert err["error_code"] == "PRODUCTS_NOT_SUPPORTED"

    async def test_refresh_bad_token(self, api):
        err = await api.error("/investments/refresh", {"access_token": "access-sandbox-0"})
        assert err["error_code"] == "INVALID_ACCESS_TOKEN"


class TestInvestmentTransactions:
    async def test_paging(self, api):
        item = await api.link_item()
        base = {
            "access_token": item["access_token"],
            "start_date": "2024-11-01",
            "end_date": "2026-12-31",
        }
        first = await api.ok("/investments/transactions/get", {**base, "options": {"count": 10}})
        total = first["total_investment_transactions"]
        assert total > 20
        assert len(first["investment_transactions"]) == 10
        seen = []
        offset = 0
        while offset < total:
            page = await api.ok(
                "/investments/transactions/get",
                {**base, "options": {"count": 10, "offset": offset}},
            )
            assert page["total_investment_transactions"] == total
            seen += page["investment_transactions"]
            offset += 10
        ids = [t["investment_transaction_id"] for t in seen]
        assert len(set(ids)) == total
        dates = [t["date"] for t in seen]
        assert dates == sorted(dates, reverse=True)
        refs = {t["security_id"] for t in first["investment_transactions"] if t["security_id"]}
        assert refs <= {s["security_id"] for s in first["securities"]}

    async def test_date_window(self, api):
        item = await api.link_item()
        body = await api.ok(
            "/investments/transactions/get",
            {
                "access_token": item["access_token"],
                "start_date": "2026-11-01",
                "end_date": "2026-11-30",
            },
        )
        assert all(
            "2026-11-01" <= t["date"] <= "2026-11-30" for t in body["investment_transactions"]
        )

    @pytest.mark.parametrize(
        "extra",
        [
            {"start_date": "2026-02-01", "end_date": "2026-01-01"},
            {"start_date": "yesterday", "end_date": "2026-01-01"},
            {"start_date": "2026-01-01", "end_date": "2026-02-01", "options": {"count": 0}},
            {"start_date": "2026-01-01", "end_date": "2026-02-01", "options": {"count": 501}},
        ],
    )
    async def test_invalid(self, api, extra):
        item = await api.link_item()
        err = await api.error(
            "/investments/transactions/get", {"access_token": item["access_token"], **extra}
        )
        assert err["error_code"] == "INVALID_FIELD"

    async def test_missing_dates(self, api):
        item = await api.link_item()
        err = await api.error(
            "/investments/transactions/get", {"access_token": item["access_token"]}
        )
        assert err["error_code"] == "MISSING_FIELDS"
        assert "start_date" in err["error_message"]
        assert "end_date" in err["error_message"]


class TestInstitutions:
    async def test_every_seeded_institution_by_id(self, api):
        for institution_id, name in ALL_INSTITUTIONS.items():
            body = await api.ok(
                "/institutions/get_by_id",
                {"institution_id": institution_id, "country_codes": ["US"]},
            )
            assert body["institution"]["name"] == name

    async def test_fidelity_lists_no_investments(self, api):
        body = await api.ok(
            "/institutions/get_by_id", {"institution_id": "ins_12", "country_codes": ["US"]}
        )
        assert "investments" not in body["institution"]["products"]

    async def test_get_by_id_with_metadata_and_status(self, api):
        body = await api.ok(
            "/institutions/get_by_id",
            {
                "institution_id": "ins_56",
                "country_codes": ["US"],
                "options": {"include_optional_metadata": True, "include_status": True},
            },
        )
        assert body["institution"]["url"] == "https://www.chase.com"
        assert body["institution"]["status"]["item_logins"]["status"] == "HEALTHY"

    async def test_get_by_id_unknown(self, api):
        err = await api.error(
            "/institutions/get_by_id", {"institution_id": "ins_0", "country_codes": ["US"]}
        )
        assert err["error_code"] == "INVALID_INSTITUTION"
        err = await api.error(
            "/institutions/get_by_id", {"institution_id": "ins_56", "country_codes": ["GB"]}
        )
        assert err["error_code"] == "INVALID_INSTITUTION"

    async def test_search(self, api):
        body = await api.ok(
            "/institutions/search",
            {"query": "a", "products": ["investments"], "country_codes": ["US"]},
        )
        ids = {i["institution_id"] for i in body["institutions"]}
        assert "ins_115616" in ids
        assert "ins_127989" not in ids
        assert "ins_12" not in ids
        assert len(body["institutions"]) <= 10

    async def test_search_oauth_filter(self, api):
        body = await api.ok(
            "/institutions/search",
            {"query": "platypus", "country_codes": ["US"], "options": {"oauth": False}},
        )
        assert [i["institution_id"] for i in body["institutions"]] == ["ins_109508"]

    async def test_search_requires_query(self, api):
        err = await api.error("/institutions/search", {"country_codes": ["US"]})
        assert err["error_code"] == "MISSING_FIELDS"
