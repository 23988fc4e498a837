"""The columnar analysis view equals `analysis_view(consolidate(...))`, portfolio by portfolio."""

from decimal import localcontext

import numpy as np
import pytest
from bench.columnar import Categorical, PositionColumns, analysis_columns
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import columnar
from brokerlink.domain import AccountType, Provider
from brokerlink.portfolio import (
    AccountRef,
    DuplicateAccount,
    MixedCurrencyError,
    analysis_view,
    consolidate,
    detect_duplicate_accounts,
)
from tests.portfolio.positions import D, cash, pos


def reference(portfolios, **options):
    """What each portfolio's view is, or the error it raises, by the product's own path."""
    duplicates = options.pop("duplicates", {})
    out = {}
    for key, rows in portfolios.items():
        try:
            result = consolidate(rows, duplicates=duplicates.get(key, ()))
            out[key] = analysis_view(result, **options)
        except MixedCurrencyError as error:
            out[key] = error
    return out


def assert_same(portfolios, **options):
    """Every portfolio's view equals the reference's: lines, their order, metadata, errors.

    Shares compare as Decimals (value equality): the columnar path returns them with 8 decimal
    places, as the store holds them, so `1E+2` may come back as `100.00000000`.
    """
    expected = reference(portfolios, **{**options})
    result = analysis_columns(PositionColumns.from_positions(portfolios), **options)
    for key, want in expected.items():
        if isinstance(want, MixedCurrencyError):
            with pytest.raises(MixedCurrencyError) as raised:
                result.view(key)
            assert str(raised.value) == str(want)
            continue
        got = result.view(key)
        assert got == want
        assert list(got) == list(want)  # the same order of lines
    assert set(result.errors) == {k for k, v in expected.items() if isinstance(v, Exception)}
    return result


def test_exported_names():
    assert columnar.__all__ == [
        "AnalysisColumns",
        "Categorical",
        "PositionColumns",
        "analysis_columns",
    ]


class TestProductExamples:
    def test_same_ticker_in_two_accounts_sums(self):
        portfolios = {
            1: [
                pos("AAPL", "100", "vanguard-1", Provider.PLAID, cost="9000"),
                pos("AAPL", "50", "schwab-1", Provider.SNAPTRADE, cost="7000"),
            ]
        }
        line = assert_same(portfolios).view(1)["AAPL"]
        assert line.shares == D("150")
        assert (line.account_id, line.cost_basis, line.sources) == ("schwab-1", D("7000"), 2)

    def test_cash_aggregates_on_its_proxy(self):
        portfolios = {
            "u": [
                cash("5000", "chase-checking", Provider.PLAID),
                cash("3000", "schwab-brokerage", Provider.SNAPTRADE),
                cash("1000", "manual", Provider.MANUAL),
            ]
        }
        line = assert_same(portfolios).view("u")["SGOV"]
        assert line.shares == D("9000")
        assert line.is_cash_proxy
        assert line.sources == 3

    def test_provider_priority_in_one_account(self):
        portfolios = {
            7: [pos("TSLA", "10", "schwab-1", Provider.MANUAL), pos("TSLA", "12", "schwab-1")]
        }
        line = assert_same(portfolios).view(7)["TSLA"]
        assert line.shares == D("12")
        assert line.provider is Provider.SNAPTRADE

    def test_portfolios_do_not_mix(self):
        portfolios = {
            1: [pos("AAPL", "1", "a"), cash("5", "a", Provider.SNAPTRADE)],
            2: [pos("AAPL", "2", "a"), cash("7", "a", Provider.SNAPTRADE)],
        }
        result = assert_same(portfolios)
        assert result.view(1)["AAPL"].shares == D("1")
        assert result.view(2)["SGOV"].shares == D("7")


class TestCurrencies:
    def test_two_currencies_on_one_proxy_raise_like_analysis_view(self):
        rows = {1: [cash("100", "a", Provider.SNAPTRADE), cash("100", "b", Provider.PLAID, "CAD")]}
        proxies = {"USD": "SGOV", "CAD": "SGOV"}
        result = assert_same(rows, cash_proxies=proxies)
        with pytest.raises(MixedCurrencyError, match="FX rate CAD->USD"):
            result.view(1)
        converted = assert_same(rows, cash_proxies=proxies, fx_rates={("CAD", "USD"): D("0.7")})
        assert converted.view(1)["SGOV"].shares == D("170.0")

    def test_unmapped_currency_keeps_its_cash_ticker(self):
        rows = {1: [cash("700", "a", Provider.SNAPTRADE, "CAD"), cash("1", "a", Provider.PLAID)]}
        view = assert_same(rows).view(1)
        assert list(view) == ["SGOV", "CUR:CAD"]

    def test_cash_proxy_that_is_also_held_merges_like_analysis_view(self):
        rows = {
            1: [pos("SGOV", "10", "a", kind="etf"), cash("500", "b", Provider.PLAID)],
            2: [pos("SGOV", "10", "a", kind="etf", currency="EUR"), cash("5", "b", Provider.PLAID)],
        }
        result = assert_same(rows)
        assert result.view(1)["SGOV"].shares == D("510")
        with pytest.raises(MixedCurrencyError):
            result.view(2)

    def test_cash_typed_rows_with_other_tickers_and_lower_case(self):
        rows = {
            1: [
                pos("USD", "5", "a", kind="cash"),
                pos("CUR:usd", "6", "b", Provider.PLAID, kind="cash"),
                pos("USD", "7", "c", kind="equity"),
            ]
        }
        assert assert_same(rows).view(1)["SGOV"].shares == D("11")


def test_columns_and_views_cover_every_line():
    portfolios = {
        1: [pos("AAPL", "1", "a"), pos("AAPL", "2", "b"), cash("3", "a", Provider.PLAID)],
        2: [pos("MSFT", "4", "a")],
    }
    result = analysis_columns(PositionColumns.from_positions(portfolios))
    assert len(result) == 3
    assert sorted(zip(*result.columns(), strict=True)) == [
        (1, "AAPL", D("3")),
        (1, "SGOV", D("3")),
        (2, "MSFT", D("4")),
    ]
    assert result.views() == reference(portfolios)


def test_duplicate_accounts_count_once():
    refs = [
        AccountRef("p-1", "Schwab", "1234", AccountType.BROKERAGE, Provider.PLAID, "item-1"),
        AccountRef("s-1", "Schwab", "1234", AccountType.BROKERAGE, Provider.SNAPTRADE, "auth-1"),
    ]
    duplicates = detect_duplicate_accounts(refs)
    rows = {
        1: [pos("AAPL", "10", "p-1", Provider.PLAID), pos("AAPL", "10", "s-1")],
        2: [pos("AAPL", "10", "p-1", Provider.PLAID)],
    }
    result = assert_same(rows, duplicates={1: duplicates})
    assert result.view(1)["AAPL"].shares == D("10")
    assert result.view(2)["AAPL"].shares == D("10")


@pytest.mark.parametrize("amount", ["1E+2", "-0", "0.0", "-5"])
def test_zeros_negatives_and_exponents_equal_the_reference(amount):
    for accounts in (["a"], ["a", "b"], ["a", "b", "c"]):
        rows = {1: [cash(amount, account, Provider.PLAID) for account in accounts]}
        rows[2] = [pos("X", amount, account) for account in accounts]
        assert not assert_same(rows).fallback


def test_metadata_on_a_tie_comes_from_the_first_row_in_the_reference_order():
    rows = {
        1: [
            pos("X", "1", "a", Provider.MANUAL, cost="1"),
            pos("X", "2", "b", Provider.PLAID, cost="2"),
            pos("X", "3", "a", Provider.PLAID, cost="3"),
            pos("X", "4", "c", Provider.PLAID, cost="4"),
        ]
    }
    # Account a's slot comes first (its manual row), so its plaid row is the metadata source.
    assert assert_same(rows).view(1)["X"].cost_basis == D("3")


def test_sums_that_round_are_rounded_in_the_same_order():
    big = "9999999999999999999999999.5"
    rows = {1: [pos("X", big, "a"), pos("X", "0.75", "b"), pos("X", "-0.25", "c")]}
    with localcontext() as context:
        context.prec = 26
        assert_same(rows)


def test_rows_of_one_portfolio_apart_are_still_one_portfolio():
    columns = PositionColumns.from_lists(
        [1, 2, 1],
        ["AAPL", "AAPL", "AAPL"],
        [D("1"), D("2"), D("3")],
        ["USD"] * 3,
        ["equity"] * 3,
        ["a", "a", "b"],
        [Provider.SNAPTRADE] * 3,
        [None] * 3,
    )
    result = analysis_columns(columns)
    assert result.view(1)["AAPL"].shares == D("4")
    assert result.view(2)["AAPL"].shares == D("2")
    assert result.view(3) == {}  # not in the columns: no rows, no lines


class TestColumnsFromTheStore:
    def test_scaled_integers_and_codes_as_the_store_returns_them(self):
        # SELECT CAST(quantity * 100000000 AS BIGINT), ticker_id, ... : no Decimal per row.
        columns = PositionColumns.from_lists(
            Categorical(np.array([0, 0, 1, 0]), ["u1", "u2"]),
            Categorical(np.array([0, 0, 0, 1]), ["AAPL", "CUR:USD"]),
            np.array([150_000_000, 25_000_000, 1, 500_000_000_000], dtype=np.int64),
            Categorical(np.array([0, 0, 0, 0]), ["USD"]),
            Categorical(np.array([0, 0, 0, 1]), ["equity", "cash"]),
            Categorical(np.array([0, 1, 2, 0]), ["a", "b", "c"]),
            np.array([3, 2, 1, 3], dtype=np.int8),
            [D("10"), None, None, None],
        )
        result = analysis_columns(columns)
        assert result.view("u1")["AAPL"].shares == D("1.75")
        assert result.view("u1")["AAPL"].cost_basis == D("10")
        assert result.view("u1")["SGOV"].shares == D("5000")
        assert result.view("u2")["AAPL"].shares == D("0.00000001")
        assert result.view("u2")["AAPL"].provider is Provider.MANUAL

    def test_labels_of_a_categorical_are_distinct(self):
        with pytest.raises(ValueError, match="distinct"):
            Categorical(np.array([0, 1]), ["AAPL", "AAPL"])

    def test_from_decimals_scales_exactly(self):
        columns = PositionColumns.from_positions(
            {1: [pos("X", "1.5", "a"), pos("X", "-2E-8", "b")]}
        )
        assert columns.quantity.tolist() == [150_000_000, -2]
        assert not columns.inexact


class TestFallsBackToTheReference:
    """What numpy cannot do exactly, or what the reference decides by order, it computes itself."""

    @pytest.mark.parametrize(
        "qty", ["0.123456789", "92233720368.54775808", "1E+30", "-99999999999.99999999"]
    )
    def test_quantities_that_are_not_scaled_int64(self, qty):
        rows = {1: [pos("X", qty, "a"), pos("X", "1", "b")], 2: [pos("X", "1", "a")]}
        columns = PositionColumns.from_positions(rows)
        assert list(columns.inexact) == [0]
        result = assert_same(rows)
        assert set(result.fallback) == {1}
        assert sorted(zip(*result.columns(), strict=True)) == [(1, "X", D(qty) + 1), (2, "X", 1)]

    def test_sums_that_could_overflow_int64(self):
        big = "30000000000"  # 3E+18 when scaled: fits, but four of them do not
        rows = {1: [pos("X", big, a) for a in "abcd"], 2: [pos("X", big, "a")]}
        result = assert_same(rows)
        assert result.view(1)["X"].shares == D("120000000000")
        assert set(result.fallback) == {1}

    def test_a_narrow_decimal_context(self):
        rows = {1: [pos("X", "1234567890.12345678", "a"), pos("X", "1", "b")]}
        with localcontext() as context:
            context.prec = 12
            assert assert_same(rows).fallback

    def test_cash_on_a_held_proxy_of_another_currency(self):
        rows = {
            1: [pos("SGOV", "10", "a", kind="etf", currency="usd"), cash("5", "b", Provider.PLAID)],
            2: [pos("SGOV", "10", "a", kind="etf"), cash("5", "b", Provider.PLAID)],
        }
        result = assert_same(rows)
        assert list(result.errors) == [1]
        assert set(result.fallback) == {1}  # portfolio 2 merges in numpy


# ---- property: any mix equals the reference ---------------------------------------------------

# Whole numbers of 10**-8 within int64 when scaled: what the store holds, and numpy computes.
_exact = st.one_of(
    st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False),
    st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False),
    st.decimals(min_value=-(9 * 10**10), max_value=9 * 10**10, places=8, allow_nan=False),
    st.sampled_from([D("0"), D("-0"), D("1E+2"), D("0.10"), D("5.000"), D("3E+10"), D("-0E-8")]),
).map(str)
# And what only the reference can compute exactly: more places, or beyond int64 when scaled.
_any = st.one_of(
    _exact,
    st.decimals(min_value=-1, max_value=1, places=10, allow_nan=False).map(str),
    st.sampled_from(["1E+12", "-92233720368.54775808", "0.000000001", "1E-20"]),
)


def _rows(quantities):
    return st.builds(
        pos,
        ticker=st.sampled_from(
            ["AAPL", "AAPL", "MSFT", "SGOV", "CUR:USD", "CUR:EUR", "CUR:cad", "USD", "CUR:"]
        ),
        qty=quantities,
        account=st.sampled_from(["a", "b", "c"]),
        provider=st.sampled_from(list(Provider)),
        kind=st.sampled_from(["equity", "equity", "etf", "cash"]),
        currency=st.sampled_from(["USD", "USD", "USD", "EUR", "usd"]),
        cost=st.none() | st.sampled_from(["1", "2.5"]),
    )


def _portfolios(quantities):
    rows = st.lists(_rows(quantities), max_size=25)
    return st.dictionaries(st.integers(0, 5), rows, max_size=6)


_proxies = st.sampled_from(
    [{"USD": "SGOV"}, {}, {"USD": "SGOV", "EUR": "SGOV"}, {"EUR": "AAPL", "CAD": "CUR:USD"}]
)
_losers = st.dictionaries(st.integers(0, 5), st.sets(st.sampled_from(["a", "b", "c"]), max_size=2))
_FX = {("EUR", "USD"): D("1.1"), ("CAD", "USD"): D("0.7")}


def _duplicates(draw_losers):
    """DuplicateAccount entries whose loser is the given account, per portfolio."""
    out = {}
    for key, losers in draw_losers.items():
        refs = [
            AccountRef(a, "Bank", "1", AccountType.BROKERAGE, Provider.PLAID, a) for a in losers
        ]
        out[key] = [
            DuplicateAccount(winner=ref, loser=ref, reason=f"dup {ref.key}") for ref in refs
        ]
    return out


@settings(max_examples=2000, deadline=None)
@given(_portfolios(_exact), _proxies, st.booleans(), _losers)
def test_equals_analysis_view_of_consolidate(portfolios, proxies, with_rate, losers):
    options = {"cash_proxies": proxies, "fx_rates": _FX if with_rate else None}
    assert_same(portfolios, duplicates=_duplicates(losers), **options)


@settings(max_examples=500, deadline=None)
@given(_portfolios(_any), _proxies, st.booleans(), _losers)
def test_equals_analysis_view_of_consolidate_for_any_decimal(portfolios, proxies, rate, losers):
    options = {"cash_proxies": proxies, "fx_rates": _FX if rate else None}
    assert_same(portfolios, duplicates=_duplicates(losers), **options)


def test_columns_of_different_lengths_or_unknown_ranks_are_refused():
    one = Categorical(np.array([0]), ["x"])
    with pytest.raises(ValueError, match="length"):
        PositionColumns(one, one, np.array([1, 2]), one, one, one, np.array([3], np.int8), [None])
    with pytest.raises(ValueError, match="priority"):
        PositionColumns(one, one, np.array([1]), one, one, one, np.array([4], np.int8), [None])


def test_the_sort_without_a_combined_key_gives_the_same(monkeypatch):
    # Codes too wide for one int64 key sort with np.lexsort instead.
    monkeypatch.setattr(columnar, "_LIMIT", 1)
    rows = {
        n: [
            pos("AAPL", "1.5", "b", Provider.MANUAL, cost="1"),
            pos("AAPL", "2", "a", Provider.PLAID, cost="2"),
            pos("MSFT", "3", "a"),
            pos("AAPL", "4", "b", Provider.PLAID, cost="3"),
            cash("5", "b", Provider.PLAID),
            cash("6", "a", Provider.SNAPTRADE),
        ][n:]
        for n in range(4)
    }
    assert_same(rows)
