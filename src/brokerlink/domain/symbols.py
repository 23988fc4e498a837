"""Ticker normalisation: one spelling of a symbol whichever provider reported it."""

import re

__all__ = ["cash_ticker", "normalize_symbol"]

# Exchange suffixes some providers append to the ticker ("SHOP.TO", "VOD.L", "BRK.B" is NOT one).
_VENDOR_SUFFIXES = (
    ".TO",
    ".V",
    ".CN",
    ".NE",
    ".L",
    ".AX",
    ".US",
    ".NYSE",
    ".NASDAQ",
    ".ARCA",
    ".BATS",
)


def normalize_symbol(raw: str) -> str:
    """Upper-case, trim, and drop trailing dots and vendor exchange suffixes.

    Share-class dots stay ("BRK.B"); only known venue suffixes are removed, so "SHOP.TO" and
    "SHOP" are the same symbol while the exchange is kept on the instrument itself.
    """
    symbol = re.sub(r"\s+", "", raw).upper().rstrip(".")
    for suffix in _VENDOR_SUFFIXES:
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            symbol = symbol[: -len(suffix)]
            break
    return symbol.rstrip(".")


def cash_ticker(currency: str) -> str:
    """The ticker a cash position in `currency` is kept under: `CUR:<ISO 4217>`."""
    code = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
    return f"CUR:{code}"
