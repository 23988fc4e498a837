from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from brokerlink.domain.enums import InstrumentKind
from brokerlink.errors import PRINTABLE

__all__ = [
    "AnalysisLineOut",
    "ConsolidationOut",
    "DuplicateOut",
    "HoldingOut",
    "ManualAccountIn",
    "ManualPositionIn",
    "ManualPositionPatch",
    "PortfolioOut",
    "PortfolioSummaryOut",
    "PreferIn",
    "Slice",
    "SourceOut",
]


class SourceOut(BaseModel):
    account_id: int
    provider: str
    quantity: Decimal
    market_value: Decimal | None


class HoldingOut(BaseModel):
    ticker: str
    # The instrument's name as the provider gave it (None for manual entries).
    name: str | None = None
    type: str
    # value = quantity × price × multiplier: 100 for options (quantity in contracts, price per
    # share), 1 for everything else.
    multiplier: Decimal = Decimal(1)
    currency: str
    quantity: Decimal
    price: Decimal | None
    # True when the sources quote different prices: `price` is then value ÷ (quantity ×
    # multiplier), their average.
    price_averaged: bool = False
    value: Decimal | None
    # Share of the portfolio's value in the same currency (None: value unknown).
    weight: Decimal | None
    as_of: datetime | None
    sources: list[SourceOut]


class Slice(BaseModel):
    label: str
    currency: str
    value: Decimal
    weight: Decimal


class DuplicateOut(BaseModel):
    kept_account_id: int
    kept_provider: str
    dropped_account_id: int
    dropped_provider: str
    reason: str
    # The kept account is the user's choice (else the provider priority chose it).
    kept_by_user: bool = False
    # Each side's value per currency, and the portfolio's totals were the dropped one counted.
    kept_value: dict[str, Decimal] = {}
    dropped_value: dict[str, Decimal] = {}
    totals_if_switched: dict[str, Decimal] = {}


class PortfolioOut(BaseModel):
    id: int
    name: str
    last_updated: datetime | None
    providers: list[str]
    holdings: list[HoldingOut]
    cash: dict[str, Decimal]
    totals: dict[str, Decimal]
    by_type: list[Slice]
    by_account: list[Slice]
    by_provider: list[Slice]
    duplicates: list[DuplicateOut]
    superseded: int
    stale_accounts: int


class PortfolioSummaryOut(BaseModel):
    id: int
    name: str
    base_currency: str


class AnalysisLineOut(BaseModel):
    ticker: str
    shares: Decimal
    currency: str
    type: str
    account_id: str
    cost_basis: Decimal | None
    provider: str
    sources: int
    is_cash_proxy: bool


class ConsolidationOut(BaseModel):
    portfolio_id: int
    positions: int
    superseded: int
    providers: list[str]
    last_updated: datetime | None
    cash: dict[str, Decimal]
    duplicates: list[str]


class ManualPositionIn(BaseModel):
    ticker: str = Field(min_length=1, max_length=64, pattern=PRINTABLE)
    quantity: Decimal = Field(ge=0, max_digits=20, decimal_places=8)
    currency: str = Field(default="USD", min_length=3, max_length=3, pattern="^[A-Za-z]{3}$")
    kind: InstrumentKind = InstrumentKind.EQUITY
    cost_basis: Decimal | None = Field(default=None, ge=0, max_digits=24, decimal_places=8)
    price: Decimal | None = Field(default=None, ge=0, max_digits=24, decimal_places=8)
    # The holding's total value instead of a unit price (price = value / quantity).
    value: Decimal | None = Field(default=None, ge=0, max_digits=24, decimal_places=8)
    account_id: int | None = Field(default=None, ge=1, le=2**62)
    # When the account already holds this ticker by hand: add to it, or replace it. Without
    # it such an entry is refused with 409 `manual_position_exists`.
    on_existing: Literal["add", "replace"] | None = None


class ManualPositionPatch(BaseModel):
    quantity: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=8)
    cost_basis: Decimal | None = Field(default=None, ge=0, max_digits=24, decimal_places=8)
    price: Decimal | None = Field(default=None, ge=0, max_digits=24, decimal_places=8)
    value: Decimal | None = Field(default=None, ge=0, max_digits=24, decimal_places=8)
    kind: InstrumentKind | None = None


class ManualAccountIn(BaseModel):
    """An account of the user's own, never synced: a wallet, a private holding."""

    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    currency: str = Field(default="USD", min_length=3, max_length=3, pattern="^[A-Za-z]{3}$")


class PreferIn(BaseModel):
    """Keep this account where it is duplicated through another connection."""

    keep_account_id: int = Field(ge=1, le=2**62)
