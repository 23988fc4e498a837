"""SnapTrade payloads to domain models: kinds, cash, options, Decimal, malformed fields."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from brokerlink.domain import (
    AccountType,
    ConnectionAccess,
    InstrumentKind,
    OptionRight,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Provider,
)
from brokerlink.errors import ValidationError
from brokerlink.providers.snaptrade import SnapTradeMalformedResponse
from brokerlink.providers.snaptrade import normalize as n

ACC = "acc-1"


def stock(symbol="AAPL", kind="stock", **kw):
    return {
        "kind": kind,
        "id": f"id-{symbol}",
        "symbol": symbol,
        "raw_symbol": symbol,
        "description": f"{symbol} Inc",
        "currency": "USD",
        "exchange": "XNAS",
        "figi_instrument": {"figi_code": "BBG000B9XRY4", "figi_share_class": None},
        **kw,
    }


def payload(*rows, as_of="2026-11-24 14:30:00+00:00"):
    return {"results": list(rows), "data_freshness": {"as_of": as_of}}


def row(instrument, units="10", price="187.5", cost_basis="150", currency="USD", **kw):
    return {
        "instrument": instrument,
        "units": units,
        "price": price,
        "cost_basis": cost_basis,
        "currency": currency,
        **kw,
    }


class TestParseDecimal:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("10.5", Decimal("10.5")),
            (0.1, Decimal("0.1")),
            (15363.23, Decimal("15363.23")),
            (3, Decimal(3)),
            ("1e-7", Decimal("1e-7")),
            (None, None),
        ],
    )
    def test_values(self, raw, expected):
        assert n.parse_decimal(raw, "f") == expected

    @pytest.mark.parametrize("raw", ["abc", True, float("nan"), "Infinity", [], {}])
    def test_bad_values_name_the_field(self, raw):
        with pytest.raises(SnapTradeMalformedResponse) as info:
            n.parse_decimal(raw, "results[0].units")
        assert info.value.field == "results[0].units"


class TestInstrumentKinds:
    @pytest.mark.parametrize(
        ("kind", "expected"),
        [
            ("stock", InstrumentKind.EQUITY),
            ("adr", InstrumentKind.EQUITY),
            ("etf", InstrumentKind.ETF),
            ("mutualfund", InstrumentKind.MUTUAL_FUND),
            ("crypto", InstrumentKind.CRYPTO),
            ("future", InstrumentKind.FUTURE),
            ("cef", InstrumentKind.OTHER),
            ("other", InstrumentKind.OTHER),
            ("warrant-ish", InstrumentKind.OTHER),
        ],
    )
    def test_position_kinds(self, kind, expected):
        assert n.instrument_kind(position_kind=kind) is expected

    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            ("cs", InstrumentKind.EQUITY),
            ("et", InstrumentKind.ETF),
            ("oef", InstrumentKind.MUTUAL_FUND),
            ("mf", InstrumentKind.MUTUAL_FUND),
            ("bnd", InstrumentKind.BOND),
            ("crypto", InstrumentKind.CRYPTO),
            ("wt", InstrumentKind.OTHER),
            ("struct", InstrumentKind.OTHER),
        ],
    )
    def test_security_type_codes(self, code, expected):
        assert n.instrument_kind(type_code=code) is expected

    def test_unknown_kind_is_other_never_equity(self):
        (p,) = n.from_snaptrade_positions(ACC, payload(row(stock("XYZ", kind="spaceship"))))
        assert p.instrument.kind is InstrumentKind.OTHER
        assert p.instrument.raw_kind == "spaceship"
        assert "unknown_instrument_kind" in p.flags


class TestPositions:
    def test_stock(self):
        (p,) = n.from_snaptrade_positions(ACC, payload(row(stock("shop.to", exchange="XTSE"))))
        assert p.provider is Provider.SNAPTRADE
        assert p.instrument.symbol == "SHOP"
        assert p.instrument.exchange == "XTSE"
        assert p.instrument.figi == "BBG000B9XRY4"
        assert p.instrument.provider_ids == {Provider.SNAPTRADE: "id-shop.to"}
        assert p.quantity == Decimal("10")
        assert p.price == Decimal("187.5")
        assert p.market_value == Decimal("1875.0")
        assert p.cost_basis == Decimal("1500")  # per-share cost times units
        assert p.as_of == datetime(2026, 11, 24, 14, 30, tzinfo=UTC)

    def test_option_details(self):
        option = {
            "kind": "option",
            "id": "opt-1",
            "symbol": "AAPL  261218C00240000",
            "option_type": "CALL",
            "strike_price": "240",
            "expiration_date": "2026-12-18",
            "multiplier": "100",
            "description": "AAPL Dec 18 2026 240 CALL",
            "underlying": stock("AAPL"),
        }
        (p,) = n.from_snaptrade_positions(
            ACC, payload(row(option, units="2", price="3.5", cost_basis="2.25"))
        )
        inst = p.instrument
        assert inst.kind is InstrumentKind.OPTION
        assert inst.symbol == "AAPL261218C00240000"
        assert inst.option is not None
        assert inst.option.underlying == "AAPL"
        assert inst.option.strike == Decimal("240")
        assert inst.option.expiry == date(2026, 12, 18)
        assert inst.option.right is OptionRight.CALL
        assert p.market_value == Decimal("700.0")
        assert p.cost_basis == Decimal("450.00")

    def test_option_with_bad_right_names_field(self):
        option = {
            "kind": "option",
            "id": "o",
            "symbol": "X",
            "option_type": "MAYBE",
            "strike_price": "1",
            "expiration_date": "2026-01-01",
            "multiplier": "100",
            "underlying": stock(),
        }
        with pytest.raises(SnapTradeMalformedResponse) as info:
            n.from_snaptrade_positions(ACC, payload(row(option)))
        assert info.value.field == "results[0].instrument.option_type"

    def test_nullable_fields(self):
        (p,) = n.from_snaptrade_positions(
            ACC, payload(row(stock(symbol=None), units=None, price=None, cost_basis=None))
        )
        assert p.instrument.symbol is None
        assert {"missing_symbol", "missing_quantity"} <= p.flags
        assert p.market_value is None
        assert p.cost_basis is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"data_freshness": {}}, "results"),
            ({"results": "nope"}, "results"),
            ({"results": [{"units": "1"}]}, "results[0].instrument"),
            ({"results": [{"instrument": {"id": "x"}}]}, "results[0].instrument.kind"),
            ({"results": [row(stock(), units="ten")]}, "results[0].units"),
            ({"results": [row(stock(currency=None), currency=None)]}, "results[0].currency"),
            ({"results": [], "data_freshness": {"as_of": "yesterday"}}, "data_freshness.as_of"),
        ],
    )
    def test_malformed_names_field(self, body, field):
        with pytest.raises(SnapTradeMalformedResponse) as info:
            n.from_snaptrade_positions(ACC, body)
        assert info.value.field == field
        assert field in str(info.value)


class TestCash:
    def test_one_cash_position_per_currency(self):
        balances = n.from_snaptrade_balances(
            ACC,
            [
                {
                    "currency": {"id": "1", "code": "USD", "name": "US Dollar"},
                    "cash": 300.71,
                    "buying_power": 410.71,
                },
                {
                    "currency": {"id": "2", "code": "CAD", "name": "Canadian Dollar"},
                    "cash": "12.5",
                    "buying_power": None,
                },
                {
                    "currency": {"id": "1", "code": "USD", "name": "US Dollar"},
                    "cash": 0.29,
                    "buying_power": None,
                },
                {
                    "currency": {"id": "3", "code": "EUR", "name": "Euro"},
                    "cash": None,
                    "buying_power": None,
                },
            ],
        )
        assert balances[0].cash == Decimal("300.71")
        cash = n.cash_positions(balances)
        assert [(p.ticker, p.quantity, p.currency) for p in cash] == [
            ("CUR:CAD", Decimal("12.5"), "CAD"),
            ("CUR:USD", Decimal("301.00"), "USD"),
        ]
        assert all(p.instrument.kind is InstrumentKind.CASH for p in cash)
        assert all(p.market_value == p.quantity for p in cash)

    def test_balance_without_currency_names_field(self):
        with pytest.raises(SnapTradeMalformedResponse) as info:
            n.from_snaptrade_balances(ACC, [{"cash": 1.0}])
        assert info.value.field == "[0].currency.code"


class TestAccountsAndConnections:
    def test_account(self):
        raw = {
            "id": ACC,
            "brokerage_authorization": "auth-1",
            "name": "Roth IRA",
            "number": "Q6542138443",
            "institution_name": "Schwab",
            "balance": {"total": {"amount": 15363.23, "currency": "USD"}},
            "status": "open",
            "raw_type": "Roth IRA",
            "account_category": "INVESTMENT",
            "is_paper": False,
            "sync_status": {
                "holdings": {"last_successful_sync": "2024-06-28 18:42:46.561408+00:00"}
            },
        }
        a = n.from_snaptrade_account(raw)
        assert a.total_value == Decimal("15363.23")
        assert a.number_mask == "8443"
        assert a.type is AccountType.RETIREMENT
        assert a.holdings_as_of is not None
        assert a.holdings_as_of.year == 2024

    def test_account_missing_id(self):
        with pytest.raises(SnapTradeMalformedResponse) as info:
            n.from_snaptrade_account({"brokerage_authorization": "a"}, field="[2]")
        assert info.value.field == "[2].id"

    def test_authorization(self):
        c = n.from_snaptrade_authorization(
            {
                "id": "auth-1",
                "type": "trade",
                "disabled": False,
                "disabled_date": None,
                "created_date": "2024-08-20 21:56:19.123935+00:00",
                "data_freshness_mode": "realtime",
                "brokerage": {"slug": "SCHWAB", "display_name": "Charles Schwab"},
            }
        )
        assert c.access is ConnectionAccess.TRADE
        assert c.institution_slug == "SCHWAB"
        assert c.realtime is True


class TestOrders:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("EXECUTED", OrderStatus.FILLED),
            ("PARTIAL", OrderStatus.PARTIALLY_FILLED),
            ("CANCELED", OrderStatus.CANCELED),
            ("FAILED", OrderStatus.REJECTED),
            ("ACCEPTED", OrderStatus.ACCEPTED),
            ("SOMETHING_NEW", OrderStatus.UNKNOWN),
        ],
    )
    def test_status(self, raw, expected):
        o = n.from_snaptrade_order(
            ACC,
            {
                "brokerage_order_id": "B1",
                "status": raw,
                "action": "SELL_TO_CLOSE",
                "total_quantity": "2",
                "order_type": "StopLimit",
                "time_in_force": "GTC",
                "universal_symbol": {"symbol": "brk.b"},
            },
        )
        assert o.status is expected
        assert o.raw_status == raw
        assert o.side is OrderSide.SELL
        assert o.order_type is OrderType.STOP_LIMIT
        assert o.symbol == "BRK.B"
        assert o.quantity == Decimal("2")

    def test_impact(self):
        p = n.from_snaptrade_impact(
            ACC,
            {
                "trade": {
                    "id": "t-1",
                    "action": "BUY",
                    "units": 2,
                    "price": 187.25,
                    "symbol": {"symbol": "AAPL", "currency": {"code": "USD"}},
                },
                "trade_impacts": [
                    {"currency": "USD", "remaining_cash": 100.1, "estimated_commission": 0}
                ],
            },
        )
        assert p.preview_id == "t-1"
        assert p.price == Decimal("187.25")
        assert p.estimated_commission == Decimal(0)
        assert p.remaining_cash == Decimal("100.1")

    def test_trade_form(self):
        req = OrderRequest(
            account_id=ACC,
            side=OrderSide.BUY,
            symbol="AAPL",
            order_type=OrderType.LIMIT,
            quantity=Decimal("1.5"),
            limit_price=Decimal("187.25"),
            client_order_id="c-1",
        )
        assert n.to_snaptrade_trade_form(req) == {
            "account_id": ACC,
            "action": "BUY",
            "order_type": "Limit",
            "time_in_force": "Day",
            "price": 187.25,
            "units": 1.5,
            "symbol": "AAPL",
            "client_order_id": "c-1",
        }

    def test_impact_form_needs_instrument_id(self):
        req = OrderRequest(account_id=ACC, side=OrderSide.BUY, symbol="AAPL", quantity=Decimal(1))
        with pytest.raises(ValidationError) as info:
            n.to_snaptrade_impact_form(req)
        assert info.value.field == "instrument_id"
