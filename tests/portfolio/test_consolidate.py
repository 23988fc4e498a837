"""The consolidation rules, with the product's own examples, and properties over any mix."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brokerlink.domain import AccountType, Provider
from brokerlink.portfolio import (
    AccountRef,
    MixedCurrencyError,
    analysis_view,
    consolidate,
    detect_duplicate_accounts,
)
from tests.portfolio.positions import D, cash, pos


class TestProductExamples:
    def test_cash_aggregates_per_currency_across_accounts(self):
        result = consolidate(
            [
                cash("5000", "chase-checking", Provider.PLAID),
                cash("3000", "schwab-brokerage", Provider.SNAPTRADE),
                cash("1000", "manual", Provider.MANUAL),
            ]
        )
        assert result.cash == {"USD": D("9000")}
        view = analysis_view(result)
        assert view["SGOV"].shares == D("9000")
        assert view["SGOV"].is_cash_proxy
        assert view["SGOV"].sources == 3

    def test_provider_priority_picks_the_record_for_one_accounts_ticker(self):
        manual = pos("TSLA", "10", "schwab-1", Provider.MANUAL)
        snap = pos("TSLA", "12", "schwab-1", Provider.SNAPTRADE)
        result = consolidate([manual, snap])
        assert result.securities == [snap]
        assert [s.position for s in result.superseded] == [manual]
        assert "priority snaptrade > manual" in result.superseded[0].reason
        assert analysis_view(result)["TSLA"].shares == D("12")

    def test_same_ticker_in_two_accounts_sums_never_overwrites(self):
        plaid = pos("AAPL", "100", "vanguard-1", Provider.PLAID, cost="9000")
        snap = pos("AAPL", "50", "schwab-1", Provider.SNAPTRADE, cost="7000")
        result = consolidate([plaid, snap])
        assert len(result.securities) == 2  # stored per account and provider
        line = analysis_view(result)["AAPL"]
        assert line.shares == D("150")
        # Metadata from the highest-priority source.
        assert line.account_id == "schwab-1"
        assert line.cost_basis == D("7000")
        assert line.as_portfolio_data() == {
            "shares": D("150"),
            "currency": "USD",
            "type": "equity",
            "account_id": "schwab-1",
        }


class TestCurrencies:
    def test_unmapped_currency_keeps_its_cash_ticker(self):
        view = analysis_view(consolidate([cash("700", "a", Provider.SNAPTRADE, "CAD")]))
        assert view["CUR:CAD"].shares == D("700")
        assert not view["CUR:CAD"].is_cash_proxy

    def test_two_currencies_on_one_proxy_need_a_rate(self):
        result = consolidate(
            [cash("100", "a", Provider.SNAPTRADE, "USD"), cash("100", "b", Provider.PLAID, "CAD")]
        )
        proxies = {"USD": "SGOV", "CAD": "SGOV"}
        with pytest.raises(MixedCurrencyError, match="FX rate CAD->USD"):
            analysis_view(result, cash_proxies=proxies)
        view = analysis_view(result, cash_proxies=proxies, fx_rates={("CAD", "USD"): D("0.7")})
        assert view["SGOV"].shares == D("170.0")


class TestDuplicateAccounts:
    def refs(self):
        return [
            AccountRef(
                "p-1", "Charles Schwab", "1234", AccountType.BROKERAGE, Provider.PLAID, "item-1"
            ),
            AccountRef(
                "s-1", "Charles Schwab", "1234", AccountType.BROKERAGE, Provider.SNAPTRADE, "auth-1"
            ),
            AccountRef(
                "s-2", "Charles Schwab", "9999", AccountType.BROKERAGE, Provider.SNAPTRADE, "auth-1"
            ),
            AccountRef("c-1", "Chase", None, AccountType.BANK, Provider.PLAID, "item-2"),
        ]

    def test_same_institution_mask_and_type_counts_once(self):
        duplicates = detect_duplicate_accounts(self.refs())
        assert [(d.winner.key, d.loser.key) for d in duplicates] == [("s-1", "p-1")]
        assert "higher provider priority" in duplicates[0].reason

        result = consolidate(
            [pos("AAPL", "10", "p-1", Provider.PLAID), pos("AAPL", "10", "s-1")],
            duplicates=duplicates,
        )
        assert analysis_view(result)["AAPL"].shares == D("10")
        assert result.superseded[0].position.account == "p-1"

    def test_the_user_can_override_the_winner(self):
        duplicates = detect_duplicate_accounts(self.refs(), prefer={"s-1": "p-1"})
        assert [(d.winner.key, d.loser.key) for d in duplicates] == [("p-1", "s-1")]
        assert "user's choice" in duplicates[0].reason


# ---- properties -------------------------------------------------------------------------------

_providers = st.sampled_from(list(Provider))
_positions = st.lists(
    st.builds(
        pos,
        ticker=st.sampled_from(["AAPL", "MSFT", "VTI", "CUR:USD", "CUR:EUR"]),
        qty=st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False).map(str),
        account=st.sampled_from(["a", "b", "c"]),
        provider=_providers,
    ),
    max_size=40,
)


def _dedupe(rows):
    """The store's key (account, ticker, provider) is unique; mirror it."""
    seen = {}
    for row in rows:
        seen[(row.account, row.ticker, row.provider)] = row
    return list(seen.values())


@settings(max_examples=200, deadline=None)
@given(_positions)
def test_nothing_is_dropped(rows):
    rows = _dedupe(rows)
    result = consolidate(rows)
    assert len(result.counted) + len(result.superseded) == len(rows)


@settings(max_examples=200, deadline=None)
@given(_positions)
def test_analysis_total_per_ticker_is_the_sum_over_counted_sources(rows):
    result = consolidate(_dedupe(rows))
    view = analysis_view(result, cash_proxies={})
    for ticker, line in view.items():
        assert line.shares == sum((p.quantity for p in result.counted if p.ticker == ticker), D(0))
    # Every counted ticker is in the view.
    assert {p.ticker for p in result.counted} == set(view)


@settings(max_examples=200, deadline=None)
@given(_positions)
def test_cash_per_currency_is_the_sum_of_counted_cash(rows):
    result = consolidate(_dedupe(rows))
    for currency in ("USD", "EUR"):
        expected = sum(
            (p.quantity for p in result.cash_positions if p.ticker == f"CUR:{currency}"), D(0)
        )
        assert result.cash.get(currency, D(0)) == expected


@settings(max_examples=200, deadline=None)
@given(_positions)
def test_one_record_per_account_and_ticker_counts(rows):
    result = consolidate(_dedupe(rows))
    keys = [(p.account, p.ticker) for p in result.counted]
    assert len(keys) == len(set(keys))
