from datetime import date
from decimal import Decimal

import pydantic
import pytest

import brokerlink.domain as domain
from brokerlink.domain import (
    Instrument,
    InstrumentKind,
    OptionDetails,
    OptionRight,
    Position,
    Provider,
    RateLimited,
    TechnicalError,
)


def test_exported_members():
    # The public surface is deliberate: adding or removing a name is a visible change.
    assert set(domain.__all__) == {
        "AccountSummary", "AccountType", "AuthFailed", "Balance", "Capabilities", "Connection",
        "ConnectionAccess", "Holding", "Instrument", "InstrumentKind", "InvestmentsConnector",
        "LogicalError", "MalformedResponse", "NotFound", "OptionDetails", "OptionRight", "Order",
        "OrderPreview", "OrderRequest", "OrderSide", "OrderStatus", "OrderType", "Position",
        "Provider", "ProviderError", "ProviderRejected", "ProviderUnavailable", "RateLimited",
        "ReconnectRequired", "RefreshResult", "TechnicalError", "TimeInForce", "TradingConnector",
        "cash_ticker", "normalize_symbol",
    }  # fmt: skip
    for name in domain.__all__:
        assert hasattr(domain, name)


def test_provider_includes_manual():
    assert {p.value for p in Provider} == {"snaptrade", "plaid", "manual"}


def test_no_field_is_named_after_a_vendor():
    for model in (Instrument, Position, domain.AccountSummary, domain.Order, domain.Balance):
        for field in model.model_fields:
            assert "snaptrade" not in field, (model, field)
            assert "plaid" not in field, (model, field)


def test_position_keeps_decimals_and_option_identity():
    option = Instrument(
        symbol="AAPL  260116C00200000",
        kind=InstrumentKind.OPTION,
        option=OptionDetails(
            underlying="AAPL",
            strike=Decimal("200"),
            expiry=date(2026, 1, 16),
            right=OptionRight.CALL,
        ),
        provider_ids={Provider.SNAPTRADE: "abc"},
    )
    pos = Position(
        provider=Provider.SNAPTRADE,
        account_id="acc",
        instrument=option,
        quantity=Decimal("0.10000001"),
        currency="USD",
        cost_basis=Decimal("1234.56"),
    )
    assert pos.quantity == Decimal("0.10000001")
    assert pos.instrument.option is not None
    assert pos.instrument.option.multiplier == 100
    with pytest.raises(pydantic.ValidationError):
        pos.model_copy(update={}).__class__(**{**pos.model_dump(), "unexpected": 1})


def test_error_families():
    err = RateLimited(
        "slow down", provider=Provider.SNAPTRADE, operation="accounts.list", status=429
    )
    err.retry_after = 7.0
    assert isinstance(err, TechnicalError)
    assert err.retryable
    assert "accounts.list" in str(err)
    assert "status=429" in str(err)
