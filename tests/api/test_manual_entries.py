"""Manual accounts and positions through the API, and net worth (SQLite and PostgreSQL)."""

from decimal import Decimal

import pytest

from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio


async def _add(user, **body):
    response = await user.post("/api/manual-positions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _manual(accounts):
    return [a for a in accounts if a["provider"] == "manual"]


class TestManualAccount:
    async def test_a_manual_account_is_never_syncing_or_stale(self, api):
        user = await api.user()
        await _add(user, ticker="BTC", quantity="0.5", kind="crypto", price="60000")
        (account,) = _manual((await user.get("/api/accounts")).json())
        assert account["status"] == "fresh"
        assert account["stale"] is False
        page = await user.get("/")
        assert "Syncing" not in page.text
        assert "First sync in progress" not in page.text
        assert "Entered by you" in page.text

    async def test_a_named_account_of_ones_own(self, api):
        user = await api.user()
        created = await user.post("/api/manual-accounts", json={"name": "Cold wallet"})
        assert created.status_code == 201, created.text
        wallet = created.json()
        assert (wallet["name"], wallet["provider"], wallet["status"]) == (
            "Cold wallet",
            "manual",
            "fresh",
        )
        entry = await _add(
            user, ticker="ETH", quantity="2", kind="crypto", price="3000", account_id=wallet["id"]
        )
        assert entry["account_id"] == wallet["id"]
        (listed,) = [a for a in (await user.get("/api/accounts")).json() if a["id"] == wallet["id"]]
        assert Decimal(listed["balances"]["total"]["USD"]) == 6000

    async def test_a_blank_name_is_refused(self, api):
        user = await api.user()
        assert_error(await user.post("/api/manual-accounts", json={"name": "   "}), 422)


class TestManualPosition:
    async def test_type_and_price_are_kept(self, api):
        user = await api.user()
        btc = await _add(user, ticker="btc", quantity="0.5", kind="crypto", price="60000")
        assert (btc["ticker"], btc["type"]) == ("BTC", "crypto")
        assert Decimal(btc["market_value"]) == 30000
        holding = next(
            h for h in (await user.get("/api/portfolio")).json()["holdings"] if h["ticker"] == "BTC"
        )
        assert (holding["type"], Decimal(holding["value"])) == ("crypto", 30000)

    async def test_a_total_value_gives_the_unit_price(self, api):
        user = await api.user()
        house = await _add(user, ticker="HOUSE", quantity="1", kind="other", value="450000")
        assert Decimal(house["price"]) == 450000
        assert Decimal(house["market_value"]) == 450000
        fund = await _add(user, ticker="FUND", quantity="4", kind="mutual_fund", value="100")
        assert Decimal(fund["price"]) == 25

    async def test_price_and_value_together_are_refused(self, api):
        user = await api.user()
        both = await user.post(
            "/api/manual-positions",
            json={"ticker": "X", "quantity": "1", "price": "1", "value": "2"},
        )
        assert_error(both, 422, "validation_error")

    async def test_a_second_entry_for_a_ticker_is_refused_without_a_choice(self, api):
        user = await api.user()
        first = await _add(user, ticker="VTI", quantity="3", price="200")
        again = await user.post("/api/manual-positions", json={"ticker": "VTI", "quantity": "2"})
        assert_error(again, 409, "manual_position_exists")
        assert again.json()["error"]["field"] == "ticker"
        (kept,) = (await user.get("/api/manual-positions")).json()
        assert (kept["id"], Decimal(kept["quantity"])) == (first["id"], 3)

    async def test_add_to_it(self, api):
        user = await api.user()
        first = await _add(user, ticker="VTI", quantity="3", price="200", cost_basis="500")
        added = await _add(user, ticker="VTI", quantity="2", cost_basis="420", on_existing="add")
        assert added["id"] == first["id"]
        assert Decimal(added["quantity"]) == 5
        assert Decimal(added["cost_basis"]) == 920
        assert Decimal(added["market_value"]) == 1000  # the price kept: 5 × 200

    async def test_replace_it(self, api):
        user = await api.user()
        await _add(user, ticker="VTI", quantity="3", price="200")
        replaced = await _add(user, ticker="VTI", quantity="1", price="210", on_existing="replace")
        assert Decimal(replaced["quantity"]) == 1
        (only,) = (await user.get("/api/manual-positions")).json()
        assert Decimal(only["market_value"]) == 210

    async def test_edit_type_and_value_then_delete(self, api):
        user = await api.user()
        entry = await _add(user, ticker="GOLD", quantity="2", price="10")
        edited = await user.patch(
            f"/api/manual-positions/{entry['id']}", json={"kind": "other", "value": "5000"}
        )
        assert edited.status_code == 200, edited.text
        assert (edited.json()["type"], Decimal(edited.json()["price"])) == ("other", 2500)
        deleted = await user.delete(f"/api/manual-positions/{entry['id']}")
        assert deleted.status_code == 204
        assert (await user.get("/api/manual-positions")).json() == []
        again = await _add(user, ticker="GOLD", quantity="1")  # deleted: no choice to make
        assert Decimal(again["quantity"]) == 1


class TestNetWorth:
    async def test_assets_per_currency_and_in_the_base_currency(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab")
        await _add(user, ticker="BTC", quantity="1", kind="crypto", price="50000")
        accounts = (await user.get("/api/accounts")).json()
        worth = (await user.get("/api/net-worth")).json()
        expected = sum(Decimal(a["balances"]["total"].get("USD", 0)) for a in accounts)
        assert worth["base_currency"] == "USD"
        assert [line["currency"] for line in worth["lines"]] == ["USD"]
        assert Decimal(worth["lines"][0]["assets"]) == expected
        assert Decimal(worth["base_net"]) == expected
        page = await user.get("/")
        assert 'id="net-worth-USD"' in page.text

    async def test_another_currency_is_not_converted(self, api):
        user = await api.user()
        await _add(user, ticker="EUR", quantity="100", kind="cash", currency="EUR")
        await _add(user, ticker="VOO", quantity="1", price="500")
        worth = (await user.get("/api/net-worth")).json()
        assert worth["base_net"] is None
        assert worth["unconverted"] == ["EUR"]
        by = {line["currency"]: Decimal(line["net"]) for line in worth["lines"]}
        assert by == {"EUR": 100, "USD": 500}
