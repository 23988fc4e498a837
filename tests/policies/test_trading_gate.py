"""The trading gate refuses before any provider call, naming account, provider and reason."""

import pytest

from brokerlink.domain import Capabilities, Provider
from brokerlink.policies import TradingRefused, check_trading_allowed


@pytest.mark.parametrize(
    ("provider", "capabilities", "why"),
    [
        (Provider.PLAID, Capabilities(trading=True), "linked through Plaid, which reads"),
        (Provider.MANUAL, Capabilities(), "entered by hand"),
        (Provider.SNAPTRADE, Capabilities(trading=False), "linked without trade access"),
    ],
)
def test_refusals_name_account_provider_and_reason(provider, capabilities, why):
    with pytest.raises(TradingRefused) as refused:
        check_trading_allowed(
            account_label="Fidelity ••1234", provider=provider, capabilities=capabilities
        )
    assert refused.value.status_code == 403
    assert refused.value.code == "trading_not_allowed"
    assert "Fidelity ••1234" in refused.value.message
    assert provider.value in refused.value.message
    assert why in refused.value.reason


def test_snaptrade_account_with_trading_passes():
    check_trading_allowed(
        account_label="Schwab ••9876",
        provider=Provider.SNAPTRADE,
        capabilities=Capabilities(trading=True),
    )


@pytest.mark.parametrize(
    ("block", "why"),
    [
        ("institution_read_only", "Fidelity Investments is read-only here"),
        ("not_covered", "Fidelity Investments is read-only here"),
        ("read_access", "linked without trade access: reconnect it"),
        ("brokerage", "SnapTrade does not offer trading at Fidelity Investments"),
    ],
)
def test_the_reason_says_why_not_that_there_is_no_trading(block, why):
    with pytest.raises(TradingRefused) as refused:
        check_trading_allowed(
            account_label="Fidelity ••1234",
            provider=Provider.SNAPTRADE,
            capabilities=Capabilities(trading=False, trading_block=block),
            institution="Fidelity Investments",
        )
    assert why in refused.value.reason
    assert "capabilities" not in refused.value.reason
