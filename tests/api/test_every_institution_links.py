"""Every institution the picker offers links, through each provider the coverage map routes it
to, against the sandboxes; Plaid is asked for what the institution's kind needs; bank balances
are cash in the portfolio, credit cards are not; a Link Plaid will not open says so plainly."""

from decimal import Decimal
from importlib import resources

import pytest

from brokerlink.routing.coverage import CoverageRegistry, load_coverage
from brokerlink.routing.router import ProviderFlags
from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio

SHIPPED = load_coverage()
PREFERRED = [pytest.param(e.slug, e.preferred, id=e.slug) for e in SHIPPED.entries]
FALLBACKS = [
    pytest.param(e.slug, e.fallback, id=f"{e.slug}-fallback")
    for e in SHIPPED.entries
    if e.fallback is not None
]


def _plaid_items(api):
    return api.stack.plaid_app.state.sandbox.items


async def _linked(api, user, slug, provider):
    """Link `slug` through the API's start/complete flow; its connection after the first sync."""
    entry = SHIPPED.get(slug)
    assert entry is not None
    done = await api.connect(user, entry.name)
    assert done["provider"] == provider, done
    connections = (await user.get("/api/connections")).json()
    (connection,) = [c for c in connections if c["id"] == done["id"]]
    return connection


def _assert_working(connection):
    assert connection["status"] == "active", connection
    assert connection["accounts"], connection
    for account in connection["accounts"]:
        assert account["status"] == "fresh", account
        assert account["last_error"] is None, account
    assert any(a["positions"] for a in connection["accounts"]), connection


@pytest.mark.parametrize(("slug", "provider"), PREFERRED)
async def test_every_institution_in_the_map_links(api, slug, provider):
    user = await api.user()
    _assert_working(await _linked(api, user, slug, provider))


@pytest.mark.parametrize(("slug", "provider"), FALLBACKS)
async def test_every_fallback_links_when_snaptrade_is_off(api, slug, provider):
    api.state.flags = ProviderFlags(enable_snaptrade=False)
    user = await api.user()
    _assert_working(await _linked(api, user, slug, provider))


@pytest.mark.parametrize("slug", ["bank-of-america", "wells-fargo", "citi", "capital-one"])
async def test_a_bank_without_investments_is_asked_for_no_investments(api, slug):
    user = await api.user()
    connection = await _linked(api, user, slug, "plaid")
    _assert_working(connection)
    (item,) = _plaid_items(api).values()
    assert item.products == ["transactions"]


async def test_a_bank_with_a_brokerage_adds_investments_where_supported(api):
    user = await api.user()
    connection = await _linked(api, user, "chase", "plaid")
    (item,) = _plaid_items(api).values()
    assert sorted(item.products) == ["investments", "transactions"]
    brokerage = next(a for a in connection["accounts"] if a["type"] == "brokerage")
    assert brokerage["positions"] > 1  # cash and securities


async def test_a_brokerage_is_asked_for_investments_only(api):
    user = await api.user()
    await _linked(api, user, "merrill", "plaid")
    (item,) = _plaid_items(api).values()
    assert item.products == ["investments"]


async def test_bank_balances_are_cash_per_currency_and_credit_cards_are_not(api):
    user = await api.user()
    connection = await _linked(api, user, "bank-of-america", "plaid")
    by_type = {}
    for account in connection["accounts"]:
        by_type.setdefault(account["type"], []).append(account)
    assert len(by_type["bank"]) == 2
    (card,) = by_type["other"]
    # The card's balance is what is owed: a liability in net worth, not cash to invest.
    assert {k: Decimal(v) for k, v in card["balances"]["cash"].items()} == {
        "USD": Decimal("-622.90")
    }
    # Checking 3,120.44 and savings 8,800.00 available; the card's 622.90 owed is not cash.
    portfolio = (await user.get("/api/portfolio")).json()
    assert {k: Decimal(v) for k, v in portfolio["cash"].items()} == {"USD": Decimal("11920.44")}
    worth = (await user.get("/api/net-worth")).json()
    (usd,) = [line for line in worth["lines"] if line["currency"] == "USD"]
    assert Decimal(usd["liabilities"]) == Decimal("622.90")
    assert Decimal(usd["net"]) == Decimal("11920.44") - Decimal("622.90")


async def test_bank_cash_adds_to_brokerage_cash_in_one_portfolio(api):
    user = await api.user()
    await _linked(api, user, "chase", "plaid")
    await _linked(api, user, "capital-one", "plaid")
    portfolio = (await user.get("/api/portfolio")).json()
    # Chase: checking 5,103.18 + savings 12,500.00 + brokerage cash 842.11;
    # Capital One: checking 980.75 + savings 15,230.10 (the Quicksilver card is not cash).
    expected = Decimal("5103.18") + Decimal("12500.00") + Decimal("842.11")
    expected += Decimal("980.75") + Decimal("15230.10")
    assert Decimal(portfolio["cash"]["USD"]) == expected


async def test_an_institution_plaid_does_not_know_is_said_in_plain_words(api, tmp_path):
    shipped = resources.files("brokerlink.routing").joinpath("coverage.toml").read_text("utf-8")
    extra = (
        '\n[institutions.nowhere-savings]\nname = "Nowhere Savings"\ntype = "bank"\n'
        'preferred = "plaid"\nplaid_institution_id = "ins_999999"\n'
    )
    path = tmp_path / "coverage.toml"
    path.write_text(shipped + extra, "utf-8")
    api.state.coverage = CoverageRegistry(load_coverage(path))
    user = await api.user()
    calls = api.stack.plaid_wire.total
    response = await user.post("/api/connections", json={"institution": "Nowhere Savings"})
    error = assert_error(response, 422, "link_not_opened")
    assert error["reason"] == "INVALID_INSTITUTION"
    assert error["message"] == (
        "Plaid does not know Nowhere Savings, so it cannot be connected here."
    )
    assert api.stack.plaid_wire.total == calls + 1  # one refusal, nothing retried


async def test_plaid_down_at_link_time_is_said_without_endpoint_names(api):
    user = await api.user()
    api.faults("plaid", error_rate=1.0, error_status=503)
    response = await user.post("/api/connections", json={"institution": "Chase"})
    error = assert_error(response, 502, "provider_unavailable")
    assert "/link" not in error["message"]
    assert "Plaid is not answering right now" in error["message"]
