from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

__all__ = ["AccountOut", "Balances", "CapabilitiesOut", "ConnectionOut", "PositionOut"]


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
