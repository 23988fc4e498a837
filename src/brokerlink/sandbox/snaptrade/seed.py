"""Deterministic fixture data: brokerages, a small symbol universe and per-brokerage accounts.

Every id is a UUIDv5 derived from a stable name, so two sandboxes built the same way agree.
Prices are fixed; market values and balances are computed from them in `state.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

__all__ = [
    "BROKERAGES",
    "CURRENCIES",
    "EXCHANGES",
    "FX_TO_USD",
    "SECURITY_TYPES",
    "SYMBOLS",
    "AccountTemplate",
    "BrokerageSeed",
    "HoldingTemplate",
    "OptionContract",
    "SymbolInfo",
    "account_templates",
    "sandbox_uuid",
]

_NAMESPACE = uuid.UUID("6f1c8f52-1d0b-4d8e-9a55-2b7f0f5e6a10")


def sandbox_uuid(*parts: str) -> str:
    """A stable UUID for a sandbox object named by `parts`."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


@dataclass(frozen=True)
class BrokerageSeed:
    slug: str
    name: str
    display_name: str
    allows_trading: bool
    is_real_time_connection: bool
    auth_type: str  # OAUTH | SCRAPE | UNOFFICIAL_API | TOKEN
    url: str


BROKERAGES: tuple[BrokerageSeed, ...] = (
    BrokerageSeed(
        "SCHWAB", "Charles Schwab", "Schwab", True, True, "OAUTH", "https://www.schwab.com"
    ),
    BrokerageSeed(
        "FIDELITY",
        "Fidelity Investments",
        "Fidelity",
        False,
        False,
        "OAUTH",
        "https://www.fidelity.com",
    ),
    BrokerageSeed("ETRADE", "E*TRADE", "E*TRADE", True, True, "OAUTH", "https://us.etrade.com"),
    BrokerageSeed(
        "VANGUARD",
        "Vanguard US",
        "Vanguard",
        False,
        False,
        "SCRAPE",
        "https://investor.vanguard.com",
    ),
    BrokerageSeed(
        "INTERACTIVE-BROKERS-FLEX",
        "Interactive Brokers",
        "Interactive Brokers",
        True,
        True,
        "TOKEN",
        "https://www.interactivebrokers.com",
    ),
    BrokerageSeed(
        "ROBINHOOD",
        "Robinhood",
        "Robinhood",
        False,
        True,
        "UNOFFICIAL_API",
        "https://robinhood.com",
    ),
    BrokerageSeed("ALPACA", "Alpaca", "Alpaca", True, True, "OAUTH", "https://alpaca.markets"),
    BrokerageSeed(
        "SANDBOX", "SnapTrade Sandbox", "Sandbox", True, True, "TOKEN", "https://snaptrade.com"
    ),
)

CURRENCIES: dict[str, str] = {"USD": "US Dollar", "CAD": "Canadian Dollar"}
# Fixed conversion used for account totals (an account's total is in its base currency).
FX_TO_USD: dict[str, Decimal] = {"USD": Decimal("1"), "CAD": Decimal("0.73")}

# mic -> (code, name, timezone, suffix)
EXCHANGES: dict[str, tuple[str, str, str, str | None]] = {
    "XNAS": ("NASDAQ", "Nasdaq", "America/New_York", None),
    "XNYS": ("NYSE", "New York Stock Exchange", "America/New_York", None),
    "ARCX": ("ARCA", "NYSE Arca", "America/New_York", None),
    "XTSE": ("TSX", "Toronto Stock Exchange", "America/Toronto", ".TO"),
    "OOTC": ("OTC", "OTC Markets", "America/New_York", None),
}

# code -> description
SECURITY_TYPES: dict[str, str] = {
    "cs": "Common Stock",
    "et": "ETF",
    "oef": "Open Ended Fund",
    "bnd": "Bond",
}

# positions/all instrument kind for each security type
KIND_BY_TYPE: dict[str, str] = {"cs": "stock", "et": "etf", "oef": "mutualfund", "bnd": "other"}


@dataclass(frozen=True)
class SymbolInfo:
    """One security of the sandbox universe (a UniversalSymbol)."""

    symbol: str
    description: str
    type_code: str
    mic: str
    currency: str
    price: Decimal
    figi: str | None = None

    @property
    def id(self) -> str:
        return sandbox_uuid("symbol", self.symbol)

    @property
    def raw_symbol(self) -> str:
        return self.symbol.split(".")[0]

    @property
    def kind(self) -> str:
        return KIND_BY_TYPE[self.type_code]


def _s(
    symbol: str,
    description: str,
    type_code: str,
    mic: str,
    price: str,
    *,
    currency: str = "USD",
    figi: str | None = None,
) -> SymbolInfo:
    return SymbolInfo(symbol, description, type_code, mic, currency, Decimal(price), figi)


SYMBOLS: dict[str, SymbolInfo] = {
    s.symbol: s
    for s in (
        _s("AAPL", "Apple Inc.", "cs", "XNAS", "227.50", figi="BBG000B9XRY4"),
        _s("MSFT", "Microsoft Corporation", "cs", "XNAS", "415.20", figi="BBG000BPH459"),
        _s("NVDA", "NVIDIA Corporation", "cs", "XNAS", "131.40", figi="BBG000BBJQV0"),
        _s("AMZN", "Amazon.com, Inc.", "cs", "XNAS", "186.30", figi="BBG000BVPV84"),
        _s("GOOGL", "Alphabet Inc. Class A", "cs", "XNAS", "171.10", figi="BBG009S39JX6"),
        _s("TSLA", "Tesla, Inc.", "cs", "XNAS", "248.50", figi="BBG000N9MNX3"),
        _s("JNJ", "Johnson & Johnson", "cs", "XNYS", "158.40", figi="BBG000BMHYD1"),
        _s("KO", "The Coca-Cola Company", "cs", "XNYS", "68.90", figi="BBG000BMX289"),
        _s("VTI", "Vanguard Total Stock Market ETF", "et", "ARCX", "285.60"),
        _s("VOO", "Vanguard S&P 500 ETF", "et", "ARCX", "505.10"),
        _s("BND", "Vanguard Total Bond Market ETF", "et", "XNAS", "72.80"),
        _s("SPY", "SPDR S&P 500 ETF Trust", "et", "ARCX", "562.30"),
        _s("QQQ", "Invesco QQQ Trust", "et", "XNAS", "480.25"),
        _s("VTSAX", "Vanguard Total Stock Market Index Fund Admiral", "oef", "XNAS", "131.85"),
        _s("VFIAX", "Vanguard 500 Index Fund Admiral", "oef", "XNAS", "521.40"),
        _s("FXAIX", "Fidelity 500 Index Fund", "oef", "XNAS", "198.75"),
        _s("SWPPX", "Schwab S&P 500 Index Fund", "oef", "XNAS", "9.45"),
        _s("SPAXX", "Fidelity Government Money Market Fund", "oef", "XNAS", "1.00"),
        _s("SHOP.TO", "Shopify Inc.", "cs", "XTSE", "105.20", currency="CAD"),
        _s("XIU.TO", "iShares S&P/TSX 60 Index ETF", "et", "XTSE", "35.10", currency="CAD"),
        # A US Treasury note by CUSIP; priced per unit held, so value = units * price.
        _s("912828ZQ6", "US TREASURY NOTE 0.625% 05/15/2030", "bnd", "OOTC", "86.45"),
    )
}


@dataclass(frozen=True)
class OptionContract:
    underlying: str
    option_type: str  # CALL | PUT
    strike: Decimal
    expiration: date
    price: Decimal  # per share
    multiplier: Decimal = Decimal("100")

    @property
    def ticker(self) -> str:
        """OCC symbol, e.g. `AAPL  270115C00250000`."""
        cents = int(self.strike * 1000)
        return f"{self.underlying:<6}{self.expiration:%y%m%d}{self.option_type[0]}{cents:08d}"

    @property
    def id(self) -> str:
        return sandbox_uuid("option", self.ticker)


@dataclass(frozen=True)
class HoldingTemplate:
    symbol: str | None  # a SYMBOLS key, or None for an option
    units: Decimal
    cost_basis: Decimal  # average price per unit (per share for options)
    option: OptionContract | None = None
    cash_equivalent: bool = False


@dataclass(frozen=True)
class AccountTemplate:
    name: str
    raw_type: str
    number: str
    margin: bool
    cash: dict[str, Decimal]
    holdings: tuple[HoldingTemplate, ...]
    base_currency: str = "USD"
    is_paper: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _h(symbol: str, units: str, cost: str, *, cash_equivalent: bool = False) -> HoldingTemplate:
    return HoldingTemplate(symbol, Decimal(units), Decimal(cost), cash_equivalent=cash_equivalent)


def _o(contract: OptionContract, units: str, cost: str) -> HoldingTemplate:
    return HoldingTemplate(None, Decimal(units), Decimal(cost), option=contract)


_AAPL_CALL = OptionContract("AAPL", "CALL", Decimal("250"), date(2027, 1, 15), Decimal("12.40"))
_SPY_PUT = OptionContract("SPY", "PUT", Decimal("520"), date(2026, 12, 18), Decimal("8.75"))

_ACCOUNTS: dict[str, tuple[AccountTemplate, ...]] = {
    "SCHWAB": (
        AccountTemplate(
            "Schwab Individual Brokerage",
            "Margin",
            "8841-2207",
            True,
            {"USD": Decimal("8420.55")},
            (
                _h("AAPL", "50", "150.25"),
                _h("MSFT", "15", "310.80"),
                _h("SWPPX", "500", "7.10"),
                _h("VOO", "10", "410.00"),
            ),
        ),
        AccountTemplate(
            "Schwab Roth IRA",
            "Roth IRA",
            "5512-9034",
            False,
            {"USD": Decimal("1250.00")},
            (_h("VTI", "30", "220.15"), _h("BND", "100", "74.30")),
        ),
    ),
    "FIDELITY": (
        AccountTemplate(
            "Fidelity Individual",
            "Individual",
            "Z23-456789",
            False,
            {"USD": Decimal("3105.12")},
            (
                _h("FXAIX", "120", "160.40"),
                _h("NVDA", "50", "45.20"),
                _h("KO", "60", "59.10"),
                _h("912828ZQ6", "25", "92.10"),
                _h("SPAXX", "1500", "1.00", cash_equivalent=True),
            ),
        ),
        AccountTemplate(
            "Fidelity Traditional IRA",
            "IRA",
            "235-118844",
            False,
            {"USD": Decimal("540.00")},
            (_h("FXAIX", "300", "150.00"), _h("QQQ", "12", "350.60")),
        ),
    ),
    "ETRADE": (
        AccountTemplate(
            "E*TRADE Brokerage",
            "Margin",
            "XXXX-4821",
            True,
            {"USD": Decimal("12000.00")},
            (
                _h("TSLA", "20", "201.35"),
                _h("AMZN", "25", "128.90"),
                _h("SPY", "15", "470.00"),
                _o(_SPY_PUT, "1", "10.20"),
            ),
        ),
        AccountTemplate(
            "E*TRADE Roth IRA",
            "Roth IRA",
            "XXXX-7310",
            False,
            {"USD": Decimal("2300.00")},
            (_h("VOO", "8", "430.25"),),
        ),
    ),
    "VANGUARD": (
        AccountTemplate(
            "Vanguard Brokerage Account",
            "Individual",
            "41557892",
            False,
            {"USD": Decimal("1000.00")},
            (
                _h("VTSAX", "210.532", "98.40"),
                _h("VFIAX", "40.125", "380.12"),
                _h("BND", "80", "76.05"),
            ),
        ),
        AccountTemplate(
            "Vanguard Roth IRA",
            "Roth IRA",
            "41557893",
            False,
            {"USD": Decimal("150.25")},
            (_h("VTSAX", "95.3", "104.70"),),
        ),
    ),
    "INTERACTIVE-BROKERS-FLEX": (
        AccountTemplate(
            "IBKR Individual Margin",
            "Margin",
            "U7482913",
            True,
            {"USD": Decimal("15230.40"), "CAD": Decimal("4800.00")},
            (
                _h("AAPL", "25", "172.60"),
                _h("GOOGL", "30", "139.45"),
                _h("SHOP.TO", "40", "88.30"),
                _h("XIU.TO", "100", "31.25"),
                _o(_AAPL_CALL, "2", "9.85"),
            ),
        ),
        AccountTemplate(
            "IBKR Traditional IRA",
            "IRA",
            "U7482914",
            False,
            {"USD": Decimal("3200.00")},
            (_h("VTI", "20", "240.10"), _h("BND", "50", "73.90")),
        ),
    ),
    "ROBINHOOD": (
        AccountTemplate(
            "Robinhood Individual",
            "Margin",
            "5RH-301928",
            True,
            {"USD": Decimal("640.18")},
            (
                _h("NVDA", "12.5", "98.12"),
                _h("AAPL", "3.25", "190.04"),
                _h("TSLA", "4", "230.00"),
                _h("JNJ", "6", "160.33"),
            ),
        ),
        AccountTemplate(
            "Robinhood Roth IRA",
            "Roth IRA",
            "5RH-301929",
            False,
            {"USD": Decimal("75.00")},
            (_h("VOO", "2.5", "470.50"),),
        ),
    ),
    "ALPACA": (
        AccountTemplate(
            "Alpaca Trading",
            "Margin",
            "PA3K81QZ",
            True,
            {"USD": Decimal("5000.00")},
            (_h("AAPL", "10", "201.10"),),
        ),
    ),
    "SANDBOX": (
        AccountTemplate(
            "Sandbox Paper Account",
            "Margin",
            "SBX-000001",
            True,
            {"USD": Decimal("10000.00")},
            (_h("VTI", "10", "250.00"),),
            is_paper=True,
        ),
    ),
}


def account_templates(slug: str) -> tuple[AccountTemplate, ...]:
    """The accounts a new connection to brokerage `slug` brings."""
    return _ACCOUNTS.get(slug, ())
