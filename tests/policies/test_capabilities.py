"""Capabilities derived at import: trading needs all four conditions, realtime needs the plan."""

import pytest

from brokerlink.domain.enums import ConnectionAccess, Provider
from brokerlink.policies import connection_type_for, derive_capabilities
from brokerlink.routing.coverage import load_coverage


@pytest.fixture(scope="module")
def coverage():
    return load_coverage()


def _derive(
    coverage, slug, *, provider=Provider.SNAPTRADE, allows=True, access="trade", plan="daily"
):
    return derive_capabilities(
        provider=provider,
        entry=coverage.get(slug),
        brokerage_allows_trading=allows,
        access=ConnectionAccess(access),
        plan=plan,
    )


def test_schwab_with_trade_access_trades(coverage):
    decision = _derive(coverage, "schwab")
    assert decision.capabilities.trading is True
    assert "Schwab" in decision.trading_reason


def test_fidelity_is_read_only_in_the_map(coverage):
    decision = _derive(coverage, "fidelity")
    assert decision.capabilities.trading is False
    assert "read-only in the coverage map" in decision.trading_reason
    assert decision.capabilities.trading_block == "institution_read_only"


def test_brokerage_refusing_trading_wins(coverage):
    decision = _derive(coverage, "schwab", allows=False)
    assert decision.capabilities.trading is False
    assert "does not allow" in decision.trading_reason


def test_unknown_brokerage_flag_is_not_a_yes(coverage):
    assert _derive(coverage, "schwab", allows=None).capabilities.trading is False


def test_read_connection_does_not_trade(coverage):
    decision = _derive(coverage, "schwab", access="read")
    assert decision.capabilities.trading is False
    assert "read access only" in decision.trading_reason
    assert decision.capabilities.trading_block == "read_access"


@pytest.mark.parametrize("provider", [Provider.PLAID, Provider.MANUAL])
def test_plaid_and_manual_never_trade_nor_stream(coverage, provider):
    decision = _derive(coverage, "schwab", provider=provider, plan="realtime")
    assert decision.capabilities.trading is False
    assert decision.capabilities.realtime is False
    assert "read-only" in decision.trading_reason


def test_realtime_follows_the_snaptrade_plan(coverage):
    assert _derive(coverage, "schwab", plan="realtime").capabilities.realtime is True
    daily = _derive(coverage, "schwab", plan="daily")
    assert daily.capabilities.realtime is False
    assert "once a day" in daily.realtime_reason


def test_portal_asks_for_trade_only_where_the_map_allows(coverage):
    assert connection_type_for(coverage.get("schwab")) == "trade-if-available"
    assert connection_type_for(coverage.get("fidelity")) == "read"
    assert connection_type_for(None) == "read"
