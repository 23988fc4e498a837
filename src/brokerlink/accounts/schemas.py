from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

__all__ = [
    "AccountOut",
    "Balances",
    "CapabilitiesOut",
    "ConnectionOut",
    "NetWorthOut",
    "NetWorthLine",
    "PositionOut",
]


class CapabilitiesOut(BaseModel):
    trading: bool
    realtime: bool
    # Why the account cannot trade (None when it can).
    trading_reason: str | None = None


class Balances(BaseModel):
    """From the stored positions: cash per currency and the value of the rest per currency."""

    cash: dict[str, Decimal]
    holdings_value: dict[str, Decimal]
    total: dict[str, Decimal]


class AccountOut(BaseModel):
    id: int
    connection_id: int
    institution: str
    institution_slug: str | None
    name: str | None
    mask: str | None
    type: str
    currency: str | None
    provider: str
    # When the account's connection was made (tells two links of one account apart).
    linked_at: datetime | None = None
    capabilities: CapabilitiesOut
    status: str  # pending | fresh | stale | broken
    stale: bool
    last_synced_at: datetime | None
    data_as_of: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    next_refresh_allowed_at: datetime | None
    positions: int
    balances: Balances


class ConnectionOut(BaseModel):
    id: int
    provider: str
    institution: str
    institution_slug: str | None
    status: str  # active | broken | disabled
    status_reason: str | None
    last_synced_at: datetime | None
    last_manual_refresh_at: datetime | None
    next_refresh_allowed_at: datetime | None
    accounts: list[AccountOut] = []


class PositionOut(BaseModel):
    id: int
    account_id: int
    ticker: str
    name: str | None = None
    quantity: Decimal
    currency: str
    type: str
    provider: str
    source: str
    status: str
    cost_basis: Decimal | None
    price: Decimal | None
    market_value: Decimal | None
    as_of: datetime | None
    price_as_of: datetime | None


class NetWorthLine(BaseModel):
    """One currency: what the accounts hold, what the credit cards and loans owe, the net."""

    currency: str
    assets: Decimal
    liabilities: Decimal
    net: Decimal


class NetWorthOut(BaseModel):
    """Net worth per currency, and in the base currency when every amount is in it.

    `base_net` is None when some amounts are in another currency: no exchange rate is invented
    (`unconverted` names those currencies)."""

    base_currency: str
    base_net: Decimal | None
    unconverted: list[str]
    lines: list[NetWorthLine]
    accounts: int
    liability_accounts: int
    # Copies of duplicated accounts not counted (the portfolio counts one of each).
    duplicates_left_out: int = 0
