"""Brokerages the Plaid sandbox offers beside `seed.INSTITUTIONS`: Merrill (read through Plaid
only) and the brokerages the coverage map opens through Plaid when SnapTrade cannot (E*TRADE,
Interactive Brokers, Robinhood). Each holds one brokerage account with cash and securities from
`seed.SECURITIES`, so that every institution the picker offers links and shows positions.
"""

from __future__ import annotations

from brokerlink.sandbox.plaid.seed import (
    INSTITUTIONS,
    AccountTemplate,
    HoldingTemplate,
    InstitutionSeed,
)

__all__ = ["BROKERAGES", "SEEDED_INSTITUTIONS"]

H = HoldingTemplate
_INV = ("balance", "investments")


def _brokerage(
    key: str, name: str, official: str, mask: str, holdings: tuple[HoldingTemplate, ...]
) -> AccountTemplate:
    return AccountTemplate(
        key,
        name,
        official,
        mask,
        "investment",
        "brokerage",
        None,
        holdings=holdings,
    )


BROKERAGES: tuple[InstitutionSeed, ...] = (
    InstitutionSeed(
        "ins_28",
        "Merrill",
        _INV,
        oauth=True,
        accounts=(
            _brokerage(
                "edge",
                "Merrill Edge Self-Directed",
                "Merrill Edge Self-Directed Investing",
                "3307",
                (H("cash-usd", 1204.37, 1204.37), H("spy", 12, 5290.80), H("bnd", 40, 2890.00)),
            ),
            AccountTemplate(
                "ira",
                "Merrill Edge IRA",
                "Merrill Edge Traditional IRA",
                "3318",
                "investment",
                "ira",
                None,
                holdings=(H("vti", 30, 6120.00), H("cash-usd", 310.00, 310.00)),
            ),
        ),
        url="https://www.merrilledge.com",
        primary_color="#012169",
    ),
    InstitutionSeed(
        "ins_129473",
        "E*TRADE",
        _INV,
        oauth=True,
        accounts=(
            _brokerage(
                "brokerage",
                "Individual Brokerage",
                "E*TRADE Individual Brokerage",
                "8841",
                (H("cash-usd", 2210.00, 2210.00), H("msft", 8, 2950.40), H("nvda", 25, 2810.00)),
            ),
        ),
        url="https://us.etrade.com",
        primary_color="#6633cc",
    ),
    InstitutionSeed(
        "ins_116530",
        "Interactive Brokers",
        _INV,
        accounts=(
            _brokerage(
                "brokerage",
                "Individual",
                "Interactive Brokers Individual Account",
                "5520",
                (H("cash-usd", 4300.12, 4300.12), H("aapl", 40, 6880.00), H("vxus", 50, 2900.00)),
            ),
        ),
        url="https://www.interactivebrokers.com",
        primary_color="#d81222",
    ),
    InstitutionSeed(
        "ins_54",
        "Robinhood",
        _INV,
        oauth=True,
        accounts=(
            _brokerage(
                "brokerage",
                "Robinhood Individual",
                "Robinhood Individual Investing",
                "1029",
                (H("cash-usd", 615.40, 615.40), H("nvda", 15, 1520.00), H("aapl", 5, 860.00)),
            ),
        ),
        url="https://robinhood.com",
        primary_color="#00c805",
    ),
)

# What a sandbox offers unless it is built with its own institutions.
SEEDED_INSTITUTIONS: dict[str, InstitutionSeed] = {
    **INSTITUTIONS,
    **{b.institution_id: b for b in BROKERAGES},
}
