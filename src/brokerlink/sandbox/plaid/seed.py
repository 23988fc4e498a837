"""Seed data of the Plaid sandbox: institutions, their account templates, securities, holdings.

Every Item created at an institution gets fresh account ids built from these templates; security
ids are stable across Items (Plaid says they "will typically be the same across different
institutions"). Identifiers (CUSIP/ISIN) are illustrative, and most are null as they are for
Plaid customers without a CUSIP licence; the null-ticker fund and the bond keep theirs because
that is all a client can key them by.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

__all__ = [
    "INSTITUTIONS",
    "SECURITIES",
    "AccountTemplate",
    "HoldingTemplate",
    "InstitutionSeed",
    "SecuritySeed",
    "TransactionTemplate",
    "isin_from_cusip",
    "stable_id",
]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def stable_id(*parts: str, length: int = 37) -> str:
    """A Plaid-looking base62 identifier derived from `parts` (the same parts, the same id)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    number = int.from_bytes(digest, "big")
    out = []
    for _ in range(length):
        number, rem = divmod(number, 62)
        out.append(_ALPHABET[rem])
    return "".join(out)


def isin_from_cusip(cusip: str, country: str = "US") -> str:
    """ISIN = country + CUSIP + Luhn check digit over the letter-expanded string."""
    digits = "".join(str(int(c, 36)) for c in country + cusip)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return f"{country}{cusip}{(10 - total % 10) % 10}"


@dataclass(frozen=True)
class SecuritySeed:
    """One security as Plaid describes it; `close_price` is the base price before refreshes."""

    key: str
    name: str
    ticker: str | None
    type: str
    subtype: str
    close_price: float
    is_cash_equivalent: bool = False
    cusip: str | None = None
    mic: str | None = None
    sector: str | None = None
    industry: str | None = None
    cfi_code: str | None = None
    option_contract: dict[str, Any] | None = None
    fixed_income: dict[str, Any] | None = None
    institution_id: str | None = None
    institution_security_id: str | None = None

    @cached_property
    def security_id(self) -> str:
        return stable_id("security", self.key)

    @cached_property
    def isin(self) -> str | None:
        return isin_from_cusip(self.cusip) if self.cusip else None


def _sec(
    key: str, name: str, ticker: str | None, type_: str, subtype: str, price: float, **kw: Any
) -> SecuritySeed:
    return SecuritySeed(key, name, ticker, type_, subtype, price, **kw)


_TECH = {"sector": "Electronic Technology", "mic": "XNAS"}
SECURITIES: dict[str, SecuritySeed] = {
    s.key: s
    for s in [
        # Production cash sweeps come back with ticker CUR:USD; the spec example uses USD.
        _sec("cash-usd", "U S Dollar", "CUR:USD", "cash", "cash", 1.0, is_cash_equivalent=True),
        _sec(
            "aapl",
            "Apple Inc.",
            "AAPL",
            "equity",
            "common stock",
            189.87,
            industry="Telecommunications Equipment",
            cfi_code="ESVUFR",
            **_TECH,
        ),
        _sec(
            "msft",
            "Microsoft Corporation",
            "MSFT",
            "equity",
            "common stock",
            415.32,
            sector="Technology Services",
            industry="Packaged Software",
            mic="XNAS",
            cfi_code="ESVUFR",
        ),
        _sec(
            "jnj",
            "Johnson & Johnson",
            "JNJ",
            "equity",
            "common stock",
            152.10,
            sector="Health Technology",
            industry="Pharmaceuticals: Major",
            mic="XNYS",
            cfi_code="ESVUFR",
        ),
        _sec(
            "nvda",
            "NVIDIA Corporation",
            "NVDA",
            "equity",
            "common stock",
            131.38,
            industry="Semiconductors",
            cfi_code="ESVUFR",
            **_TECH,
        ),
        _sec(
            "vti",
            "Vanguard Total Stock Market ETF",
            "VTI",
            "etf",
            "etf",
            262.45,
            mic="ARCX",
            sector="Miscellaneous",
            industry="Investment Trusts or Mutual Funds",
            cfi_code="CEOGEU",
        ),
        _sec(
            "vxus",
            "Vanguard Total International Stock ETF",
            "VXUS",
            "etf",
            "etf",
            61.20,
            mic="XNAS",
            cfi_code="CEOGEU",
        ),
        _sec(
            "bnd",
            "Vanguard Total Bond Market ETF",
            "BND",
            "etf",
            "etf",
            72.55,
            mic="XNAS",
            cfi_code="CEOGDU",
        ),
        _sec(
            "spy",
            "SPDR S&P 500 ETF Trust",
            "SPY",
            "etf",
            "etf",
            515.20,
            mic="ARCX",
            cfi_code="CEOGEU",
        ),
        _sec(
            "vtsax",
            "Vanguard Total Stock Market Index Fund Admiral Shares",
            "VTSAX",
            "mutual fund",
            "mutual fund",
            128.34,
            cfi_code="CIOGES",
        ),
        _sec(
            "vffvx",
            "Vanguard Target Retirement 2055 Fund",
            "VFFVX",
            "mutual fund",
            "mutual fund",
            53.12,
            cfi_code="CIOGES",
        ),
        _sec(
            "vtivx",
            "Vanguard Target Retirement 2045 Fund",
            "VTIVX",
            "mutual fund",
            "mutual fund",
            31.77,
            cfi_code="CIOGES",
        ),
        _sec(
            "vmfxx",
            "Vanguard Federal Money Market Fund",
            "VMFXX",
            "cash",
            "cash",
            1.0,
            is_cash_equivalent=True,
        ),
        # A collective investment trust: no ticker at all, only CUSIP/ISIN and a name.
        _sec(
            "lifetime-2055",
            "Empower Lifetime 2055 Trust Class N",
            None,
            "mutual fund",
            "mutual fund",
            18.42,
            cusip="29249Y551",
            institution_id="ins_116912",
            institution_security_id="EMP-LT2055-N",
        ),
        _sec(
            "stable-value",
            "Empower Stable Value Fund",
            None,
            "other",
            "other",
            10.0,
            cusip="29249Y668",
            institution_id="ins_116912",
            institution_security_id="EMP-SVF",
        ),
        _sec(
            "aapl-call",
            "AAPL Jan 15 2027 200.00 Call",
            "AAPL270115C00200000",
            "derivative",
            "option",
            18.45,
            cfi_code="OCASPS",
            option_contract={
                "contract_type": "call",
                "expiration_date": "2027-01-15",
                "strike_price": 200.0,
                "underlying_security_ticker": "AAPL",
            },
        ),
        _sec(
            "ust-2034",
            "US Treasury Note - 4.25% 15/11/2034 USD 100",
            None,
            "fixed income",
            "bond",
            98.53,
            cusip="91282CLW9",
            cfi_code="DBFTFB",
            fixed_income={
                "face_value": 100.0,
                "issue_date": "2024-11-15",
                "maturity_date": "2034-11-15",
                "yield_rate": {"percentage": 4.25, "type": "coupon"},
            },
        ),
    ]
}


@dataclass(frozen=True)
class HoldingTemplate:
    """A position: `cost_basis` is the holding's TOTAL cost, as Plaid reports it."""

    security: str
    quantity: float
    cost_basis: float | None
    vested_quantity: float | None = None


@dataclass(frozen=True)
class TransactionTemplate:
    """A seeded investment transaction, dated `days_ago` before the sandbox's today."""

    days_ago: int
    type: str
    subtype: str
    security: str | None
    quantity: float
    price: float
    fees: float | None = 0.0
    name: str | None = None
    # Cash movements (dividends, deposits, fees) carry their amount; trades derive it.
    amount: float | None = None


@dataclass(frozen=True)
class AccountTemplate:
    key: str
    name: str
    official_name: str | None
    mask: str
    type: str
    subtype: str
    current: float | None
    available: float | None = None
    limit: float | None = None
    holdings: tuple[HoldingTemplate, ...] = ()
    transactions: tuple[TransactionTemplate, ...] = ()
    # Per refresh, the sandbox's balances follow the holdings' value for investment accounts.


@dataclass(frozen=True)
class InstitutionSeed:
    institution_id: str
    name: str
    products: tuple[str, ...]
    accounts: tuple[AccountTemplate, ...]
    oauth: bool = False
    url: str | None = None
    primary_color: str | None = None
    routing_numbers: tuple[str, ...] = ()
    # Multiplies product_ready_delay: some institutions take longer to extract investments.
    ready_delay_factor: float = 1.0
    supports_investments_refresh: bool = True
    country_codes: tuple[str, ...] = ("US",)
    extra: dict[str, Any] = field(default_factory=dict)


_BANK = ("assets", "auth", "balance", "identity", "transactions")
_BANK_INV = (*_BANK, "investments", "liabilities")
_INV = ("balance", "investments")

H = HoldingTemplate
T = TransactionTemplate


def _monthly_contributions(security: str, price: float, months: int, amount: float) -> list[T]:
    return [
        T(
            30 * m + 3,
            "buy",
            "contribution",
            security,
            round(amount / price, 4),
            price,
            0.0,
            f"Contribution {SECURITIES[security].name}",
        )
        for m in range(months)
    ]


_PLATYPUS_IRA = AccountTemplate(
    "ira",
    "Plaid IRA",
    None,
    "3333",
    "investment",
    "ira",
    None,
    holdings=(
        H("cash-usd", 1520.46, 1520.46),
        H("aapl", 25, 3620.50),
        H("msft", 12, 3811.20),
        H("vti", 40, 8450.00),
        H("vtsax", 55.321, 6010.15),
        H("aapl-call", 200, 2410.00),
        H("ust-2034", 50, 4890.25),
        H("lifetime-2055", 120.5, 1980.00),
    ),
    transactions=(
        T(12, "buy", "buy", "aapl", 5, 181.20, 0.0, "BUY Apple Inc."),
        T(20, "cash", "qualified dividend", "msft", 0, 0.0, 0.0, "DIVIDEND Microsoft", -9.96),
        T(45, "sell", "sell", "jnj", -10, 158.90, 4.95, "SELL Johnson & Johnson"),
        T(60, "buy", "buy", "aapl-call", 200, 12.05, 6.50, "BUY AAPL Jan 15 2027 200 Call"),
        T(90, "buy", "buy", "ust-2034", 50, 97.80, 0.0, "BUY US Treasury Note 4.25% 2034"),
        T(120, "fee", "account fee", None, 0, 0.0, 25.0, "Annual IRA custodial fee", 25.0),
        T(150, "cash", "contribution", None, 0, 0.0, 0.0, "IRA contribution", -7000.0),
        T(200, "buy", "buy", "vti", 40, 211.25, 0.0, "BUY Vanguard Total Stock Market ETF"),
    ),
)

_PLATYPUS_401K = AccountTemplate(
    "401k",
    "Plaid 401k",
    None,
    "6666",
    "investment",
    "401k",
    None,
    holdings=(
        H("vffvx", 410.233, 18210.40, vested_quantity=410.233),
        H("lifetime-2055", 310.77, 5120.90),
        H("stable-value", 250.0, 2500.0),
    ),
    transactions=tuple(_monthly_contributions("vffvx", 50.0, 24, 500.0)),
)

INSTITUTIONS: dict[str, InstitutionSeed] = {
    i.institution_id: i
    for i in [
        InstitutionSeed(
            "ins_109508",
            "First Platypus Bank",
            _BANK_INV,
            accounts=(
                AccountTemplate(
                    "checking",
                    "Plaid Checking",
                    "Plaid Gold Standard 0% Interest Checking",
                    "0000",
                    "depository",
                    "checking",
                    110.0,
                    100.0,
                ),
                AccountTemplate(
                    "savings",
                    "Plaid Saving",
                    "Plaid Silver Standard 0.1% Interest Saving",
                    "1111",
                    "depository",
                    "savings",
                    210.0,
                    200.0,
                ),
                AccountTemplate(
                    "cd",
                    "Plaid CD",
                    "Plaid Bronze Standard 0.2% Interest CD",
                    "2222",
                    "depository",
                    "cd",
                    1000.0,
                ),
                AccountTemplate(
                    "credit",
                    "Plaid Credit Card",
                    "Plaid Diamond 12.5% APR Interest Credit Card",
                    "3333",
                    "credit",
                    "credit card",
                    410.0,
                    limit=2000.0,
                ),
                _PLATYPUS_IRA,
                _PLATYPUS_401K,
            ),
            url="https://www.plaid.com",
            primary_color="#1f1f1f",
            routing_numbers=("011401533", "021200339"),
        ),
        InstitutionSeed(
            "ins_56",
            "Chase",
            _BANK_INV,
            oauth=True,
            accounts=(
                AccountTemplate(
                    "checking",
                    "TOTAL CHECKING",
                    "Chase Total Checking",
                    "4821",
                    "depository",
                    "checking",
                    5243.18,
                    5103.18,
                ),
                AccountTemplate(
                    "savings",
                    "CHASE SAVINGS",
                    "Chase Savings",
                    "7730",
                    "depository",
                    "savings",
                    12500.00,
                    12500.00,
                ),
                AccountTemplate(
                    "credit",
                    "Freedom Unlimited",
                    "Chase Freedom Unlimited",
                    "9912",
                    "credit",
                    "credit card",
                    1843.27,
                    8156.73,
                    10000.0,
                ),
                AccountTemplate(
                    "brokerage",
                    "Self-Directed Investing",
                    "J.P. Morgan Self-Directed Investing",
                    "5521",
                    "investment",
                    "brokerage",
                    None,
                    holdings=(
                        H("cash-usd", 842.11, 842.11),
                        H("aapl", 100, 22750.00),
                        H("nvda", 30, 1720.50),
                        H("spy", 10, 4210.00),
                        H("jnj", 15, 2380.35),
                    ),
                    transactions=(
                        T(5, "buy", "buy", "nvda", 10, 128.40, 0.0, "BUY NVIDIA"),
                        T(33, "cash", "dividend", "spy", 0, 0.0, 0.0, "DIVIDEND SPY", -16.52),
                        T(70, "cash", "deposit", None, 0, 0.0, 0.0, "ACH DEPOSIT", -2500.0),
                    ),
                ),
            ),
            url="https://www.chase.com",
            primary_color="#095aa6",
            routing_numbers=("021000021", "044000037"),
        ),
        InstitutionSeed(
            "ins_127989",
            "Bank of America",
            _BANK,
            oauth=True,
            accounts=(
                AccountTemplate(
                    "checking",
                    "Adv Plus Banking",
                    "Bank of America Advantage Plus Banking",
                    "0392",
                    "depository",
                    "checking",
                    3120.44,
                    3120.44,
                ),
                AccountTemplate(
                    "savings",
                    "Advantage Savings",
                    None,
                    "1187",
                    "depository",
                    "savings",
                    8800.00,
                    8800.00,
                ),
                AccountTemplate(
                    "credit",
                    "Customized Cash Rewards",
                    None,
                    "6604",
                    "credit",
                    "credit card",
                    622.90,
                    4377.10,
                    5000.0,
                ),
            ),
            url="https://www.bankofamerica.com",
            primary_color="#e31837",
            routing_numbers=("026009593", "011000138"),
        ),
        InstitutionSeed(
            "ins_127991",
            "Wells Fargo",
            _BANK,
            oauth=True,
            accounts=(
                AccountTemplate(
                    "checking",
                    "Everyday Checking",
                    "Wells Fargo Everyday Checking",
                    "2290",
                    "depository",
                    "checking",
                    1875.02,
                    1875.02,
                ),
                AccountTemplate(
                    "savings",
                    "Way2Save Savings",
                    None,
                    "3381",
                    "depository",
                    "savings",
                    4020.55,
                    4020.55,
                ),
            ),
            url="https://www.wellsfargo.com",
            primary_color="#d71e28",
            routing_numbers=("121000248",),
        ),
        InstitutionSeed(
            "ins_5",
            "Citi",
            _BANK,
            oauth=True,
            accounts=(
                AccountTemplate(
                    "checking",
                    "Citi Checking",
                    "Citi Regular Checking",
                    "8810",
                    "depository",
                    "checking",
                    2450.00,
                    2450.00,
                ),
                AccountTemplate(
                    "credit",
                    "Citi Double Cash",
                    None,
                    "4402",
                    "credit",
                    "credit card",
                    310.12,
                    6689.88,
                    7000.0,
                ),
            ),
            url="https://www.citi.com",
            primary_color="#003b70",
            routing_numbers=("021000089",),
        ),
        InstitutionSeed(
            "ins_128026",
            "Capital One",
            _BANK,
            oauth=True,
            accounts=(
                AccountTemplate(
                    "checking",
                    "360 Checking",
                    "Capital One 360 Checking",
                    "6120",
                    "depository",
                    "checking",
                    980.75,
                    980.75,
                ),
                AccountTemplate(
                    "savings",
                    "360 Performance Savings",
                    None,
                    "6144",
                    "depository",
                    "savings",
                    15230.10,
                    15230.10,
                ),
                AccountTemplate(
                    "credit",
                    "Quicksilver",
                    None,
                    "7731",
                    "credit",
                    "credit card",
                    145.60,
                    2854.40,
                    3000.0,
                ),
            ),
            url="https://www.capitalone.com",
            primary_color="#004977",
            routing_numbers=("031176110", "056073502"),
        ),
        InstitutionSeed(
            "ins_115616",
            "Vanguard",
            _INV,
            oauth=False,
            accounts=(
                AccountTemplate(
                    "brokerage",
                    "Brokerage Account",
                    "Vanguard Brokerage Account",
                    "4450",
                    "investment",
                    "brokerage",
                    None,
                    holdings=(
                        H("vmfxx", 2310.55, 2310.55),
                        H("vti", 85, 17210.30),
                        H("vxus", 120, 6480.00),
                        H("bnd", 60, 4410.00),
                        H("vtsax", 40.118, 4100.00),
                    ),
                    transactions=(
                        T(
                            8,
                            "buy",
                            "dividend reinvestment",
                            "vti",
                            0.412,
                            259.10,
                            0.0,
                            "REINVEST VTI DIVIDEND",
                            106.75,
                        ),
                        T(8, "cash", "dividend", "vti", 0, 0.0, 0.0, "DIVIDEND VTI", -106.75),
                        T(40, "buy", "buy", "vxus", 20, 60.15, 0.0, "BUY VXUS"),
                        T(95, "sell", "sell", "bnd", -15, 71.80, 0.0, "SELL BND"),
                    ),
                ),
                AccountTemplate(
                    "roth",
                    "Roth IRA",
                    "Vanguard Roth IRA",
                    "4471",
                    "investment",
                    "roth",
                    None,
                    holdings=(H("vtivx", 612.4, 16500.00), H("vmfxx", 88.12, 88.12)),
                    transactions=tuple(_monthly_contributions("vtivx", 30.0, 6, 583.33)),
                ),
            ),
            url="https://investor.vanguard.com",
            primary_color="#96151d",
        ),
        InstitutionSeed(
            "ins_11",
            "Charles Schwab",
            _INV,
            oauth=True,
            ready_delay_factor=4.0,
            accounts=(
                AccountTemplate(
                    "brokerage",
                    "Individual Brokerage",
                    "Schwab One Brokerage",
                    "7712",
                    "investment",
                    "brokerage",
                    None,
                    holdings=(
                        H("cash-usd", 5120.00, 5120.00),
                        H("aapl", 50, 7910.00),
                        H("msft", 20, 6240.00),
                        H("aapl-call", 300, 3900.00),
                        H("ust-2034", 100, 9815.00),
                    ),
                    transactions=(
                        T(3, "buy", "buy", "msft", 5, 410.00, 0.0, "BUY MSFT"),
                        T(25, "cash", "interest", "ust-2034", 0, 0.0, 0.0, "INTEREST UST", -212.50),
                    ),
                ),
            ),
            url="https://www.schwab.com",
            primary_color="#00a0df",
        ),
        InstitutionSeed(
            # Listed, but without investments: Fidelity holdings are not offered here.
            "ins_12",
            "Fidelity",
            ("auth", "balance", "identity", "transactions"),
            oauth=True,
            accounts=(
                AccountTemplate(
                    "cma",
                    "Cash Management Account",
                    "Fidelity Cash Management Account",
                    "9043",
                    "depository",
                    "cash management",
                    6402.33,
                    6402.33,
                ),
            ),
            url="https://www.fidelity.com",
            primary_color="#368727",
        ),
        InstitutionSeed(
            "ins_116912",
            "Empower Retirement",
            _INV,
            supports_investments_refresh=False,
            accounts=(
                AccountTemplate(
                    "401k",
                    "ACME Corp 401(k) Plan",
                    "ACME Corporation 401(k) Savings Plan",
                    "0401",
                    "investment",
                    "401k",
                    None,
                    holdings=(
                        H("lifetime-2055", 1820.337, 28100.00, vested_quantity=1700.0),
                        H("vffvx", 240.1, 11250.00, vested_quantity=240.1),
                        H("stable-value", 812.5, 8125.00),
                    ),
                    transactions=tuple(_monthly_contributions("lifetime-2055", 17.5, 18, 750.0)),
                ),
            ),
            url="https://www.empower.com",
            primary_color="#0f2d4a",
        ),
    ]
}
