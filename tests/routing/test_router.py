"""Link-time choice with its reason; run-time routing by the stored provider only."""

import pytest

from brokerlink.domain import Provider
from brokerlink.routing import (
    BrokerageStatus,
    LinkRouter,
    NoProviderAvailable,
    ProviderFlags,
    ReferenceData,
    UnknownProvider,
    load_coverage,
    provider_for_account,
)

COVERAGE = load_coverage()


def router(**kwargs):
    return LinkRouter(COVERAGE, **kwargs)


class TestChooseProvider:
    def test_schwab_opens_snaptrade_asking_for_trade_access(self):
        d = router().choose_provider("Charles Schwab")
        assert d.provider is Provider.SNAPTRADE
        assert d.provider_institution_id == "SCHWAB"
        assert d.connection_type == "trade-if-available"
        assert d.trading_possible
        assert not d.fallback_used
        assert "SnapTrade" in d.reason

    def test_fidelity_opens_snaptrade_read_only(self):
        d = router().choose_provider("fidelity")
        assert d.provider is Provider.SNAPTRADE
        assert d.connection_type == "read"
        assert not d.trading_possible

    def test_banks_open_plaid(self):
        d = router().choose_provider("Chase")
        assert d.provider is Provider.PLAID
        assert d.provider_institution_id == "ins_56"
        assert d.connection_type is None
        assert "Plaid" in d.reason

    def test_unknown_institution_defaults_to_plaid(self):
        d = router().choose_provider("Tiny Credit Union")
        assert d.provider is Provider.PLAID
        assert d.entry is None
        assert "unknown" in d.reason

    def test_unknown_institution_needing_trading_is_explained_not_obeyed(self):
        d = router().choose_provider("Tiny Credit Union", need_trading=True)
        assert d.provider is Provider.PLAID
        assert d.provider_institution_id is None
        assert not d.trading_possible
        assert "Tiny Credit Union accounts can't place trades here" in d.reason

    @pytest.mark.parametrize("name", ["Chase", "Merrill Edge", "Bank of America", "Empower"])
    def test_no_snaptrade_brokerage_never_routes_to_snaptrade(self, name):
        d = router().choose_provider(name, need_trading=True)
        assert d.provider is Provider.PLAID
        assert d.entry is not None
        assert d.provider_institution_id == d.entry.plaid_institution_id
        assert not d.trading_possible
        assert not d.fallback_used
        assert f"{d.entry.name} accounts can't place trades here" in d.reason

    def test_plaid_preferred_institution_with_a_trading_brokerage_opens_snaptrade(self):
        coverage = load_coverage()
        entry = coverage.get("merrill")
        assert entry is not None
        trading = entry.model_copy(
            update={"allow_trading": True, "snaptrade_slug": "ALPACA", "fallback": "snaptrade"}
        )
        patched = type(coverage)(
            tuple(trading if e.slug == "merrill" else e for e in coverage.entries),
            coverage.source,
            {k: (trading if v.slug == "merrill" else v) for k, v in coverage._index.items()},
        )
        d = LinkRouter(patched).choose_provider("Merrill Edge", need_trading=True)
        assert d.provider is Provider.SNAPTRADE
        assert d.provider_institution_id == "ALPACA"
        assert d.fallback_used
        assert "trading needs SnapTrade" in d.reason

    def test_unknown_institutions_are_searched_in_both_providers_lists(self):
        reference = ReferenceData(
            snaptrade_brokerages={
                "WEBULL": BrokerageStatus("WEBULL", "Webull", allows_trading=True),
            },
            plaid_institutions={"ins_999": "Tiny Credit Union"},
        )
        r = router(reference=reference)
        webull = r.choose_provider("webull")
        assert webull.provider is Provider.SNAPTRADE
        assert webull.provider_institution_id == "WEBULL"
        assert webull.connection_type == "trade-if-available"
        assert "SnapTrade lists it" in webull.reason
        tiny = r.choose_provider("Tiny Credit Union")
        assert tiny.provider is Provider.PLAID
        assert tiny.provider_institution_id == "ins_999"
        assert "Plaid lists it" in tiny.reason

    @pytest.mark.parametrize(
        ("status", "word"),
        [
            (BrokerageStatus("SCHWAB", "Schwab", maintenance_mode=True), "maintenance"),
            (BrokerageStatus("SCHWAB", "Schwab", is_degraded=True), "degraded"),
            (BrokerageStatus("SCHWAB", "Schwab", enabled=False), "disabled"),
        ],
    )
    def test_unavailable_brokerage_falls_back_with_the_reason(self, status, word):
        r = router(reference=ReferenceData(snaptrade_brokerages={"SCHWAB": status}))
        d = r.choose_provider("Schwab")
        assert d.provider is Provider.PLAID
        assert d.fallback_used
        assert d.provider_institution_id == "ins_11"
        assert word in d.reason
        assert "Plaid instead" in d.reason

    def test_unavailable_brokerage_without_fallback_is_refused(self):
        status = BrokerageStatus("ALPACA", "Alpaca", maintenance_mode=True)
        r = router(reference=ReferenceData(snaptrade_brokerages={"ALPACA": status}))
        with pytest.raises(NoProviderAvailable, match="maintenance"):
            r.choose_provider("Alpaca")

    def test_brokerage_that_stopped_trading_is_opened_read_only(self):
        status = BrokerageStatus("ETRADE", "E*TRADE", allows_trading=False)
        d = router(
            reference=ReferenceData(snaptrade_brokerages={"ETRADE": status})
        ).choose_provider("etrade", need_trading=True)
        assert d.provider is Provider.SNAPTRADE
        assert d.connection_type == "read"
        assert not d.trading_possible
        assert "trading is not available" in d.reason

    def test_snaptrade_turned_off_routes_to_plaid(self):
        d = router(flags=ProviderFlags(enable_snaptrade=False)).choose_provider("Schwab")
        assert d.provider is Provider.PLAID
        assert "ENABLE_SNAPTRADE=false" in d.reason

    def test_admin_only_snaptrade(self):
        r = router(flags=ProviderFlags(snaptrade_admin_only=True))
        assert r.choose_provider("Schwab").provider is Provider.PLAID
        assert "administrators only" in r.choose_provider("Schwab").reason
        assert r.choose_provider("Schwab", is_admin=True).provider is Provider.SNAPTRADE

    def test_snaptrade_off_and_trading_needed_stays_read_only_on_plaid(self):
        r = router(flags=ProviderFlags(enable_snaptrade=False))
        d = r.choose_provider("Chase", need_trading=True)
        assert d.provider is Provider.PLAID
        assert "read-only" in d.reason
        assert r.choose_provider("Tiny Credit Union", need_trading=True).provider is Provider.PLAID


class TestRunTimeRouting:
    @pytest.mark.parametrize("stored", ["snaptrade", "plaid", "manual", Provider.PLAID])
    def test_the_stored_provider_decides(self, stored):
        assert provider_for_account(stored) is Provider(stored)

    @pytest.mark.parametrize("stored", [None, "", "yodlee", "SnapTrade "])
    def test_a_missing_or_unknown_provider_is_an_error_not_a_guess(self, stored):
        with pytest.raises(UnknownProvider, match="refusing to guess"):
            provider_for_account(stored)
