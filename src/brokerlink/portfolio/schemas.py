from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from brokerlink.domain.enums import InstrumentKind
from brokerlink.errors import PRINTABLE

__all__ = [
    "AnalysisLineOut",
    "ConsolidationOut",
    "DuplicateOut",
    "HoldingOut",
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
    type: str
    currency: str
    quantity: Decimal
    price: Decimal | None
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
    account_id: int | None = Field(default=None, ge=1, le=2**62)


class ManualPositionPatch(BaseModel):
    quantity: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=8)
    cost_basis: Decimal | None = Field(default=None, ge=0, max_digits=24, decimal_places=8)
    price: Decimal | None = Field(default=None, ge=0, max_digits=24, decimal_places=8)


class PreferIn(BaseModel):
    """Keep this account where it is duplicated through another connection."""

    keep_account_id: int = Field(ge=1, le=2**62)
