"""Vendor-neutral enumerations shared by every provider adapter and feature."""

from enum import StrEnum

__all__ = [
    "AccountType",
    "ConnectionAccess",
    "InstrumentKind",
    "OptionRight",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Provider",
    "TimeInForce",
]


class Provider(StrEnum):
    """Where a record came from. `manual` is a user's own entry, never a provider call."""

    SNAPTRADE = "snaptrade"
    PLAID = "plaid"
    MANUAL = "manual"

    @property
    def label(self) -> str:
        """The name people read: "SnapTrade", "Plaid", "Manual"."""
        return {"snaptrade": "SnapTrade", "plaid": "Plaid", "manual": "Manual"}[self.value]


class InstrumentKind(StrEnum):
    """What a position holds. Anything a provider reports that we do not know is `OTHER`."""

    EQUITY = "equity"
    ETF = "etf"
    MUTUAL_FUND = "mutual_fund"
    BOND = "bond"
    OPTION = "option"
    FUTURE = "future"
    CRYPTO = "crypto"
    CASH = "cash"
    OTHER = "other"


class OptionRight(StrEnum):
    CALL = "call"
    PUT = "put"


class AccountType(StrEnum):
    BROKERAGE = "brokerage"
    BANK = "bank"
    RETIREMENT = "retirement"
    OTHER = "other"


class ConnectionAccess(StrEnum):
    """What a connection was authorised for at link time."""

    READ = "read"
    TRADE = "trade"


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    FOK = "fok"
    IOC = "ioc"


class OrderStatus(StrEnum):
    """An order's state, normalised. The provider's own word is kept beside it."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCEL_PENDING = "cancel_pending"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REPLACED = "replaced"
    UNKNOWN = "unknown"
