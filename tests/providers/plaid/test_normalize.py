"""The normaliser's traps, each on a payload shaped like the spec's own example."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from brokerlink.domain.enums import AccountType, InstrumentKind, OptionRight, Provider
from brokerlink.domain.errors import MalformedResponse
from brokerlink.domain.models import Position
from brokerlink.providers.plaid.normalize import (
    FLAG_CASH_EQUIVALENT,
    FLAG_CASH_FROM_BALANCE,
    FLAG_DUPLICATE,
    FLAG_INSTITUTION_SYMBOL,
    FLAG_OPTION_UNITS,
    FLAG_SYMBOL_FALLBACK,
    account_type,
    cash_by_account,
    from_plaid_account,
    from_plaid_balance,
    from_plaid_holdings,
)

from .conftest import spec_holdings

K401 = "k67E4xKvMlhmleEa4pg9hlwGGNnnEeixPolGm"
IRA = "JqMLm4rJwpF6gMPJwBqdh9ZjjPvvpDcb7kDK1"
CRYPTO = "ax0xgOBYRAIqOOjeLZr0iZBb8r6K88HZXpvmq"
MONEY_MARKET = "5Bvpj4QknlhVWk7GygpwfVKdd133GoCxB814g"


def _by_plaid_id(positions: list[Position], security_id: str) -> list[Position]:
    return [p for p in positions if p.instrument.provider_ids.get(Provider.PLAID) == security_id]


def _one(positions: list[Position], security_id: str, account_id: str = K401) -> Position:
    found = [p for p in _by_plaid_id(positions, security_id) if p.account_id == account_id]
    assert len(found) == 1
    return found[0]


class TestJoinAndValues:
    def test_every_holding_becomes_a_position(self):
        payload = spec_holdings()
        positions = from_plaid_holdings(payload)
        from_holdings = [p for p in positions if FLAG_CASH_FROM_BALANCE not in p.flags]
        assert len(from_holdings) == len(payload["holdings"]) == 9

    def test_joined_by_security_id(self):
        mf = _one(from_plaid_holdings(spec_holdings()), "JDdP7XPMklt5vwPmDN45t3KAoWAPmjtpaW7DP")
        assert mf.instrument.symbol == "MIPTX"
        assert mf.instrument.kind is InstrumentKind.MUTUAL_FUND
        assert mf.instrument.name == "Matthews Pacific Tiger Fund Insti Class"
        assert mf.instrument.isin == "US5771308344"
        assert mf.instrument.exchange == "XNAS"

    def test_cost_basis_is_total_not_per_share(self):
        # ACHN: quantity 1 is too easy; DBLTX holds 2 units with cost_basis 10 (the total).
        dbltx = _one(from_plaid_holdings(spec_holdings()), "NDVQrXQoqzt5v3bAe8qRt4A7mK7wvZCLEBBJk")
        assert dbltx.quantity == Decimal("2")
        assert dbltx.cost_basis == Decimal("10")
        # T-bill: 10 units, cost basis 948.08 total (94.808 each).
        bill = _one(from_plaid_holdings(spec_holdings()), "Lxe4yz4XQEtwb2YArO7RFMpPDvPxy7FALRyea")
        assert bill.cost_basis == Decimal("948.08")
        assert bill.cost_basis != bill.quantity * Decimal("948.08")

    def test_institution_value_is_value_of_record(self):
        payload = spec_holdings()
        # Make institution_value disagree with quantity x price, as institutions do.
        payload["holdings"][4]["institution_value"] = 640.0
        mf = _one(from_plaid_holdings(payload), "JDdP7XPMklt5vwPmDN45t3KAoWAPmjtpaW7DP")
        assert mf.market_value == Decimal("640.0")
        assert mf.price == Decimal("27")
        assert mf.price_as_of == datetime(2021, 4, 13, tzinfo=UTC)

    def test_price_datetime_wins_over_date(self):
        doge = _one(
            from_plaid_holdings(spec_holdings()), "vLRMV3MvY1FYNP91on35CJD5QN5rw9Fpa9qOL", CRYPTO
        )
        assert doge.price_as_of == datetime(2022, 6, 7, 23, 1, tzinfo=UTC)

    def test_duplicate_holding_kept_and_flagged(self):
        payload = spec_holdings()
        payload["holdings"].append(dict(payload["holdings"][4]))
        dupes = _by_plaid_id(from_plaid_holdings(payload), "JDdP7XPMklt5vwPmDN45t3KAoWAPmjtpaW7DP")
        assert len(dupes) == 2
        assert all(FLAG_DUPLICATE in p.flags for p in dupes)
        single = _one(from_plaid_holdings(payload), "NDVQrXQoqzt5v3bAe8qRt4A7mK7wvZCLEBBJk")
        assert FLAG_DUPLICATE not in single.flags

    def test_decimals_from_str(self):
        mf = _one(from_plaid_holdings(spec_holdings()), "nnmo8doZ4lfKNEDe3mPJipLGkaGw3jfPrpxoN")
        assert mf.market_value == Decimal("1373.6865")
        assert mf.quantity == Decimal("100.05")


class TestSymbols:
    def test_null_ticker_falls_back_to_cusip_and_is_flagged(self):
        bill = _one(from_plaid_holdings(spec_holdings()), "Lxe4yz4XQEtwb2YArO7RFMpPDvPxy7FALRyea")
        assert bill.instrument.symbol == "912797HE0"
        assert FLAG_SYMBOL_FALLBACK in bill.flags

    def test_null_ticker_falls_back_to_isin(self):
        payload = spec_holdings()
        mf = next(s for s in payload["securities"] if s["ticker_symbol"] == "MIPTX")
        mf["ticker_symbol"] = None
        mf["cusip"] = None
        pos = _one(from_plaid_holdings(payload), mf["security_id"])
        assert pos.instrument.symbol == "US5771308344"
        assert FLAG_SYMBOL_FALLBACK in pos.flags

    def test_no_identifier_at_all_is_kept_by_name(self):
        payload = spec_holdings()
        bill = next(s for s in payload["securities"] if s["ticker_symbol"] is None)
        bill["cusip"] = None
        pos = _one(from_plaid_holdings(payload), bill["security_id"])
        assert pos.instrument.symbol is None
        assert pos.instrument.name == "US Treasury Bill - 5.43% 31/10/2024 USD 100"
        assert FLAG_SYMBOL_FALLBACK in pos.flags

    def test_institution_id_as_ticker_is_flagged(self):
        etf = _one(from_plaid_holdings(spec_holdings()), "nnmo8doZ4lfKNEDe3mPJipLGkaGw3jfPrpxoN")
        assert etf.instrument.symbol == "NHX105509"
        assert FLAG_INSTITUTION_SYMBOL in etf.flags


class TestAsOf:
    def test_a_holding_is_as_of_its_price_unless_told(self):
        positions = from_plaid_holdings(spec_holdings())
        priced = [p for p in positions if p.price_as_of is not None]
        assert priced
        assert all(p.as_of == p.price_as_of for p in priced)
        told = datetime(2026, 12, 1, tzinfo=UTC)
        assert {p.as_of for p in from_plaid_holdings(spec_holdings(), as_of=told)} == {told}


class TestKinds:
    def test_option_contract(self):
        opt = _one(
            from_plaid_holdings(spec_holdings()), "8E4L9XLl6MudjEpwPAAgivmdZRdBPJuvMPlPb", IRA
        )
        assert opt.instrument.kind is InstrumentKind.OPTION
        assert opt.instrument.raw_kind == "derivative/option"
        assert opt.instrument.option is not None
        assert opt.instrument.option.underlying == "NFLX"
        assert opt.instrument.option.strike == Decimal("355")
        assert opt.instrument.option.right is OptionRight.CALL
        assert opt.instrument.option.expiry == date(2018, 2, 1)
        # Plaid's 10000 underlying units are 100 contracts: contracts x price x 100 = value.
        assert opt.price is not None
        assert opt.instrument.option is not None
        assert opt.quantity == Decimal(100)
        assert opt.quantity * opt.price * opt.instrument.option.multiplier == opt.market_value
        assert FLAG_OPTION_UNITS in opt.flags

    def test_fixed_income_is_bond(self):
        bill = _one(from_plaid_holdings(spec_holdings()), "Lxe4yz4XQEtwb2YArO7RFMpPDvPxy7FALRyea")
        assert bill.instrument.kind is InstrumentKind.BOND
        assert bill.instrument.raw_kind == "fixed income/bill"

    def test_crypto_cash_equivalent_stays_crypto(self):
        # Plaid marks Dogecoin is_cash_equivalent=true: it is still crypto, not cash.
        doge = _one(
            from_plaid_holdings(spec_holdings()), "vLRMV3MvY1FYNP91on35CJD5QN5rw9Fpa9qOL", CRYPTO
        )
        assert doge.instrument.kind is InstrumentKind.CRYPTO
        assert doge.instrument.symbol == "DOGE"
        assert doge.cost_basis == Decimal("92.47")

    @pytest.mark.parametrize(
        ("plaid_type", "subtype", "kind"),
        [
            ("loan", "loan", InstrumentKind.OTHER),
            ("other", None, InstrumentKind.OTHER),
            (None, None, InstrumentKind.OTHER),
            ("something new", "x", InstrumentKind.OTHER),
            ("equity", "preferred equity", InstrumentKind.EQUITY),
            ("etf", "etf", InstrumentKind.ETF),
            ("derivative", "warrant", InstrumentKind.OTHER),
        ],
    )
    def test_other_types_keep_raw_kind(self, plaid_type, subtype, kind):
        payload = spec_holdings()
        sec = next(s for s in payload["securities"] if s["ticker_symbol"] == "ACHN")
        sec["type"], sec["subtype"] = plaid_type, subtype
        pos = _one(from_plaid_holdings(payload), sec["security_id"])
        assert pos.instrument.kind is kind
        expected_raw = "/".join(p for p in (plaid_type, subtype) if p) or None
        assert pos.instrument.raw_kind == expected_raw


class TestCash:
    def test_cash_security_becomes_cur_position(self):
        cash = _one(from_plaid_holdings(spec_holdings()), "d6ePmbPxgWCWmMVv66q9iPV94n91vMtov5Are")
        assert cash.instrument.symbol == "CUR:USD"
        assert cash.instrument.kind is InstrumentKind.CASH
        assert cash.market_value == Decimal("12345.67")

    @pytest.mark.parametrize(
        ("ticker", "sec_type", "cash_eq"),
        [
            ("CUR:USD", "cash", True),
            ("CUR:USD", None, None),
            ("USD", None, True),
            (None, "cash", True),
        ],
    )
    def test_cash_spellings(self, ticker, sec_type, cash_eq):
        payload = spec_holdings()
        sec = next(s for s in payload["securities"] if s["type"] == "cash")
        sec["ticker_symbol"], sec["type"], sec["is_cash_equivalent"] = ticker, sec_type, cash_eq
        cash = _one(from_plaid_holdings(payload), sec["security_id"])
        assert cash.instrument.symbol == "CUR:USD"
        assert cash.instrument.kind is InstrumentKind.CASH

    def test_money_market_fund_keeps_ticker(self):
        payload = spec_holdings()
        sec = next(s for s in payload["securities"] if s["type"] == "cash")
        sec["ticker_symbol"], sec["subtype"] = "VMFXX", "money market"
        fund = _one(from_plaid_holdings(payload), sec["security_id"])
        assert fund.instrument.symbol == "VMFXX"
        assert fund.instrument.kind is InstrumentKind.CASH
        assert FLAG_CASH_EQUIVALENT in fund.flags

    def test_cash_not_counted_twice(self):
        payload = spec_holdings()
        # The 401k reports cash in its balance AND as a USD holding: only the holding counts.
        payload["accounts"][2]["balances"]["available"] = 12345.67
        positions = from_plaid_holdings(payload, account_id=K401)
        cash = [p for p in positions if p.instrument.kind is InstrumentKind.CASH]
        assert len(cash) == 1
        assert FLAG_CASH_FROM_BALANCE not in cash[0].flags
        assert cash_by_account(positions) == {K401: {"USD": Decimal("12345.67")}}

    def test_cash_from_balance_only_without_cash_holdings(self):
        payload = spec_holdings()
        payload["accounts"][3]["balances"]["available"] = 48200.03  # crypto acct: no cash holding
        positions = from_plaid_holdings(payload, account_id=CRYPTO)
        cash = [p for p in positions if p.instrument.kind is InstrumentKind.CASH]
        assert len(cash) == 1
        assert cash[0].instrument.symbol == "CUR:USD"
        assert FLAG_CASH_FROM_BALANCE in cash[0].flags
        assert cash[0].market_value == Decimal("48200.03")

    def test_investment_current_is_never_cash(self):
        # The IRA's balance has available=null, current=110.01 (the whole account): no cash added.
        positions = from_plaid_holdings(spec_holdings(), account_id=IRA)
        assert not [p for p in positions if FLAG_CASH_FROM_BALANCE in p.flags]

    def test_depository_account_cash_from_balance(self):
        positions = from_plaid_holdings(spec_holdings(), account_id=MONEY_MARKET)
        assert len(positions) == 1
        assert positions[0].instrument.symbol == "CUR:USD"
        assert positions[0].quantity == Decimal("43200")

    def test_balance_uses_holdings_cash(self):
        payload = spec_holdings()
        payload["accounts"][2]["balances"]["available"] = 99999
        positions = from_plaid_holdings(payload, account_id=K401)
        balances = from_plaid_balance(
            payload["accounts"][2], holdings_cash=cash_by_account(positions)[K401]
        )
        assert len(balances) == 1
        assert balances[0].cash == Decimal("12345.67")
        assert balances[0].buying_power == Decimal("99999")


class TestCreditAndOddCurrencies:
    def test_a_credit_card_holds_what_is_owed_never_its_unused_credit(self):
        credit = {
            "account_id": "cc1",
            "balances": {
                "available": 5000,
                "current": 410.5,
                "iso_currency_code": "USD",
                "limit": 5410.5,
                "unofficial_currency_code": None,
            },
            "mask": "3333",
            "name": "Plaid Credit Card",
            "official_name": None,
            "subtype": "credit card",
            "type": "credit",
        }
        payload = {"accounts": [credit], "holdings": [], "securities": []}
        [owed] = from_plaid_holdings(payload)
        assert (owed.instrument.symbol, owed.quantity) == ("CUR:USD", Decimal("-410.5"))
        assert FLAG_CASH_FROM_BALANCE in owed.flags
        [balance] = from_plaid_balance(credit)
        assert balance.cash == Decimal("-410.5")  # not the 5000 available
        assert balance.buying_power is None

    def test_cash_security_in_non_iso_currency_is_not_cur(self):
        payload = spec_holdings()
        sec = next(s for s in payload["securities"] if s["type"] == "cash")
        sec["ticker_symbol"], sec["iso_currency_code"] = None, None
        sec["unofficial_currency_code"] = "USDC"
        for holding in payload["holdings"]:
            if holding["security_id"] == sec["security_id"]:
                holding["iso_currency_code"], holding["unofficial_currency_code"] = None, "USDC"
        pos = _one(from_plaid_holdings(payload), sec["security_id"])
        assert pos.instrument.kind is InstrumentKind.CASH
        assert pos.currency == "USDC"
        assert not (pos.instrument.symbol or "").startswith("CUR:")


class TestAccounts:
    @pytest.mark.parametrize(
        ("plaid_type", "subtype", "expected"),
        [
            ("depository", "checking", AccountType.BANK),
            ("depository", "money market", AccountType.BANK),
            ("investment", "brokerage", AccountType.BROKERAGE),
            ("brokerage", None, AccountType.BROKERAGE),
            ("investment", "401k", AccountType.RETIREMENT),
            ("investment", "ira", AccountType.RETIREMENT),
            ("investment", "roth", AccountType.RETIREMENT),
            ("investment", "crypto exchange", AccountType.BROKERAGE),
            ("credit", "credit card", AccountType.OTHER),
            ("loan", "mortgage", AccountType.OTHER),
            ("other", None, AccountType.OTHER),
        ],
    )
    def test_account_type(self, plaid_type, subtype, expected):
        assert account_type(plaid_type, subtype) is expected

    def test_summary(self):
        acct = spec_holdings()["accounts"][2]
        summary = from_plaid_account(acct, connection_id="item-1", institution_name="Platypus")
        assert summary.type is AccountType.RETIREMENT
        assert summary.raw_type == "investment/401k"
        assert summary.number_mask == "6666"
        assert summary.total_value == Decimal("24580.0605")
        assert summary.currency == "USD"
        assert summary.capabilities.trading is False


class TestMalformed:
    def test_unknown_security_id_names_field(self):
        payload = spec_holdings()
        payload["holdings"][3]["security_id"] = "nope"
        with pytest.raises(MalformedResponse) as info:
            from_plaid_holdings(payload)
        assert info.value.field == "holdings[3].security_id"

    def test_non_number_names_field(self):
        payload = spec_holdings()
        payload["holdings"][1]["quantity"] = "lots"
        with pytest.raises(MalformedResponse) as info:
            from_plaid_holdings(payload)
        assert info.value.field == "holdings[1].quantity"

    def test_bad_option_contract_names_field(self):
        payload = spec_holdings()
        payload["securities"][0]["option_contract"]["contract_type"] = "straddle"
        with pytest.raises(MalformedResponse) as info:
            from_plaid_holdings(payload)
        assert info.value.field == "securities[0].option_contract.contract_type"
